"""Named bundles of settings. Explicit settings always win over a preset; a preset wins over the defaults.

``quality`` follows pixray (REFERENCE.md §1.8): CLIP models, iterations, size scale, cutouts and batches.
``preset`` names a bundle for a purpose, registered by a plug-in package (``pixgen.registry.PRESETS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixgen.errors import PixgenError
from pixgen.registry import PRESETS

_B32, _B16 = "ViT-B-32:openai", "ViT-B-16:openai"
QUALITY: dict[str, dict[str, Any]] = {
    "draft": {"clip": [_B16], "iterations": 200, "scale": 1, "cutn": 24, "batches": 1},
    "normal": {"clip": [_B32, _B16], "iterations": 250, "scale": 2, "cutn": 30, "batches": 1},
    "better": {"clip": ["RN50:openai", _B32, _B16], "iterations": 300, "scale": 3, "cutn": 36, "batches": 1},
    "best": {"clip": ["RN50x4:openai", _B32, _B16], "iterations": 350, "scale": 4, "cutn": 12, "batches": 2},
    "supreme": {"clip": ["RN50x4:openai", "RN101:openai", _B32, _B16], "iterations": 400, "scale": 5, "cutn": 8,
                "batches": 4},
}
ASPECT_BASE = {"widescreen": (192, 108), "square": (144, 144), "portrait": (128, 160)}
#: the quality whose size scale ``--aspect`` uses when no ``--quality`` is given (2: the default 384x216)
DEFAULT_QUALITY = "normal"


@dataclass(frozen=True)
class Preset:
    """A named bundle of settings (``--preset NAME``), registered in ``pixgen.registry.PRESETS``.

    ``drawer_options`` are settings that only the preset's own drawer understands: they are left out when the
    user picks another drawer.
    """

    settings: dict[str, Any]
    drawer_options: tuple[str, ...] = ()
    description: str = ""


def apply_presets(values: dict[str, Any]) -> dict[str, Any]:
    """Expand ``preset`` and ``quality`` (and ``aspect``) into settings, under the ones given explicitly."""
    values = dict(values)
    base: dict[str, Any] = {}
    preset = values.get("preset")
    if preset is not None:
        bundle = PRESETS.get(str(preset))
        settings = dict(bundle.settings)
        if values.get("drawer") not in (None, settings.get("drawer")):
            for key in bundle.drawer_options:
                settings.pop(key, None)
        base.update(settings)
    quality = values.get("quality")
    if quality is None and values.get("aspect") is not None:  # the aspect at the default quality's scale
        if values.get("size") is not None:
            raise PixgenError("give --size or --aspect, not both (--aspect picks a size of that shape)")
        base["size"] = aspect_size(values["aspect"], QUALITY[DEFAULT_QUALITY]["scale"])
    if quality is not None:
        if quality not in QUALITY:
            raise PixgenError(f"unknown quality {quality!r}; choose one of: {', '.join(QUALITY)}")
        settings = dict(QUALITY[quality])
        scale = settings.pop("scale")
        base.update(settings, size=aspect_size(values.get("aspect") or "widescreen", scale))
    return {**base, **values}


def aspect_size(aspect: str, scale: int) -> str:
    """``WxH`` of pixray's ``aspect`` base size times ``scale``."""
    if aspect not in ASPECT_BASE:
        raise PixgenError(f"unknown aspect {aspect!r}; choose one of: {', '.join(ASPECT_BASE)}")
    width, height = ASPECT_BASE[aspect]
    return f"{width * scale}x{height * scale}"
