"""Pixel-art drawer: a grid of colour cells (rectangles, or the shapes in ``cells.py``), pure torch.

Each output pixel shows one cell (or, on anti-aliased edges, a weighted mix of neighbours); the cell map is
computed once, so a render is a gather and a weighted sum.
"""

from __future__ import annotations

import torch
from torch import nn

from pixgen.drawers.base import Drawer
from pixgen.drawers.cells import cell_map
from pixgen.errors import PixgenError


class PixelDrawer(Drawer):
    """Colour cells on a grid; ``pixel_size`` (cell edge in output pixels) or ``cells`` ("COLSxROWS")."""

    name = "pixel"
    spec_args = ("shape",)
    default_lr = 0.03

    def __init__(self, width: int, height: int, *, shape: str = "rect", pixel_size: int | None = None,
                 cells: str | None = None) -> None:
        super().__init__(width, height, shape=shape, pixel_size=pixel_size, cells=cells)
        self.cols, self.rows = grid_size(width, height, pixel_size, cells, shape)
        index, weight, n_cells = cell_map(shape, width, height, self.cols, self.rows)
        self.register_buffer("index", index, persistent=False)  # (K, H, W)
        self.register_buffer("weight", weight, persistent=False)  # (K, H, W)
        self.colors = nn.Parameter(torch.full((3, n_cells), 0.5))  # (3, cells)

    def render(self) -> torch.Tensor:
        """Gather each pixel's cell colours and blend them by coverage."""
        k, h, w = self.index.shape
        picked = self.colors[:, self.index.reshape(-1)].view(3, k, h, w)  # (3, K, H, W)
        return (picked * self.weight).sum(dim=1).unsqueeze(0).clamp(0, 1)

    @torch.no_grad()
    def init_from_image(self, img: torch.Tensor) -> None:
        """Each cell takes the coverage-weighted mean colour of the pixels it covers."""
        img = img.to(self.colors.device)[0]  # (3, H, W)
        flat_index, flat_weight = self.index.reshape(-1), self.weight.reshape(-1)
        pixels = img.unsqueeze(1).expand(3, self.index.shape[0], -1, -1).reshape(3, -1)  # (3, K*H*W)
        sums = torch.zeros_like(self.colors).index_add_(1, flat_index, pixels * flat_weight)
        counts = torch.zeros(self.colors.shape[1], device=img.device).index_add_(0, flat_index, flat_weight)
        self.colors.copy_((sums / counts.clamp_min(1e-6)).clamp(0, 1))

    @torch.no_grad()
    def project_(self) -> None:
        """Keep colours in [0, 1]."""
        self.colors.clamp_(0, 1)


# pixray's grid adjustments that keep these cells roughly regular when the grid is derived from the size
_SHAPE_STRETCH = {"hex": (1.0, 1.414), "tri": (1.414, 1.0), "diamond": (1.0, 2.0)}


def grid_size(width: int, height: int, pixel_size: int | None, cells: str | None,
              shape: str = "rect") -> tuple[int, int]:
    """(cols, rows): from ``cells`` as given, else from ``pixel_size`` or pixray's 80 cells on the long side of a
    wide image (40 for square and portrait ones), stretched for hex/tri/diamond cells as pixray does."""
    if cells is not None:
        try:
            cols, rows = (int(v) for v in cells.lower().split("x"))
        except ValueError:
            raise PixgenError(f"cells {cells!r} is not COLSxROWS; write e.g. --cells 80x45") from None
    elif pixel_size is not None:
        if pixel_size < 1:
            raise PixgenError(f"pixel_size must be at least 1, got {pixel_size}")
        cols, rows = max(1, round(width / pixel_size)), max(1, round(height / pixel_size))
    else:
        long_cells = 80 if width > 1.2 * height else 40
        scale = long_cells / max(width, height)
        cols, rows = max(1, round(width * scale)), max(1, round(height * scale))
    if cells is None:
        stretch_x, stretch_y = _SHAPE_STRETCH.get(shape, (1.0, 1.0))
        cols, rows = min(width, round(cols * stretch_x)), min(height, round(rows * stretch_y))
    if not (0 < cols <= width and 0 < rows <= height):
        raise PixgenError(f"a {cols}x{rows} grid does not fit a {width}x{height} image; use fewer cells")
    return cols, rows
