"""A differentiable vector rasterizer in plain PyTorch: anti-aliased cubic Bézier strokes and filled paths.

No diffvg: it runs wherever torch runs (CPU or GPU, the device of the inputs). How it works:

1. **Flatten** every cubic segment into chords (``pixgen.bezier.flatten``, adaptive count, 0.2 px error).
2. **Bin** chords into ``tile`` x ``tile`` pixel tiles: a chord is paired only with the tiles within half its
   stroke width (plus 1 px for anti-aliasing) of it. All later work is per (path, tile) pair, so memory and
   time grow with the area the strokes cover, never with strokes x pixels.
3. **Distance** from each pixel centre of a pair's tile to the nearest chord of that path
   (``TileDistance``: a custom autograd function that saves only the winning chord per pixel). Tiles are
   rendered in chunks; with several chunks each is checkpointed, so peak memory stays bounded.
4. **Coverage**: the area of the 1-px pixel square that the stroke's band (``±w/2`` around the centre line)
   covers, computed exactly for a straight edge from the distance ``d`` and the edge normal's direction
   (``pixgen.bezier.footprint_cdf``); round caps and joins come from the distance to the polyline. A filled
   path covers the pixel area on its inside of the nearest edge (inside: nonzero winding rule, as SVG).
5. **Composite** layers back to front with the over operator (a path's fill, then its stroke), in closed form:
   ``out = Σ_i α_i c_i Π_{j>i} (1-α_j) + bg Π_j (1-α_j)``, the products taken as float64 suffix sums of
   ``log(1-α)`` over each tile's sorted pairs.

Gradients reach control points (through distances), stroke widths (through coverage), colours and alphas,
and the background colour. Colours are composited in sRGB space as SVG renderers do, so ``pixgen.svg``
output rendered by an independent renderer matches (see tests/test_raster.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from pixgen.bezier import (
    TileDistance,
    boxes_to_tiles,
    flatten,
    footprint_cdf,
    inside_mask,
    polygon_table,
    segment_distance,
    tile_origins,
)
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


@dataclass
class Plan:
    """Which chords meet which tiles, as index tensors only (nothing per pixel): the work of one render."""

    q_edge: torch.Tensor  # (Q,) chord of each (chord, tile) pair, pairs sorted by slot
    q_slot: torch.Tensor  # (Q,) the (tile, path) slot the pair contributes to
    slot_tile: torch.Tensor  # (U,) tile of each slot, slots sorted by (tile, path)
    slot_path: torch.Tensor  # (U,)
    fill_tile: torch.Tensor  # (F,) tiles in each filled path's bounding box, sorted by (tile, path)
    fill_path: torch.Tensor  # (F,)

    def between(self, t0: int, t1: int) -> Plan:
        """The part of the plan for tiles ``t0 <= tile < t1`` (slot numbers made local)."""
        bounds = torch.tensor([t0, t1], device=self.slot_tile.device)
        s0, s1 = torch.searchsorted(self.slot_tile, bounds).tolist()
        p0, p1 = torch.searchsorted(self.q_slot, torch.tensor([s0, s1], device=bounds.device)).tolist()
        f0, f1 = torch.searchsorted(self.fill_tile, bounds).tolist()
        return Plan(self.q_edge[p0:p1], self.q_slot[p0:p1] - s0, self.slot_tile[s0:s1], self.slot_path[s0:s1],
                    self.fill_tile[f0:f1], self.fill_path[f0:f1])


def rasterize(paths: Paths, width: int, height: int, background: torch.Tensor, *, tile: int = 8,
              tolerance: float = 0.2, chunk_pixels: int = 1 << 22) -> torch.Tensor:
    """Render ``paths`` over ``background`` ((3,) colour or (1, 3, H, W) image) as a (1, 3, H, W) image.

    Tiles are rendered in chunks of about ``chunk_pixels`` (path, pixel) pairs. When there is more than one
    chunk and gradients are on, each chunk is checkpointed (recomputed in backward), so peak memory is one
    chunk's work plus the image, however many strokes cover however many pixels.
    """
    if paths.ctrl.ndim != 3 or paths.ctrl.shape[1:] != (4, 2) or len(paths.seg_path) != len(paths.ctrl):
        raise PixgenError("rasterize: ctrl must be (M, 4, 2) with one seg_path entry per segment; "
                          f"got {tuple(paths.ctrl.shape)} and {tuple(paths.seg_path.shape)}")
    if paths.n_paths == 0:
        return background.reshape(1, 3, -1, 1).expand(1, 3, height, width) if background.numel() == 3 else background
    nx, ny = math.ceil(width / tile), math.ceil(height / tile)
    a, b, edge_path = _edges(paths, tolerance)  # (E, 2), (E, 2), (E,)
    plan = make_plan(paths, a.detach(), b.detach(), edge_path, tile, nx, ny)
    poly = None if paths.fill_rgba is None else polygon_table(a.detach(), b.detach(), edge_path, paths.n_paths)
    bg = _background_tiles(background, width, height, tile, nx, ny)  # (1 or nx*ny, T*T, 3)
    chunks = _chunks(plan, nx * ny, max(1, chunk_pixels // (tile * tile)))
    recompute = torch.is_grad_enabled() and len(chunks) > 1
    parts = []
    for t0, t1 in chunks:
        run = functools.partial(_render_tiles, plan.between(t0, t1), poly, t0, t1 - t0, tile, nx)
        inputs = (a, b, paths.stroke_width, paths.stroke_rgba, paths.fill_rgba, bg if len(bg) == 1 else bg[t0:t1])
        parts.append(checkpoint(run, *inputs, use_reentrant=False) if recompute else run(*inputs))
    out = torch.cat(parts).view(ny, nx, tile, tile, 3).permute(4, 0, 2, 1, 3).reshape(3, ny * tile, nx * tile)
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


def make_plan(paths: Paths, a: torch.Tensor, b: torch.Tensor, edge_path: torch.Tensor, tile: int, nx: int,
              ny: int) -> Plan:
    """Pair chords with the tiles within half their stroke width + 1 px, and fills with their bounding boxes."""
    n_paths = paths.n_paths
    reach = paths.stroke_width.detach()[edge_path] / 2 + 1.0  # (E,)
    q_edge, q_tile = bin_edges(a, b, reach, tile, nx, ny)
    slot_keys, q_slot = torch.unique(q_tile * n_paths + edge_path[q_edge], return_inverse=True)  # (U,), (Q,)
    order = torch.argsort(q_slot)
    fill_keys = q_tile[:0]
    if paths.fill_rgba is not None:
        idx = edge_path.unsqueeze(1).expand(-1, 2)
        lo = a.new_full((n_paths, 2), math.inf).scatter_reduce(0, idx, torch.minimum(a, b), "amin")  # (P, 2)
        hi = a.new_full((n_paths, 2), -math.inf).scatter_reduce(0, idx, torch.maximum(a, b), "amax")
        path, tx, ty = boxes_to_tiles(lo - 1.0, hi + 1.0, tile, nx, ny)  # (F,) each
        fill_keys = torch.sort((ty * nx + tx) * n_paths + path).values
    return Plan(q_edge[order], q_slot[order], slot_keys // n_paths, slot_keys % n_paths, fill_keys // n_paths,
                fill_keys % n_paths)


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


def _chunks(plan: Plan, n_tiles: int, budget: int) -> list[tuple[int, int]]:
    """Consecutive tile ranges with about ``budget`` layers (slots and fills) each."""
    work = torch.bincount(plan.slot_tile, minlength=n_tiles) + torch.bincount(plan.fill_tile, minlength=n_tiles)
    chunk = (torch.cumsum(work + 1, 0) - work - 1) // budget  # (n_tiles,) non-decreasing chunk number
    ends = torch.cumsum(torch.unique_consecutive(chunk, return_counts=True)[1], 0).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def _render_tiles(plan: Plan, poly: torch.Tensor | None, t0: int, n_tiles: int, tile: int, nx: int,
                  a: torch.Tensor, b: torch.Tensor, widths: torch.Tensor, stroke_rgba: torch.Tensor,
                  fill_rgba: torch.Tensor | None, bg: torch.Tensor) -> torch.Tensor:
    """Render tiles ``t0 .. t0 + n_tiles`` of the plan: distances, coverage, compositing -> (n, T*T, 3)."""
    origin = tile_origins(plan.slot_tile, nx, tile, a.dtype)  # (U, 2)
    dist, slant = TileDistance.apply(a, b, plan.q_edge, plan.q_slot, origin, len(plan.slot_tile), tile)  # (U, TT)
    half = (widths[plan.slot_path] / 2).unsqueeze(1)  # (U, 1)
    cover = stroke_coverage(dist, half, slant)  # (U, T*T)
    rgba = stroke_rgba[plan.slot_path]  # (U, 4)
    layers = [(plan.slot_tile, 2 * plan.slot_path + 1, cover * rgba[:, 3:], rgba[:, :3])]
    if fill_rgba is not None:
        layers.append(_fill_layer(plan, poly, dist, slant, fill_rgba, tile, nx))
    tiles, depth, alpha, rgb = (torch.cat(parts) for parts in zip(*layers, strict=True))
    order = torch.argsort(tiles * (2 * len(widths)) + depth)
    return composite(tiles[order] - t0, alpha[order], rgb[order], bg, n_tiles)


def _fill_layer(plan: Plan, poly: torch.Tensor, dist: torch.Tensor, slant: torch.Tensor, fill_rgba: torch.Tensor,
                tile: int, nx: int) -> tuple[torch.Tensor, ...]:
    """Fill coverage (area of the pixel inside the nearest edge) for every (tile, path) in each path's box."""
    inside = inside_mask(tile_origins(plan.fill_tile, nx, tile, poly.dtype), plan.fill_path, poly, tile)  # (F, TT)
    d, s = dist.new_full(inside.shape, FAR), slant.new_zeros(inside.shape)
    if len(plan.slot_tile):
        n_paths = len(fill_rgba)
        keys, fill_keys = plan.slot_tile * n_paths + plan.slot_path, plan.fill_tile * n_paths + plan.fill_path
        slot = torch.searchsorted(keys, fill_keys).clamp(max=len(keys) - 1)
        near = (keys[slot] == fill_keys).unsqueeze(1)
        d, s = torch.where(near, dist[slot], d), torch.where(near, slant[slot], s)  # (F, T*T)
    cover = footprint_cdf(torch.where(inside, d, -d), s)
    return plan.fill_tile, 2 * plan.fill_path, cover * fill_rgba[plan.fill_path, 3:], fill_rgba[plan.fill_path, :3]


def stroke_coverage(dist: torch.Tensor, half: torch.Tensor, slant: torch.Tensor) -> torch.Tensor:
    """Area of a pixel at ``dist`` from a stroke's centre line covered by the band ``±half`` around it."""
    return (footprint_cdf(half - dist, slant) + footprint_cdf(half + dist, slant) - 1).clamp(0, 1)


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
