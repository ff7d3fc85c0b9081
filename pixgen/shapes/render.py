"""Vectorised, anti-aliased torch renderer of shapes scenes: a batch of scenes -> (B, 3, S, S) in [0, 1]."""

from __future__ import annotations

import math

import torch

from pixgen.shapes.sample import rng_from, sample_batch, sample_scene
from pixgen.shapes.world import PALETTE, SHAPES, Scene, Spec, parse_caption

MAX_OBJECTS = 4  # captions name at most two; training clutter scenes hold up to four


def palette_tensor(device: torch.device | str | None = None) -> torch.Tensor:
    """The palette as a (8, 3) float tensor in [0, 1], in ``COLOURS`` order."""
    return torch.tensor(list(PALETTE.values()), dtype=torch.float32, device=device) / 255.0


def _pack(scenes: list[Scene], device: torch.device | str | None) -> dict[str, torch.Tensor]:
    """Scene fields as tensors: bg (B,3); colour (B,K,3); shape id, cx, cy, r, valid (B,K)."""
    pal = {name: i for i, name in enumerate(PALETTE)}
    rows = []
    for scene in scenes:
        objs = [(SHAPES.index(o.shape), pal[o.colour], o.cx, o.cy, o.r, 1.0) for o in scene.objects]
        objs += [(0, 0, 0.5, 0.5, 0.0, 0.0)] * (MAX_OBJECTS - len(objs))
        rows.append(objs)
    t = torch.tensor(rows, dtype=torch.float64, device=device)  # (B, K, 6)
    colours = palette_tensor(device)
    return {
        "bg": colours[torch.tensor([pal[s.background] for s in scenes], device=device)],
        "colour": colours[t[..., 1].long()],
        "shape": t[..., 0].long(),
        "cx": t[..., 2].float(),
        "cy": t[..., 3].float(),
        "r": t[..., 4].float(),
        "valid": t[..., 5].float(),
    }


def _sdf(shape: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) of circles, squares and up-pointing triangles; all (B,K,S,S)."""
    circle = torch.sqrt(dx * dx + dy * dy) - r
    square = torch.maximum(dx.abs(), dy.abs()) - r
    base = dy - 2 * r / 3  # below the base line is outside
    s5 = math.sqrt(5.0)
    left = (-2 * (dx + r) - (dy - 2 * r / 3)) / s5
    right = (2 * (dx - r) - (dy - 2 * r / 3)) / s5
    triangle = torch.maximum(base, torch.maximum(left, right))
    return torch.where(shape == 0, circle, torch.where(shape == 1, square, triangle))


def _alphas(p: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """(B, K, size, size) anti-aliased coverage of each packed shape (``_pack``), 0 for empty slots."""
    coords = (torch.arange(size, dtype=torch.float32, device=p["cx"].device) + 0.5) / size  # (S,)
    ys, xs = coords.view(1, 1, size, 1), coords.view(1, 1, 1, size)
    view = (*p["cx"].shape, 1, 1)
    dx, dy = xs - p["cx"].view(view), ys - p["cy"].view(view)  # (B, K, S, S) by broadcast
    dist = _sdf(p["shape"].view(view), dx, dy, p["r"].view(view))
    return (0.5 - dist * size).clamp(0, 1) * p["valid"].view(view)


def render_scenes(scenes: list[Scene], size: int = 64, device: torch.device | str | None = None) -> torch.Tensor:
    """Render scenes to a (B, 3, size, size) float tensor in [0, 1], edges anti-aliased over one pixel."""
    if not scenes:
        return torch.zeros(0, 3, size, size, device=device)
    p = _pack(scenes, device)
    alpha = _alphas(p, size)  # (B, K, S, S)
    img = p["bg"].view(-1, 3, 1, 1).expand(-1, -1, size, size)  # (B, 3, S, S)
    for k in range(MAX_OBJECTS):
        a = alpha[:, k : k + 1]  # (B, 1, S, S)
        img = img * (1 - a) + p["colour"][:, k].view(-1, 3, 1, 1) * a
    return img.clamp(0, 1)


def cell_kinds(scenes: list[Scene], grid: int, size: int = 64, cover: float = 0.1) -> torch.Tensor:
    """(B, grid, grid) long: per cell of a ``grid``×``grid`` split of the ``size``-pixel render, 1 + the shape id
    (``SHAPES`` order) of the shape that covers most of it, or 0 where no shape covers ``cover`` of the cell."""
    p = _pack(scenes, None)
    alpha = _alphas(p, size)
    hidden = torch.ones_like(alpha[:, :1])
    visible = torch.empty_like(alpha)
    for k in reversed(range(MAX_OBJECTS)):  # later shapes are drawn over earlier ones
        visible[:, k] = alpha[:, k] * hidden[:, 0]
        hidden = hidden * (1 - alpha[:, k : k + 1])
    coverage, which = torch.nn.functional.adaptive_avg_pool2d(visible, grid).max(1)  # (B, grid, grid)
    return torch.where(coverage >= cover, p["shape"].gather(1, which.flatten(1)).view_as(which) + 1, 0)


def render_caption(caption: str | Spec, size: int = 64, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random scene that the caption describes, rendered to (1, 3, size, size)."""
    spec = parse_caption(caption) if isinstance(caption, str) else caption
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return render_scenes([sample_scene(spec, rng_from(gen))], size)


def random_batch(
    n: int, size: int, generator: torch.Generator, hard_negatives: bool = True
) -> tuple[torch.Tensor, list[Scene], list[Spec]]:
    """``n`` random scenes rendered at ``size`` with their specs: ``(images (n,3,S,S), scenes, specs)``."""
    scenes, specs = sample_batch(n, generator, hard_negatives)
    return render_scenes(scenes, size), scenes, specs
