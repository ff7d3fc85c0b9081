"""Named bundles of settings. Explicit settings always win over a preset; a preset wins over the defaults.

``quality`` follows pixray (REFERENCE.md §1.8): CLIP models, iterations, size scale, cutouts and batches.
``preset`` names a bundle for a purpose (``shapes``: the built-in offline models).
"""

from __future__ import annotations

from typing import Any

from pixgen.errors import PixgenError

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

PRESETS: dict[str, dict[str, Any]] = {
    # both shapes CLIPs (the CNN, trained on minimal pairs and on generation runs, tells a square from a
    # circle and is hard to fool), a start drawn by the code prior for the prompt (backgrounds and places
    # right from step 0), mostly wide cutouts (the CLIPs read positions and counts from the whole image), the
    # shapes denoiser's prior after the first 30 % of the run (clean flat shapes) and a latent pyramid that
    # moves whole areas, with the lr rising over the first 10 % (else Adam's first step, a full-lr step on
    # every grid, wipes out the prior's start); a two-shape caption is also scored shape by shape in a box on
    # its side of the relation, with nothing outside the boxes (the layout loss; it lets the denoiser pull
    # harder without erasing the pair's small shapes); measured in scripts/eval_shapes.py (README, "The shapes
    # demo")
    "shapes": {"clip": ["shapes", "shapes_cnn@2"], "drawer": "vqgan:shapes", "size": "64x64", "iterations": 150,
               "cutn": 16, "lr": 0.5, "lr_warmup": 10, "cut_zoom": 0.1, "loss": ["denoise:0.3@60", "layout"],
               "latent_levels": 4, "init_noise": "prior", "code_prior": "shapes"},
}
#: preset settings that are options of the preset's own drawer: left out when the user picks another drawer
DRAWER_OPTIONS: dict[str, tuple[str, ...]] = {"shapes": ("latent_levels", "init_noise", "code_prior")}


def apply_presets(values: dict[str, Any]) -> dict[str, Any]:
    """Expand ``preset`` and ``quality`` (and ``aspect``) into settings, under the ones given explicitly."""
    values = dict(values)
    base: dict[str, Any] = {}
    preset = values.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise PixgenError(f"unknown preset {preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
        settings = dict(PRESETS[preset])
        if values.get("drawer") not in (None, settings.get("drawer")):
            for key in DRAWER_OPTIONS.get(preset, ()):
                settings.pop(key, None)
        base.update(settings)
    quality = values.get("quality")
    if quality is not None:
        if quality not in QUALITY:
            raise PixgenError(f"unknown quality {quality!r}; choose one of: {', '.join(QUALITY)}")
        settings = dict(QUALITY[quality])
        aspect = values.get("aspect") or "widescreen"
        if aspect not in ASPECT_BASE:
            raise PixgenError(f"unknown aspect {aspect!r}; choose one of: {', '.join(ASPECT_BASE)}")
        width, height = ASPECT_BASE[aspect]
        scale = settings.pop("scale")
        base.update(settings, size=f"{width * scale}x{height * scale}")
    return {**base, **values}
