"""``--filters wallpaper``: pixray's wallpaper filter, random rolls that make the image a repeating pattern.

``--wallpaper-type`` (or ``--filters wallpaper:TYPE``):

- ``both`` (default, pixray's fallback): roll in x and y, like ``tiler``: a tile that repeats both ways;
- ``shift``: a brick pattern: the tile is stacked over a copy of itself shifted by half its width, and that
  (2H, W) pair is rolled, so CLIP sees rows of tiles offset by half a tile;
- ``horizontal`` / ``vertical``: roll along one axis only (a frieze, or a vertical strip).

``--wallpaper-edge-match N`` (horizontal or vertical): the render keeps an N-pixel margin; a loss (MSE × 100 / N)
pulls the first N columns (rows) toward the last N, and N/2 is cropped from each side, so the edges join. The
saved image is the tile: never rolled, cropped by the edge match.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from pixgen.errors import PixgenError
from pixgen.filters.base import Filter, no_loss, random_shift

TYPES = ("both", "shift", "horizontal", "vertical")


class WallpaperFilter(Filter):
    """Random rolls for a repeating pattern (``wallpaper_type`` both, shift, horizontal, vertical)."""

    name: ClassVar[str] = "wallpaper"
    spec_args: ClassVar[tuple[str, ...]] = ("wallpaper_type",)

    def __init__(self, *, wallpaper_type: str = "both", wallpaper_edge_match: int = 0) -> None:
        """Options: ``wallpaper_type`` (both, shift, horizontal, vertical) and ``wallpaper_edge_match`` (pixels)."""
        super().__init__()
        if wallpaper_type not in TYPES:
            raise PixgenError(f"unknown wallpaper type {wallpaper_type!r}; choose one of: {', '.join(TYPES)}")
        if wallpaper_edge_match < 0:
            raise PixgenError(f"wallpaper_edge_match must be >= 0 pixels, got {wallpaper_edge_match}")
        if wallpaper_edge_match and wallpaper_type not in ("horizontal", "vertical"):
            raise PixgenError("wallpaper_edge_match works with --wallpaper-type horizontal or vertical, not "
                              f"{wallpaper_type}")
        self.kind, self.edge = wallpaper_type, wallpaper_edge_match
        self.dim = -1 if wallpaper_type == "horizontal" else -2

    def setup(self, context: Any) -> None:
        """Check that the edge match leaves a tile of at least one pixel."""
        width, height = context.size
        side = width if self.dim == -1 else height
        if self.edge and (self.edge > side or side - 2 * (self.edge // 2) < 1):
            raise PixgenError(f"wallpaper_edge_match {self.edge} is too large for a {width}x{height} image")

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, H, W) -> the rolled pattern ((1, 3, 2H, W) for ``shift``) and the edge-match loss."""
        loss = no_loss(image)
        if self.edge:
            head, tail = image.narrow(self.dim, 0, self.edge), image.narrow(self.dim, -self.edge, self.edge)
            loss = F.mse_loss(head, tail) * 100 / self.edge
            image = self.output(image)
        height, width = image.shape[-2:]
        if self.kind == "shift":
            image = torch.cat([image, torch.roll(image, shifts=width // 2, dims=-1)], dim=-2)  # (1, 3, 2H, W)
            height *= 2
        dims = {"horizontal": (-1,), "vertical": (-2,)}.get(self.kind, (-2, -1))
        shifts = tuple(random_shift(height if d == -2 else width) for d in dims)
        return torch.roll(image, shifts=shifts, dims=dims), loss

    def output(self, image: torch.Tensor) -> torch.Tensor:
        """The tile: not rolled; with an edge match, ``edge // 2`` cropped from both ends."""
        crop = self.edge // 2
        return image.narrow(self.dim, crop, image.shape[self.dim] - 2 * crop) if crop else image
