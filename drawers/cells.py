"""Pixel-art cell maps: which grid cell(s) each output pixel shows, computed once per drawer.

A cell map is ``(index, weight)``: ``index`` (K, H, W) long cell ids and ``weight`` (K, H, W) that sum to 1
over K, so rendering is a gather plus a weighted sum (anti-aliased edges where K > 1).
"""

from __future__ import annotations

import torch

from pixgen.errors import PixgenError

CELL_SHAPES = ("rect",)


def cell_map(shape: str, width: int, height: int, cols: int, rows: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(index (K,H,W), weight (K,H,W), n_cells)`` for a ``cols`` x ``rows`` grid of ``shape`` cells."""
    if shape == "rect":
        return rect_map(width, height, cols, rows)
    raise PixgenError(f"unknown pixel cell shape {shape!r}; choose one of: {', '.join(CELL_SHAPES)}")


def rect_map(width: int, height: int, cols: int, rows: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Axis-aligned rectangular cells (nearest-neighbour upsampling of the grid)."""
    col = (torch.arange(width) * cols // width).view(1, width)
    row = (torch.arange(height) * rows // height).view(height, 1)
    index = (row * cols + col).unsqueeze(0)  # (1, H, W)
    return index, torch.ones(index.shape), rows * cols
