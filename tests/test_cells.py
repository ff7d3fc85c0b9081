"""Pixel-art cell maps: every shape tiles the canvas with no gaps, anti-aliased edges, pixray's geometry."""

from __future__ import annotations

import pytest
import torch
from conftest import fit_to_target

from pixgen.drawers.cells import CELL_SHAPES, cell_map
from pixgen.errors import PixgenError

pytestmark = pytest.mark.usefixtures("one_thread")


W, H, COLS, ROWS = 150, 112, 9, 7
EXPECTED_CELLS = {"rect": 63, "rectshift": 59, "hex": 59, "diamond": 59, "tri": 63}  # even rows shifted: -1 each


@pytest.mark.parametrize("shape", CELL_SHAPES)
def test_cell_map_tiles_the_canvas_with_no_gaps(shape: str) -> None:
    index, weight, n_cells = cell_map(shape, W, H, COLS, ROWS)
    assert n_cells == EXPECTED_CELLS[shape]
    assert index.shape == weight.shape and index.shape[1:] == (H, W) and index.dtype == torch.long
    assert index.min() >= 0 and index.max() < n_cells
    torch.testing.assert_close(weight.sum(0), torch.ones(H, W))  # every pixel fully covered, nothing twice
    assert weight.min() >= 0
    area = torch.zeros(n_cells).index_add_(0, index.flatten(), weight.flatten())  # (n_cells,) pixels
    assert area.min() > 0  # every cell shows
    assert area.median() == pytest.approx(W * H / (COLS * ROWS), rel=0.03)  # interior cells: one grid slot each


@pytest.mark.parametrize("shape", CELL_SHAPES)
def test_edges_are_anti_aliased(shape: str) -> None:
    index, weight, _ = cell_map(shape, W, H, COLS, ROWS)
    partial = (weight > 0) & (weight < 1)
    assert index.shape[0] > 1 and partial.any()
    assert partial.any(0).float().mean() < 0.5  # only pixels on cell edges are mixed


def test_rect_on_an_exact_grid_is_nearest_neighbour_upsampling() -> None:
    index, weight, n_cells = cell_map("rect", 40, 30, 8, 6)
    assert index.shape[0] == 1 and torch.equal(weight, torch.ones(1, 30, 40)) and n_cells == 48
    expected = (torch.arange(30) // 5).view(30, 1) * 8 + (torch.arange(40) // 5).view(1, 40)
    assert torch.equal(index[0], expected)


def cell_at(shape: str, x: float, y: float) -> int:
    """The dominant cell of the pixel containing the point (x, y), in units of one column / one band."""
    index, weight, _ = cell_map(shape, W, H, COLS, ROWS)
    px, py = int(x * W / COLS), int(y * H / ROWS)
    return int(index[weight[:, py, px].argmax(), py, px])


def test_shapes_follow_pixray_geometry() -> None:
    # rectshift: row 0 is shifted half a column (8 cells), row 1 is not (9 cells)
    assert cell_at("rectshift", 0.7, 0.5) == 0 and cell_at("rectshift", 1.7, 0.5) == 1
    assert cell_at("rectshift", 0.7, 1.5) == 8 and cell_at("rectshift", 1.2, 1.5) == 9
    # hex: the top of row 1 between two of its hexagons belongs to the shifted row 0 above
    assert cell_at("hex", 2.5, 1.5) == 8 + 2 and cell_at("hex", 3.0, 1.04) == 2
    # tri: row 0, col 0 points up (apex at the top centre), col 1 points down
    assert cell_at("tri", 0.5, 0.9) == 0 and cell_at("tri", 1.0, 0.1) == 1 and cell_at("tri", 1.5, 0.9) == 1
    # diamond: the centre of row 1, col 0 and the corner region above it that belongs to row 0
    assert cell_at("diamond", 0.5, 1.5) == 8 and cell_at("diamond", 1.0, 0.6) == 0


def test_bad_shapes_and_grids_fail_clearly() -> None:
    with pytest.raises(PixgenError, match="hex"):
        cell_map("knit", W, H, COLS, ROWS)
    with pytest.raises(PixgenError, match="columns"):
        cell_map("hex", W, H, 1, ROWS)


@pytest.mark.parametrize("shape", CELL_SHAPES)
def test_pixel_drawer_with_each_shape_renders_and_learns(shape: str) -> None:
    from pixgen.drawers.pixel import PixelDrawer

    drawer = PixelDrawer(60, 45, shape=shape, cells="10x8")
    drawer.init_from_noise("snow", torch.Generator().manual_seed(0))
    target = torch.zeros(1, 3, 45, 60)
    target[:, 1] = 1.0
    losses = fit_to_target(drawer, target, steps=5, lr=0.1)
    assert torch.isfinite(drawer.colors.grad).all() and losses[-1] < 0.8 * losses[0]
