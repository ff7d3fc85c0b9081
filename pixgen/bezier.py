"""Cubic Bézier geometry for the rasterizer: flattening to polylines and point-to-segment distances.

Coordinates are pixels, x to the right and y down, pixel centres at ``i + 0.5`` (the SVG convention).
"""

from __future__ import annotations

import torch

#: cap on the number of straight pieces one cubic segment is flattened into
MAX_PIECES = 64


def bernstein(t: torch.Tensor) -> torch.Tensor:
    """Cubic Bernstein weights ``(N, 4)`` for parameters ``t`` (N,)."""
    s = 1 - t
    return torch.stack((s * s * s, 3 * s * s * t, 3 * s * t * t, t * t * t), dim=-1)


def pieces_per_segment(ctrl: torch.Tensor, tolerance: float) -> torch.Tensor:
    """How many chords keep each cubic within ``tolerance`` px of its polyline (Wang's formula), (M,) long."""
    with torch.no_grad():
        d1 = (ctrl[:, 0] - 2 * ctrl[:, 1] + ctrl[:, 2]).norm(dim=-1)  # (M,)
        d2 = (ctrl[:, 1] - 2 * ctrl[:, 2] + ctrl[:, 3]).norm(dim=-1)  # (M,)
        n = torch.sqrt(0.75 * torch.maximum(d1, d2) / tolerance).ceil()
        return n.nan_to_num(1.0).clamp(1, MAX_PIECES).long()


def flatten(ctrl: torch.Tensor, tolerance: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten cubics ``ctrl`` (M, 4, 2) into chords ``(start (E, 2), end (E, 2), segment of each (E,))``.

    The number of chords adapts to each segment's curvature (no chord strays more than ``tolerance`` px from
    the curve); the chord end points are differentiable functions of the control points.
    """
    n = pieces_per_segment(ctrl, tolerance)  # (M,)
    seg = torch.repeat_interleave(torch.arange(len(ctrl), device=ctrl.device), n)  # (E,)
    first = torch.cumsum(n, 0) - n  # (M,) index of each segment's first chord
    j = torch.arange(len(seg), device=ctrl.device) - first[seg]  # (E,) chord number inside its segment
    per = n[seg].to(ctrl.dtype)  # (E,)
    c = ctrl[seg]  # (E, 4, 2)
    start = (bernstein(j / per).unsqueeze(-1) * c).sum(1)  # (E, 2)
    end = (bernstein((j + 1) / per).unsqueeze(-1) * c).sum(1)  # (E, 2)
    return start, end, seg


def segment_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from points ``p`` (..., 2) to segments ``a``-``b`` (..., 2), and the offset p - closest."""
    ab = b - a  # (..., 2)
    ap = p - a  # (..., 2)
    denom = (ab * ab).sum(-1).clamp_min(1e-12)  # (...)
    t = ((ap * ab).sum(-1) / denom).clamp(0, 1)  # (...)
    off = ap - t.unsqueeze(-1) * ab  # (..., 2)
    return off.norm(dim=-1), off


def closest_param(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The chord parameter ``t`` in [0, 1] of the point of segment ``a``-``b`` closest to ``p``."""
    ab = b - a
    denom = (ab * ab).sum(-1).clamp_min(1e-12)
    return (((p - a) * ab).sum(-1) / denom).clamp(0, 1)


def tile_pixels(tile: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Pixel-centre offsets inside a tile, ``(T*T, 2)`` as (x, y), row-major (y outer)."""
    r = torch.arange(tile, device=device, dtype=dtype) + 0.5
    return torch.stack(torch.meshgrid(r, r, indexing="xy"), dim=-1).reshape(-1, 2)


def tile_origins(tiles: torch.Tensor, nx: int, tile: int, dtype: torch.dtype) -> torch.Tensor:
    """Top-left pixel corner ``(N, 2)`` of tiles numbered row-major on a grid ``nx`` tiles wide."""
    return torch.stack((tiles % nx, tiles // nx), dim=1).to(dtype) * tile


class TileDistance(torch.autograd.Function):
    """Per (path, tile) slot, the distance from each pixel centre of the tile to the path's nearest chord.

    ``forward(a (E,2), b (E,2), q_edge (Q,), q_slot (Q,), origin (U,2), n_slots, tile)`` returns ``(distance,
    slant)``, both (U, T*T): pair q offers chord ``q_edge[q]`` to slot ``q_slot[q]``; ``slant`` is ``|nx * ny|``
    of the unit vector from the nearest point to the pixel (0 axis-aligned, 0.5 diagonal; not differentiated).
    It saves only the winning chord of every pixel, so what backward keeps is (U, T*T) integers, and it works
    through the pairs in bounded chunks.
    """

    @staticmethod
    def forward(ctx, a, b, q_edge, q_slot, origin, n_slots, tile):  # noqa: ANN001, ANN205
        local = tile_pixels(tile, a.device, a.dtype)  # (T*T, 2)
        best_d = a.new_full((n_slots, tile * tile), 1e4)
        best_e = torch.full((n_slots, tile * tile), -1, dtype=torch.long, device=a.device)
        step = max(1, (1 << 19) // (tile * tile))
        for lo in range(0, len(q_edge), step):
            edge, slot = q_edge[lo:lo + step], q_slot[lo:lo + step]
            p = origin[slot].unsqueeze(1) + local  # (q, T*T, 2)
            d, _ = segment_distance(p, a[edge].unsqueeze(1), b[edge].unsqueeze(1))  # (q, T*T)
            idx = slot.unsqueeze(1).expand_as(d)
            chunk_d = torch.full_like(best_d, 1e4).scatter_reduce_(0, idx, d, "amin")
            winner = torch.where(d <= chunk_d[slot], edge.unsqueeze(1), -1)
            chunk_e = torch.full_like(best_e, -1).scatter_reduce_(0, idx, winner, "amax")
            better = chunk_d < best_d
            best_d, best_e = torch.where(better, chunk_d, best_d), torch.where(better, chunk_e, best_e)
        u, k, e, t, off = _winner_offsets(a, b, best_e, origin, tile)
        slant = torch.zeros_like(best_d)
        slant[u, k] = normal_slant(t.squeeze(1), off, b[e] - a[e])
        ctx.save_for_backward(a, b, best_e.int(), origin)
        ctx.tile = tile
        ctx.mark_non_differentiable(slant)
        return best_d, slant

    @staticmethod
    def backward(ctx, grad, _slant_grad):  # noqa: ANN001, ANN205
        a, b, best_e, origin = ctx.saved_tensors
        u, k, e, t, off = _winner_offsets(a, b, best_e.masked_fill(grad == 0, -1), origin, ctx.tile)
        g = (grad[u, k] / off.norm(dim=-1).clamp_min(1e-6)).unsqueeze(1) * off  # (S, 2) = -dd/dclosest
        grad_a = torch.zeros_like(a).index_add_(0, e, -(1 - t) * g)
        grad_b = torch.zeros_like(b).index_add_(0, e, -t * g)
        return grad_a, grad_b, None, None, None, None, None


def _winner_offsets(a: torch.Tensor, b: torch.Tensor, best_e: torch.Tensor, origin: torch.Tensor,
                    tile: int) -> tuple[torch.Tensor, ...]:
    """For every pixel with a winning chord: ``(slot u, pixel k, chord e, chord parameter t (S,1),
    offset pixel - nearest point (S, 2))``."""
    u, k = (best_e >= 0).nonzero(as_tuple=True)  # (S,) each
    e = best_e[u, k].long()
    p = origin[u] + tile_pixels(tile, a.device, a.dtype)[k]  # (S, 2)
    ea, eb = a[e], b[e]
    t = closest_param(p, ea, eb).unsqueeze(1)  # (S, 1)
    return u, k, e, t, p - (ea + t * (eb - ea))


def normal_slant(t: torch.Tensor, off: torch.Tensor, chord: torch.Tensor) -> torch.Tensor:
    """``|nx * ny|`` of the edge normal at a pixel whose nearest point is at parameter ``t`` (N,) of ``chord``
    (N, 2), ``off`` (N, 2) away: perpendicular to the chord beside or on it, radial beyond its ends."""
    beside = ((t > 0) & (t < 1)) | (off.square().sum(-1) < 1e-10)
    n = torch.where(beside.unsqueeze(-1), chord, off)  # any vector along or across the normal will do
    return (n[..., 0] * n[..., 1]).abs() / n.square().sum(-1).clamp_min(1e-12)


def footprint_cdf(x: torch.Tensor, slant: torch.Tensor) -> torch.Tensor:
    """Fraction of a 1-px square pixel on the inner side of a straight edge ``x`` px beyond the pixel centre
    (x > 0: centre inside), for an edge normal with ``|nx * ny| = slant``: the exact area coverage.
    Differentiable in ``x`` (analytic backward that keeps only ``x`` and ``slant``)."""
    return FootprintCdf.apply(x, slant)


def _footprint(slant: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half-widths (outer, inner) of the trapezoid that a unit pixel square projects onto the edge normal."""
    return torch.sqrt(1 + 2 * slant) / 2, torch.sqrt((1 - 2 * slant).clamp_min(0)) / 2


class FootprintCdf(torch.autograd.Function):
    """``footprint_cdf`` with its derivative (the trapezoid density) written out, to save memory."""

    @staticmethod
    def forward(ctx, x, slant):  # noqa: ANN001, ANN205
        outer, inner = _footprint(slant)
        y = x.abs()
        ramp = 0.5 - (outer - y).clamp_min(0).square() / (2 * slant.clamp_min(1e-12))
        half = torch.where(y <= inner, y / (outer + inner), ramp)  # coverage beyond one half of the pixel
        ctx.save_for_backward(x, slant)
        return 0.5 + torch.sign(x) * half

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, slant = ctx.saved_tensors
        outer, inner = _footprint(slant)
        y = x.abs()
        ramp = (outer - y).clamp_min(0) / slant.clamp_min(1e-12)
        return grad * torch.where(y <= inner, 1 / (outer + inner), ramp), None


def polygon_table(a: torch.Tensor, b: torch.Tensor, edge_path: torch.Tensor, n_paths: int) -> torch.Tensor:
    """Chords ``a``-``b`` (E, 2) of closed paths ``edge_path`` (E,) as a padded table (P, Emax, 4)."""
    order = torch.argsort(edge_path, stable=True)
    counts = torch.bincount(edge_path, minlength=n_paths)  # (P,)
    slot = torch.arange(len(order), device=a.device) - (torch.cumsum(counts, 0) - counts)[edge_path[order]]
    poly = a.new_zeros(n_paths, int(counts.max()) if n_paths else 0, 4)  # padding: empty chords at (0, 0)
    poly[edge_path[order], slot] = torch.cat([a[order], b[order]], dim=1)
    return poly


@torch.no_grad()
def inside_mask(origin: torch.Tensor, path: torch.Tensor, poly: torch.Tensor, tile: int) -> torch.Tensor:
    """Nonzero-winding inside test ``(F, T*T)`` bool of the pixel centres of the tiles at ``origin`` (F, 2)
    for the closed polygon ``poly[path]`` of each (see ``polygon_table``)."""
    local = tile_pixels(tile, poly.device, poly.dtype)
    out = torch.zeros(len(path), tile * tile, dtype=torch.bool, device=poly.device)
    step = max(1, (1 << 22) // max(1, tile * tile * poly.shape[1]))
    for lo in range(0, len(path), step):
        p = (origin[lo:lo + step].unsqueeze(1) + local).unsqueeze(2)  # (f, T*T, 1, 2)
        c = poly[path[lo:lo + step]].unsqueeze(1)  # (f, 1, Emax, 4)
        ax, ay, bx, by, px, py = c[..., 0], c[..., 1], c[..., 2], c[..., 3], p[..., 0], p[..., 1]
        cross = (bx - ax) * (py - ay) - (px - ax) * (by - ay)  # (f, T*T, Emax) > 0: crossing right of p
        up = (ay <= py) & (by > py) & (cross > 0)
        down = (by <= py) & (ay > py) & (cross < 0)
        out[lo:lo + step] = (up.sum(-1) - down.sum(-1)) != 0
    return out


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
