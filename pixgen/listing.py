"""Text for ``pixgen list``: drawers, filters and losses with their options, and known CLIP models."""

from __future__ import annotations

import inspect

from pixgen.options import plugin_options
from pixgen.registry import DRAWERS, FILTERS, LOSSES, Registry


def describe(what: str | None = None) -> str:
    """The listing for ``what`` (drawers, filters, losses, clip) or all of them."""
    parts = []
    if what in (None, "drawers"):
        parts.append("Drawers (--drawer NAME[:ARG], options as --name value):\n" + _plugins(DRAWERS))
    if what in (None, "filters"):
        parts.append("Filters (--filters NAME[:ARG][@WEIGHT],...):\n" + _plugins(FILTERS))
    if what in (None, "losses"):
        parts.append("Losses (--loss NAME[:ARG][@WEIGHT]):\n" + (_plugins(LOSSES) or "  (none yet)"))
    if what in (None, "clip"):
        parts.append("CLIP models (--clip MODEL[:TAG][@WEIGHT]):\n" + _clip_models())
    return "\n\n".join(parts)


def _plugins(registry: Registry) -> str:
    lines = []
    for name in registry.names():
        try:
            cls = registry.get(name)
        except Exception as exc:  # noqa: BLE001 - show why a plug-in is unavailable, keep listing
            lines.append(f"  {name:<12} unavailable: {exc}")
            continue
        doc = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
        lines.append(f"  {name:<12} {doc}")
        for opt, param in plugin_options(cls).items():
            default = "" if param.default is inspect.Parameter.empty else f" (default {param.default!r})"
            lines.append(f"      --{opt.replace('_', '-')}{default}")
    return "\n".join(lines)


def _clip_models() -> str:
    import open_clip

    tags: dict[str, list[str]] = {}
    for model, tag in open_clip.list_pretrained():
        tags.setdefault(model, []).append(tag)
    lines = ["  shapes       pixgen's built-in offline model (64x64 shapes world)"]
    lines += [f"  {model}: {', '.join(t)}" for model, t in sorted(tags.items())]
    return "\n".join(lines)
