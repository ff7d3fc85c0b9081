"""One schema for every setting: each value is checked and converted against its declared type, read from the
annotations themselves (``RunConfig``'s fields, a plug-in's keyword-only constructor arguments), so the CLI,
a YAML file and ``pixgen.run()`` accept exactly the same values and a field added later is covered as it is.

The rules, by declared type (a wrong value is one ``PixgenError`` line naming the key, the value and what is
expected):

- ``int``: whole numbers: ints, whole floats (``250.0``) and their text (``"250"``, ``"1e3"``); never ``3.7``
  or a bool.
- ``float``: ints, floats and numeric text, finite (no ``nan``/``inf``); never a bool.
- ``bool``: ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0`` (text in any case, or the numbers 1
  and 0) and bools; nothing else (``"maybe"`` and ``2`` are errors, ``"false"`` is false).
- ``str``: text; a number is taken as its text (YAML reads ``prompt: 1984`` and ``out: 2024`` as numbers), a
  path as its text; bytes, bools, lists and mappings are errors.
- ``list[X]``: a list (or tuple) of X, or one X alone (``list[Any]``: a list only).
- ``dict[str, X]``: a mapping with text keys.
- ``X | Y``: the first that fits, in order; ``None`` where the type allows it. Anything else (``Any``, a class
  of a plug-in's own) passes unchanged: its owner checks it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from typing import Any

from pixgen.errors import PixgenError

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


_WHOLE = object()  # _Mismatch.bad when the whole value is wrong (not one item of a list)


class _Mismatch(Exception):
    """A value that does not fit a type (turned into one line by ``convert``); ``bad``: the item at fault."""

    def __init__(self, hint: str = "", bad: Any = _WHOLE) -> None:
        super().__init__(hint)
        self.hint, self.bad = hint, bad


def convert(value: Any, annotation: Any, label: str) -> Any:
    """``value`` checked and converted to ``annotation``; else one line ``LABEL: cannot read VALUE as ...``."""
    try:
        return _convert(value, annotation)
    except _Mismatch as exc:
        shown = repr(value if exc.bad is _WHOLE else exc.bad)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        hint = f"; {exc.hint}" if exc.hint else ""
        raise PixgenError(f"{label}: cannot read {shown} as {expected(annotation)}{hint}") from None


def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their resolved annotations (``str | None``, ``list[float]``...)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def coerce_settings(cls: type, values: typing.Mapping[Any, Any]) -> dict[str, Any]:
    """``values`` with ``-`` in names made ``_`` and every field of ``cls`` converted to its declared type;
    other keys (plug-in options) are left to their plug-in."""
    if not isinstance(values, typing.Mapping):
        raise PixgenError(f"settings must be a mapping of setting: value (a file: pixgen.config.load_yaml(path)), "
                          f"got {type(values).__name__} {values!r:.60}")
    kinds = field_types(cls)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise PixgenError(f"setting name {key!r} is not text; write settings as name: value (e.g. seed: 5)")
        key = key.replace("-", "_")
        out[key] = convert(value, kinds[key], key) if key in kinds else value
    return out


def coerce_fields(obj: Any) -> None:
    """Convert every field of the dataclass instance ``obj`` in place (a ``RunConfig`` built directly)."""
    for name, annotation in field_types(type(obj)).items():
        setattr(obj, name, convert(getattr(obj, name), annotation, name))


def expected(annotation: Any) -> str:
    """What a type accepts, in words (``a whole number``, ``text or nothing (null)``...)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        words = [expected(a) for a in args if a is not type(None)]
        return " or ".join(words + (["nothing (null)"] if type(None) in args else []))
    if origin in (list, tuple):
        return f"{expected(args[0])} or a list of them" if args and args[0] is not Any else "a list"
    if origin is dict or annotation is dict:
        return "a mapping of name: value"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return _WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)))


_WORDS = {int: "a whole number", float: "a finite number", str: "text",
          bool: "true or false (also yes/no, on/off, 1/0)", type(None): "nothing (null)"}


def _convert(value: Any, annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _union(value, args)
    if origin is list:
        item = args[0] if args else Any
        if not isinstance(value, (list, tuple)) and item is Any:
            raise _Mismatch()  # one item alone only where the item's type can check it
        items = value if isinstance(value, (list, tuple)) else [value]
        out = []
        for v in items:
            try:
                out.append(_convert(v, item))
            except _Mismatch as exc:
                raise _Mismatch(exc.hint, v if exc.bad is _WHOLE else exc.bad) from None
        return out
    if origin is dict or annotation is dict:
        if not isinstance(value, typing.Mapping) or not all(isinstance(k, str) for k in value):
            raise _Mismatch()
        return {k: _convert(v, args[1]) if args else v for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise _Mismatch()
        return value
    if annotation is Any:
        return value
    converter = _CONVERTERS.get(annotation)
    return converter(value) if converter else value


def _union(value: Any, args: tuple[Any, ...]) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise _Mismatch()
    failures = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg)
        except _Mismatch as exc:
            failures.append(exc)
    bad = next((f.bad for f in failures if f.bad is not _WHOLE), _WHOLE)
    raise _Mismatch(next((f.hint for f in failures if f.hint), ""), bad)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Mismatch()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
    number = _to_float(value)
    if not number.is_integer():
        raise _Mismatch()
    return int(number)


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise _Mismatch()
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        raise _Mismatch() from None
    if not math.isfinite(number):
        raise _Mismatch()
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise _Mismatch()


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        raise _Mismatch("give text, not bytes (decode them, e.g. .decode('utf-8'))")
    if isinstance(value, bool):
        raise _Mismatch("quote it in YAML to mean the word")
    if isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise _Mismatch()


_CONVERTERS = {int: _to_int, float: _to_float, bool: _to_bool, str: _to_str}
