"""``--filters lookup``: pixray's colour lookup. Every pixel is snapped to its nearest ``--palette`` colour.

The snap has no useful gradient, so it is straight-through: the forward value is the palette colour, the
gradient passes to the render as if there were no snap. A VQ-style commitment loss, ``lookup_beta`` × the mean
squared distance from the render to its snapped colours (gradient to the render only; the palette is fixed),
pulls the drawer's colours onto the palette so the snap changes little. The saved image is snapped too.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import torch

from pixgen.errors import PixgenError
from pixgen.filters.base import Filter
from pixgen.palette import PIXRAY_DEFAULT, nearest_colour, parse_palette

log = logging.getLogger("pixgen")


class LookupFilter(Filter):
    """Snap to the nearest ``palette`` colour (straight-through) plus a commitment loss × ``lookup_beta``."""

    name: ClassVar[str] = "lookup"

    def __init__(self, *, palette: str | None = None, lookup_beta: float = 10.0) -> None:
        """Options: ``palette`` (a palette string; pixray's built-in 15 colours if not given) and
        ``lookup_beta``, the weight of the commitment loss."""
        super().__init__()
        if not lookup_beta >= 0:
            raise PixgenError(f"lookup_beta must be >= 0, got {lookup_beta}")
        if palette is None:
            log.info("lookup: no --palette given, using pixray's built-in 15-colour palette")
        self.beta = float(lookup_beta)
        self.register_buffer("palette", parse_palette(PIXRAY_DEFAULT if palette is None else palette))  # (K, 3)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, H, W) -> (palette colours with the render's gradient, beta × commitment loss)."""
        snapped = self.snap(image)
        loss = self.beta * torch.mean((image - snapped) ** 2)
        return snapped + (image - image.detach()), loss  # value: exactly the palette colours

    def output(self, image: torch.Tensor) -> torch.Tensor:
        """The image snapped to the palette."""
        return self.snap(image)

    def snap(self, image: torch.Tensor) -> torch.Tensor:
        """Every pixel of (B, 3, H, W) replaced by its nearest palette colour (no gradient)."""
        pixels = image.detach().movedim(1, -1).reshape(-1, 3)  # (B*H*W, 3)
        index = nearest_colour(pixels, self.palette)
        snapped = self.palette.to(image.dtype)[index]  # (B*H*W, 3)
        return snapped.reshape(*image.shape[:1], *image.shape[2:], 3).movedim(-1, 1)
