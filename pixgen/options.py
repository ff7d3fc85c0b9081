"""Plug-in options: a plug-in's options are its constructor's keyword-only arguments (config equals
constructor arguments), so the CLI, the YAML config and the Python API all check them the same way."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pixgen.errors import PixgenError
from pixgen.schema import convert


def plugin_options(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword-only constructor parameters of a plug-in class, by name."""
    hints = typing.get_type_hints(cls.__init__)
    params = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name: p.replace(annotation=hints.get(p.name, p.annotation))
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def resolve_options(cls: type, what: str, args: tuple[str, ...], options: dict[str, Any]) -> dict[str, Any]:
    """Merge positional spec args (``cls.spec_args``) and named options, checked and coerced to their types."""
    known = plugin_options(cls)
    spec_args = getattr(cls, "spec_args", ())
    if len(args) > len(spec_args):
        raise PixgenError(f"{what} takes at most {len(spec_args)} ':' argument(s) ({', '.join(spec_args) or 'none'})"
                          f", got {':'.join(args)!r}")
    merged = dict(zip(spec_args, args, strict=False))
    for key, value in options.items():
        key = key.replace("-", "_")
        if key not in known:
            raise PixgenError(f"{what} has no option {key!r}; its options are: {', '.join(known) or 'none'}")
        merged[key] = value
    return {key: coerce(value, known[key], what) for key, value in merged.items()}


def route_options(owners: list[tuple[str, type]], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Give each named option to every plug-in in ``owners`` ((what, class) pairs) that declares it, so one
    ``--palette`` reaches both the lookup filter and the palette loss; an option nobody declares is an error."""
    declared = [plugin_options(cls) for _, cls in owners]
    routed: list[dict[str, Any]] = [{} for _ in owners]
    for key, value in options.items():
        key = key.replace("-", "_")
        takers = [i for i, known in enumerate(declared) if key in known]
        if not takers:
            names = list(dict.fromkeys(name for known in declared for name in known))
            raise PixgenError(f"{' / '.join(what for what, _ in owners)} has no option {key!r}; the options are: "
                              f"{', '.join(names) or 'none'}")
        for i in takers:
            routed[i][key] = value
    return routed


def coerce(value: Any, param: inspect.Parameter, what: str) -> Any:
    """Check and convert a CLI/YAML/API value to the parameter's annotated type by the one schema of every
    setting (``pixgen.schema``: strict bools, whole ints, finite floats); the text ``none``/``null`` is None
    where the type allows None (a command line cannot write null). Unannotated options pass unchanged."""
    annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
    allows_none = type(None) in typing.get_args(annotation)
    if allows_none and isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None
    return convert(value, annotation, f"{what} option {param.name!r}")
