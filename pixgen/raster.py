"""A differentiable vector rasterizer in plain PyTorch: anti-aliased cubic Bézier strokes and filled paths.

No diffvg: it runs wherever torch runs (CPU or GPU, the device of the inputs). How it works:

1. **Flatten** every cubic segment into chords (``pixgen.bezier.flatten``, adaptive count, 0.2 px error).
2. **Bin** chords into ``tile`` x ``tile`` pixel tiles: a chord is paired only with the tiles within half its
   stroke width (plus 1 px for anti-aliasing) of it. All later work is per (path, tile) pair, so memory and
   time grow with the area the strokes cover, never with strokes x pixels.
3. **Distance** from each pixel centre of a pair's tile to the nearest chord of that path
   (``TileDistance``: a custom autograd function that saves only the winning chord per pixel).
4. **Coverage** of a 1-px box filter: a stroke of width ``w`` covers
   ``clamp(min(d+w/2, .5) - max(d-w/2, -.5))`` of a pixel at distance ``d`` from its centre line
   (round caps and joins, exact for straight strokes);
   a filled path covers ``clamp(0.5 ± d)`` (+ inside, nonzero winding rule, as SVG).
5. **Composite** layers back to front with the over operator (a path's fill, then its stroke), in closed form:
   ``out = Σ_i α_i c_i Π_{j>i} (1-α_j) + bg Π_j (1-α_j)``, the products taken as float64 suffix sums of
   ``log(1-α)`` over each tile's sorted pairs.

Gradients reach control points (through distances), stroke widths (through coverage), colours and alphas,
and the background colour. Colours are composited in sRGB space as SVG renderers do, so ``pixgen.svg``
output rendered by an independent renderer matches (see tests/test_raster.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pixgen.bezier import TileDistance, flatten, inside_mask, segment_distance, tile_origins
from pixgen.errors import PixgenError

#: distance given to pixels no chord of the path comes near
FAR = 1e4


@dataclass
class Paths:
    """A batch of paths made of cubic Bézier segments, in pixel coordinates (x right, y down)."""

    ctrl: torch.Tensor  # (M, 4, 2) control points of every segment
    seg_path: torch.Tensor  # (M,) long, path of each segment, non-decreasing; every path has >= 1 segment
    stroke_width: torch.Tensor  # (P,) pixels
    stroke_rgba: torch.Tensor  # (P, 4) in [0, 1]
    fill_rgba: torch.Tensor | None = None  # (P, 4): when given, every path is closed and filled

    @property
    def n_paths(self) -> int:
        """Number of paths P."""
        return len(self.stroke_width)


def rasterize(paths: Paths, width: int, height: int, background: torch.Tensor, *, tile: int = 8,
              tolerance: float = 0.2) -> torch.Tensor:
    """Render ``paths`` over ``background`` ((3,) colour or (1, 3, H, W) image) as a (1, 3, H, W) image."""
    if paths.ctrl.ndim != 3 or paths.ctrl.shape[1:] != (4, 2) or len(paths.seg_path) != len(paths.ctrl):
        raise PixgenError("rasterize: ctrl must be (M, 4, 2) with one seg_path entry per segment; "
                          f"got {tuple(paths.ctrl.shape)} and {tuple(paths.seg_path.shape)}")
    n_paths, nx, ny = paths.n_paths, math.ceil(width / tile), math.ceil(height / tile)
    a, b, edge_path = _edges(paths, tolerance)  # (E, 2), (E, 2), (E,)
    reach = paths.stroke_width.detach()[edge_path] / 2 + 1.0  # (E,)
    q_edge, q_tile = bin_edges(a.detach(), b.detach(), reach, tile, nx, ny)
    slot_keys, q_slot = torch.unique(q_tile * n_paths + edge_path[q_edge], return_inverse=True)  # (U,), (Q,)
    slot_tile, slot_path = slot_keys // n_paths, slot_keys % n_paths
    origin = tile_origins(slot_tile, nx, tile, a.dtype)  # (U, 2)
    dist = TileDistance.apply(a, b, q_edge, q_slot, origin, len(slot_keys), tile)  # (U, T*T)

    half = (paths.stroke_width[slot_path] / 2).unsqueeze(1)  # (U, 1)
    cover = ((dist + half).clamp(max=0.5) - (dist - half).clamp(min=-0.5)).clamp(0, 1)  # (U, T*T)
    rgba = paths.stroke_rgba[slot_path]  # (U, 4)
    layers = [(slot_tile, 2 * slot_path + 1, cover * rgba[:, 3:], rgba[:, :3])]
    if paths.fill_rgba is not None:
        layers.append(_fill_layer(paths, a, b, edge_path, slot_keys, dist, tile, nx, ny))
    tiles, order_in_tile, alpha, rgb = (torch.cat(parts) for parts in zip(*layers, strict=True))
    order = torch.argsort(tiles * (2 * n_paths) + order_in_tile)
    bg = _background_tiles(background, width, height, tile, nx, ny)  # (nx*ny or 1, T*T, 3)
    out = composite(tiles[order], alpha[order], rgb[order], bg, nx * ny)  # (nx*ny, T*T, 3)
    out = out.view(ny, nx, tile, tile, 3).permute(4, 0, 2, 1, 3).reshape(3, ny * tile, nx * tile)
    return out[:, :height, :width].unsqueeze(0)


def _edges(paths: Paths, tolerance: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All chords with their path; closed paths get a closing chord from the last point to the first."""
    a, b, seg = flatten(paths.ctrl, tolerance)
    edge_path = paths.seg_path[seg]
    if paths.fill_rgba is None:
        return a, b, edge_path
    counts = torch.bincount(paths.seg_path, minlength=paths.n_paths)  # (P,)
    last = torch.cumsum(counts, 0) - 1  # (P,) last segment of each path
    first = last - counts + 1
    path_ids = torch.arange(paths.n_paths, device=a.device)
    return (torch.cat([a, paths.ctrl[last, 3]]), torch.cat([b, paths.ctrl[first, 0]]),
            torch.cat([edge_path, path_ids]))


def bin_edges(a: torch.Tensor, b: torch.Tensor, reach: torch.Tensor, tile: int, nx: int,
              ny: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(edge, tile) pairs where chord ``a``-``b`` (E, 2) comes within ``reach`` (E,) px of the tile."""
    lo = torch.minimum(a, b) - reach.unsqueeze(1)  # (E, 2)
    hi = torch.maximum(a, b) + reach.unsqueeze(1)
    edge, tx, ty = boxes_to_tiles(lo, hi, tile, nx, ny)
    centre = torch.stack((tx, ty), dim=1).to(a.dtype).add(0.5).mul(tile)  # (Q, 2)
    dist, _ = segment_distance(centre, a[edge], b[edge])
    keep = dist <= reach[edge] + tile * math.sqrt(0.5)
    return edge[keep], (ty * nx + tx)[keep]


def composite(tile_ids: torch.Tensor, alpha: torch.Tensor, rgb: torch.Tensor, background: torch.Tensor,
              n_tiles: int) -> torch.Tensor:
    """Over-composite layers sorted by (tile, depth): alpha (L, T*T), rgb (L, 3) -> (n_tiles, T*T, 3)."""
    log_t = torch.log1p(-alpha.double().clamp(max=1 - 1e-6))  # (L, T*T), log transmittance of each layer
    suffix = torch.cat([log_t.flip(0).cumsum(0).flip(0), log_t.new_zeros(1, log_t.shape[1])])  # (L+1, T*T)
    counts = torch.bincount(tile_ids, minlength=n_tiles)  # (n_tiles,)
    ends = torch.cumsum(counts, 0)  # (n_tiles,) one past each tile's last layer
    behind = torch.exp(suffix[1:] - suffix[ends[tile_ids]]).to(alpha.dtype)  # (L, T*T) Π_{j>i} (1 - α_j)
    colour = (alpha * behind).unsqueeze(-1) * rgb.unsqueeze(1)  # (L, T*T, 3)
    out = colour.new_zeros(n_tiles, alpha.shape[1], 3).index_add(0, tile_ids, colour)
    clear = torch.exp(suffix[ends - counts] - suffix[ends]).to(alpha.dtype)  # (n_tiles, T*T) Π_all (1 - α)
    return out + clear.unsqueeze(-1) * background


def _background_tiles(background: torch.Tensor, width: int, height: int, tile: int, nx: int,
                      ny: int) -> torch.Tensor:
    """The background as (1, 1, 3) for a colour, or (nx*ny, T*T, 3) tiles for an image."""
    if background.numel() == 3:
        return background.reshape(1, 1, 3)
    if background.shape[-3:] != (3, height, width):
        raise PixgenError(f"rasterize: background must be a (3,) colour or a (1, 3, {height}, {width}) "
                          f"image, got {tuple(background.shape)}")
    img = background.reshape(3, height, width)
    img = torch.nn.functional.pad(img, (0, nx * tile - width, 0, ny * tile - height), mode="replicate")
    return img.view(3, ny, tile, nx, tile).permute(1, 3, 2, 4, 0).reshape(nx * ny, tile * tile, 3)


def _fill_layer(paths: Paths, a: torch.Tensor, b: torch.Tensor, edge_path: torch.Tensor,
                slot_keys: torch.Tensor, dist: torch.Tensor, tile: int, nx: int, ny: int) -> tuple:
    """Fill coverage for every (tile, path) in each path's bounding box: ``clamp(0.5 ± d)``, + inside."""
    n_paths, fa, fb = paths.n_paths, a.detach(), b.detach()
    idx = edge_path.unsqueeze(1).expand(-1, 2)
    lo = fa.new_full((n_paths, 2), math.inf).scatter_reduce(0, idx, torch.minimum(fa, fb), "amin")  # (P, 2)
    hi = fa.new_full((n_paths, 2), -math.inf).scatter_reduce(0, idx, torch.maximum(fa, fb), "amax")
    path, tx, ty = boxes_to_tiles(lo - 1.0, hi + 1.0, tile, nx, ny)  # (F,) each
    tiles = ty * nx + tx
    inside = inside_mask(tile_origins(tiles, nx, tile, a.dtype), path, fa, fb, edge_path, tile)  # (F, T*T)
    d = dist.new_full(inside.shape, FAR)
    if len(slot_keys):
        keys = tiles * n_paths + path
        slot = torch.searchsorted(slot_keys, keys).clamp(max=len(slot_keys) - 1)
        d = torch.where((slot_keys[slot] == keys).unsqueeze(1), dist[slot], d)  # (F, T*T)
    cover = torch.where(inside, 0.5 + d, 0.5 - d).clamp(0, 1)
    return tiles, 2 * path, cover * paths.fill_rgba[path, 3:], paths.fill_rgba[path, :3]


def boxes_to_tiles(lo: torch.Tensor, hi: torch.Tensor, tile: int, nx: int,
                   ny: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every overlap of boxes ``lo``-``hi`` (N, 2) px with the tile grid, as ``(box, tx, ty)``, (Q,) each."""
    valid = torch.isfinite(lo).all(1) & torch.isfinite(hi).all(1)
    valid &= (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < nx * tile) & (lo[:, 1] < ny * tile)
    lo_t = (lo.nan_to_num(0.0) / tile).floor().clamp(min=0).long()  # (N, 2)
    hi_t = (hi.nan_to_num(0.0) / tile).floor().long()
    hi_t = torch.minimum(hi_t, torch.tensor([nx - 1, ny - 1], device=lo.device))
    span = (hi_t - lo_t + 1).clamp(min=0)  # (N, 2)
    count = span[:, 0] * span[:, 1] * valid  # (N,)
    box = torch.repeat_interleave(torch.arange(len(lo), device=lo.device), count)  # (Q,)
    k = torch.arange(len(box), device=lo.device) - (torch.cumsum(count, 0) - count)[box]
    cols = span[box, 0]
    return box, lo_t[box, 0] + k % cols, lo_t[box, 1] + k // cols
