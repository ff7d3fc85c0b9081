"""Text for ``pixgen list``: drawers, filters and losses with their options, presets, and known CLIP models."""

from __future__ import annotations

import inspect

from pixgen.options import plugin_options
from pixgen.registry import CLIP_MODELS, DRAWERS, FILTERS, LOSSES, PRESETS, Registry


def describe(what: str | None = None) -> str:
    """The listing for ``what`` (drawers, filters, losses, presets, clip) or all of them."""
    parts = []
    if what in (None, "drawers"):
        parts.append("Drawers (--drawer NAME[:ARG], options as --name value):\n" + _plugins(DRAWERS))
    if what in (None, "filters"):
        parts.append("Filters (--filters NAME[:ARG][@WEIGHT],...):\n" + _plugins(FILTERS))
    if what in (None, "losses"):
        parts.append("Losses (--loss NAME[:ARG][@WEIGHT]):\n" + (_plugins(LOSSES) or "  (none yet)"))
    if what in (None, "presets"):
        parts.append("Presets (--preset NAME):\n" + _presets())
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
    lines = [f"  {name:<12} {_summary(CLIP_MODELS, name)}" for name in CLIP_MODELS.names()]
    lines += [f"  {model}: {', '.join(t)}" for model, t in sorted(tags.items())]
    return "\n".join(lines)


def _presets() -> str:
    return "\n".join(f"  {name:<12} {_summary(PRESETS, name)}" for name in PRESETS.names()) or "  (none)"


def _summary(registry: Registry, name: str) -> str:
    """The first docstring line (or ``description``) of a registered object; why it is unavailable if so."""
    try:
        target = registry.get(name)
    except Exception as exc:  # noqa: BLE001 - show why a plug-in is unavailable, keep listing
        return f"unavailable: {exc}"
    text = getattr(target, "description", "") or inspect.getdoc(target) or ""
    return text.splitlines()[0] if text else ""
