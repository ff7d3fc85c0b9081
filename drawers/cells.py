"""Pixel-art cell maps: which grid cell(s) each output pixel shows, computed once per drawer.

A cell map is ``(index, weight)``: ``index`` (K, H, W) long cell ids and ``weight`` (K, H, W) that sum to 1
over K, so rendering is a gather plus a weighted sum. Pixels that a cell edge crosses are supersampled
(4 x 4) once, at build time: their weights are the cells' coverage (anti-aliased edges, K > 1).

Shapes (pixray's ``--pixel_type``; the canvas is cut into ``rows`` bands of height H/rows and ``cols`` columns
of width W/cols, and cells are numbered row by row, left to right):

- ``rect``: one rectangle per (row, col); ``rows * cols`` cells.
- ``rectshift``: rectangles; even rows (0, 2, ...) are shifted half a column right and hold ``cols - 1``
  cells (brick wall). The half-column slivers at their ends widen the end cells.
- ``hex``: pointy-top hexagons ``W/cols`` wide and ``4/3 * H/rows`` tall, centred on the bands; even rows
  shifted as ``rectshift``, so consecutive rows interlock. Regular when ``H/rows = sqrt(3)/2 * W/cols``.
- ``diamond``: diamonds ``W/cols`` wide and ``2 * H/rows`` tall, even rows shifted as ``rectshift``.
- ``tri``: triangles with base ``2 * W/cols`` and height ``H/rows``; column ``c`` of row ``r`` points up
  when ``r + c`` is even. Each row holds ``cols`` cells, neighbours one column apart.

Where a shape leaves the canvas border uncovered (hex, diamond, tri, shifted rows), those pixels go to
the nearest cell, so the map always tiles the whole canvas.
"""

from __future__ import annotations

import torch

from pixgen.errors import PixgenError

CELL_SHAPES = ("rect", "rectshift", "hex", "tri", "diamond")
SHIFTED = ("rectshift", "hex", "diamond")
SUPERSAMPLE = 4

#: polygon vertices in units of the cell box (0..1 = one column / one band), tri: (up, down)
_POLYGONS = {
    "rect": [[(0, 0), (1, 0), (1, 1), (0, 1)]],
    "hex": [[(0.5, -1 / 6), (1, 1 / 6), (1, 5 / 6), (0.5, 7 / 6), (0, 5 / 6), (0, 1 / 6)]],
    "diamond": [[(0.5, -0.5), (1, 0.5), (0.5, 1.5), (0, 0.5)]],
    "tri": [[(0.5, 0), (1.5, 1), (-0.5, 1)], [(-0.5, 0), (1.5, 0), (0.5, 1)]],
}


def cell_map(shape: str, width: int, height: int, cols: int, rows: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(index (K,H,W), weight (K,H,W), n_cells)`` for a ``cols`` x ``rows`` grid of ``shape`` cells."""
    if shape not in CELL_SHAPES:
        raise PixgenError(f"unknown pixel cell shape {shape!r}; choose one of: {', '.join(CELL_SHAPES)}")
    if cols < (2 if shape in SHIFTED else 1) or rows < 1:
        raise PixgenError(f"a {shape} cell grid needs at least {2 if shape in SHIFTED else 1} columns and "
                          f"1 row, got {cols}x{rows}; use more cells")
    grid = _Grid(shape, width / cols, height / rows, cols, rows)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    centre = grid.cell_at(torch.stack([xs.flatten(), ys.flatten()], 1) + 0.5).view(height, width)  # (H, W)
    edge = _edge_pixels(centre)  # (H, W) bool
    sub = (torch.arange(SUPERSAMPLE, dtype=torch.float32) + 0.5) / SUPERSAMPLE
    offsets = torch.stack(torch.meshgrid(sub, sub, indexing="xy"), -1).view(-1, 2)  # (S*S, 2)
    ey, ex = edge.nonzero(as_tuple=True)
    corners = torch.stack([ex, ey], 1).float()  # (N, 2)
    samples = grid.cell_at((corners.unsqueeze(1) + offsets).view(-1, 2)).view(len(ex), len(offsets))  # (N, S*S)
    return (*_slots(centre, ey, ex, samples), grid.n_cells)


class _Grid:
    """Cell centres and shapes of one grid; ``cell_at`` finds the cell covering each point."""

    def __init__(self, shape: str, cw: float, ch: float, cols: int, rows: int) -> None:
        self.shift = shape in SHIFTED
        self.cw, self.ch, self.cols, self.rows = cw, ch, cols, rows
        # rectangles stay in their band (end slivers of shifted rows join the end cells); others may reach
        # into the bands above and below
        self.near_rows = torch.tensor([0] if shape in ("rect", "rectshift") else [-1, 0, 1])
        polygons = torch.tensor(_POLYGONS["rect" if shape == "rectshift" else shape], dtype=torch.float32)
        polygons = polygons * torch.tensor([cw, ch], dtype=torch.float32)  # (V, n, 2) pixels
        self.centre = polygons.mean(1)  # (V, 2) reference point inside each variant
        edge = polygons.roll(-1, dims=1) - polygons  # (V, n, 2)
        self.normal = torch.stack([edge[..., 1], -edge[..., 0]], -1)  # (V, n, 2), made outward below
        self.reach = (self.normal * (polygons - self.centre.unsqueeze(1))).sum(-1)  # (V, n)
        self.normal, self.reach = self.normal * self.reach.sign().unsqueeze(-1), self.reach.abs()
        per_row = torch.full((rows,), cols)
        if self.shift:
            per_row[0::2] = cols - 1
        self.per_row = per_row
        self.row_start = torch.cumsum(per_row, 0) - per_row  # (rows,)
        self.n_cells = int(per_row.sum())

    def cell_at(self, p: torch.Tensor, chunk: int = 1 << 15) -> torch.Tensor:
        """Cell id (N,) covering each point ``p`` (N, 2) px, in chunks of bounded memory."""
        return torch.cat([self._cell_at(part) for part in p.split(chunk)]) if len(p) else p.new_zeros(0).long()

    def _cell_at(self, p: torch.Tensor) -> torch.Tensor:
        """The candidate cell whose shape, scaled about its centre, first reaches each point (smallest
        gauge: exact inside the tiling, the nearest cell outside it)."""
        row0 = torch.floor(p[:, 1] / self.ch).long()
        rows = (row0.unsqueeze(1) + self.near_rows).clamp(0, self.rows - 1)  # (N, R)
        col0 = torch.floor(p[:, :1] / self.cw - self._offset(rows)).long()  # (N, R)
        cols = col0.unsqueeze(-1) + torch.tensor([-1, 0, 1])  # (N, R, 3)
        cols = torch.minimum(cols.clamp(min=0), (self.per_row[rows] - 1).unsqueeze(-1)).flatten(1)  # (N, 3R)
        rows = rows.repeat_interleave(3, dim=1)  # (N, 3R)
        corner = torch.stack([(cols + self._offset(rows)) * self.cw, rows * self.ch], -1)  # (N, 3R, 2)
        gauge = None
        for v in range(len(self.centre)):  # tri: up and down triangles; other shapes: one variant
            local = p.unsqueeze(1) - corner - self.centre[v]  # (N, 3R, 2)
            g = (local @ self.normal[v].T / self.reach[v]).amax(-1)  # (N, 3R)
            g = g + 1e-3 * local.square().sum(-1) / (self.cw ** 2 + self.ch ** 2)  # ties: nearest centre
            gauge = g if gauge is None else torch.where((rows + cols) % 2 == v, g, gauge)
        best = gauge.argmin(1, keepdim=True)
        return (self.row_start[rows] + cols).gather(1, best).squeeze(1)

    def _offset(self, rows: torch.Tensor) -> torch.Tensor:
        """Column offset of each row: half a column for even rows of shifted shapes."""
        return 0.5 * (rows % 2 == 0).float() if self.shift else torch.zeros_like(rows, dtype=torch.float32)


def _edge_pixels(centre: torch.Tensor) -> torch.Tensor:
    """Pixels whose 8-neighbourhood shows more than one cell, (H, W) bool."""
    padded = torch.nn.functional.pad(centre[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0]
    h, w = centre.shape
    edge = torch.zeros(h, w, dtype=torch.bool)
    for dy in range(3):
        for dx in range(3):
            edge |= padded[dy:dy + h, dx:dx + w].long() != centre
    return edge


def _slots(centre: torch.Tensor, ey: torch.Tensor, ex: torch.Tensor,
           samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack the distinct cells of supersampled pixels into K slots: ``(index (K,H,W), weight (K,H,W))``."""
    ids, _ = samples.sort(dim=1)  # (N, S*S)
    new = torch.ones_like(ids, dtype=torch.bool)
    new[:, 1:] = ids[:, 1:] != ids[:, :-1]
    slot = torch.cumsum(new.long(), 1) - 1  # (N, S*S)
    k = int(slot.max()) + 1 if len(slot) else 1
    index = centre.unsqueeze(0).repeat(k, 1, 1)  # (K, H, W)
    weight = torch.zeros(k, *centre.shape)
    weight[0] = 1.0
    weight[:, ey, ex] = 0.0
    flat = slot * centre.numel() + (ey * centre.shape[1] + ex).unsqueeze(1)  # (N, S*S) into (K*H*W)
    index.view(-1)[flat.flatten()] = ids.flatten()
    weight.view(-1).index_add_(0, flat.flatten(), torch.full((ids.numel(),), 1.0 / ids.shape[1]))
    return index, weight
