"""Pictures as prompts: ``--image-prompt FILE[:WEIGHT[:STOP]]`` and ``--target-image FILE[:WEIGHT[:STOP]]``.

An *image prompt* goes through exactly the cutouts of the render each step (the same sampled transforms,
``Cutouts.replay``) and each of its cutouts is re-encoded: cutout i of the render is pulled towards cutout i of
the picture (pixray's image prompts). A *target image* is encoded once, from a few fixed crops of the whole
picture averaged into one embedding, and then used like a text prompt. FILE may be a glob (``refs/*.png``).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import torch

from pixgen.errors import PixgenError
from pixgen.prompts import parse_prompt


@dataclass(frozen=True)
class ImagePrompt:
    """One picture with its weight and stop (a distance, as for text prompts)."""

    path: Path
    weight: float = 1.0
    stop: float = float("-inf")


def parse_image_prompts(specs: list[str] | tuple[str, ...], option: str) -> tuple[ImagePrompt, ...]:
    """``FILE[:WEIGHT[:STOP]]`` specs (numbers split from the right; FILE may be a glob) -> checked prompts; a
    missing, unreadable or non-image file, or a glob that matches nothing, is one clear line."""
    from pixgen.io import open_image

    out = []
    for spec in specs:
        parsed = parse_prompt(str(spec))
        pattern = parsed.text
        if not pattern:
            raise PixgenError(f"{option} {spec!r} names no file; write {option} FILE[:WEIGHT[:STOP]]")
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise PixgenError(f"{option} {pattern!r} matches no file; check the pattern")
        for path in paths:
            open_image(path, f"{option} file")  # readable now, before any model loads
            out.append(ImagePrompt(Path(path), parsed.weight, parsed.stop))
    return tuple(out)


def whole_image_crops(image: torch.Tensor, size: int) -> torch.Tensor:
    """Fixed crops of a (1, 3, H, W) picture for its one-off embedding, (6, 3, size, size): the whole picture
    squeezed square, the centre square, and four corner crops of 80 % of each side."""
    import torch.nn.functional as F

    _, _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    ch, cw = max(1, round(0.8 * h)), max(1, round(0.8 * w))
    crops = [image, image[..., top:top + side, left:left + side]]
    crops += [image[..., y:y + ch, x:x + cw] for y in (0, h - ch) for x in (0, w - cw)]
    return torch.cat([F.interpolate(c, size=(size, size), mode="bilinear", antialias=True) for c in crops])
