"""Starting images: fractal noise (pixray's default ``pixels``), ``gradient``, ``snow`` and ``none``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pixgen.errors import PixgenError

NOISE_KINDS = ("pixels", "gradient", "snow", "none")


def noise_image(kind: str, width: int, height: int, generator: torch.Generator) -> torch.Tensor:
    """A (1, 3, height, width) image in [0, 1] drawn from ``generator`` (CPU)."""
    if kind == "pixels":
        return fractal_noise(width, height, generator)
    if kind == "gradient":
        return gradient_noise(width, height, generator)
    if kind == "snow":
        return torch.rand(1, 3, height, width, generator=generator)
    if kind == "none":
        return torch.ones(1, 3, height, width)
    raise PixgenError(f"unknown init noise {kind!r}; choose one of: {', '.join(NOISE_KINDS)}")


def fractal_noise(width: int, height: int, generator: torch.Generator, octaves: int = 6) -> torch.Tensor:
    """Smooth multi-octave value noise per channel, contrast-stretched to [0, 1] (Perlin-like clouds)."""
    out = torch.zeros(1, 3, height, width)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 1)
        grid = torch.rand(1, 3, cells + 1, cells + 1, generator=generator)  # (1, 3, c+1, c+1)
        out += amplitude * F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=True)
        total += amplitude
        amplitude *= 0.5
    out /= total
    lo = out.amin(dim=(2, 3), keepdim=True)
    hi = out.amax(dim=(2, 3), keepdim=True)
    return ((out - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)


def gradient_noise(width: int, height: int, generator: torch.Generator) -> torch.Tensor:
    """A linear blend between two random colours along a random direction."""
    start, end = torch.rand(2, 1, 3, 1, 1, generator=generator)
    angle = torch.rand(1, generator=generator) * 2 * torch.pi
    ys = torch.linspace(-1, 1, height).view(height, 1)
    xs = torch.linspace(-1, 1, width).view(1, width)
    t = (xs * torch.cos(angle) + ys * torch.sin(angle)) * 0.5 + 0.5  # (H, W)
    return start + (end - start) * t.clamp(0, 1)
