"""``--loss palette``: pixray's palette loss, the distance of every cutout pixel to its nearest palette colour.

It pulls colours onto ``--palette`` softly (the ``lookup`` filter snaps them). Same scale as pixray's
``PaletteLoss``: per cutout batch, the mean Euclidean RGB distance × the number of cutouts / 10, summed over
batches; so ``--loss palette@W`` behaves as pixray's ``--palette_weight W``.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import torch

from pixgen.losses.base import Loss, LossInput
from pixgen.palette import PIXRAY_DEFAULT, nearest_colour, parse_palette

log = logging.getLogger("pixgen")


class PaletteLoss(Loss):
    """Mean distance of each cutout pixel to the nearest ``palette`` colour (pixray's scale: × cutn / 10)."""

    name: ClassVar[str] = "palette"

    def __init__(self, *, palette: str | None = None) -> None:
        """Option: ``palette``, a palette string (pixray's built-in 15 colours if not given)."""
        super().__init__()
        if palette is None:
            log.info("palette loss: no --palette given, using pixray's built-in 15-colour palette")
        self.register_buffer("palette", parse_palette(PIXRAY_DEFAULT if palette is None else palette))  # (K, 3)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Sum over the cutout batches (the render when there are none) of mean distance × batch size / 10."""
        batches = list(inp.cutouts.values()) or [inp.render]
        return torch.stack([self.distance(images) * images.shape[0] / 10 for images in batches]).sum()

    def distance(self, images: torch.Tensor) -> torch.Tensor:
        """Mean Euclidean distance of the pixels of (N, 3, H, W) to their nearest palette colours."""
        pixels = images.movedim(1, -1).reshape(-1, 3)  # (N*H*W, 3)
        nearest = self.palette.to(pixels.dtype)[nearest_colour(pixels, self.palette)]
        return torch.linalg.vector_norm(pixels - nearest, dim=1).mean()
