"""Cutouts: pixray's mix of "zoom" and "wide" cuts on kornia's public API, one batch per input size.

Zoom cuts (``zoom_fraction`` of them) are random resized crops of the render, then a random perspective. Wide
cuts show the whole image: it is pooled once per step into a letterboxed square, then moved and distorted a
little. Areas the warps uncover get a random gray per cut (the render carries an alpha channel through the
geometric warps, then is composited). All cuts then get hue/saturation jitter and Gaussian noise with a
per-cut std drawn from U(0, noise). The sampled parameters can be replayed on another image of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass
class CutoutParams:
    """Everything sampled for one batch, so the same transforms can be applied to another image."""

    zoom: list | None
    wide: list | None
    color: list | None
    gray: torch.Tensor  # (N, 1, 1, 1)
    noise: torch.Tensor  # (N, 3, s, s)


def cutouts_for(config: Any, perceptors: dict[str, tuple[Any, float]], cutn: int) -> dict[int, Cutouts]:
    """One ``Cutouts`` of ``cutn`` crops per input size of ``perceptors``, with the run config's zoom share,
    noise and augment switch."""
    sizes = sorted({perceptor.input_size for perceptor, _ in perceptors.values()})
    return {s: Cutouts(s, cutn, zoom_fraction=config.cut_zoom, noise=config.cut_noise, augment=config.augment)
            for s in sizes}


class Cutouts:
    """``cutn`` augmented square crops of size ``cut_size`` from a (1, 3, H, W) render in [0, 1]."""

    def __init__(self, cut_size: int, cutn: int, *, zoom_fraction: float = 0.6, noise: float = 0.1,
                 augment: bool = True) -> None:
        import kornia.augmentation as K

        self.cut_size, self.cutn, self.noise, self.augment = cut_size, cutn, noise, augment
        self.n_zoom = int(round(zoom_fraction * cutn)) if augment else cutn
        size = (cut_size, cut_size)
        if augment:
            self.zoom, self.wide = zoom_pipeline(cut_size), wide_pipeline()
            self.color = K.AugmentationSequential(K.ColorJitter(hue=0.1, saturation=0.1, p=0.8))
        else:
            self.zoom = K.AugmentationSequential(
                K.RandomResizedCrop(size, scale=(0.25, 0.95), ratio=(1.0, 1.0), cropping_mode="resample"))

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, CutoutParams]:
        """Sample new transforms and apply them: (1, 3, H, W) -> ((cutn, 3, s, s), params)."""
        zoom_in, wide_in = self._inputs(image)
        zp = self.zoom.forward_parameters(zoom_in.shape) if self.n_zoom else None
        wp = self.wide.forward_parameters(wide_in.shape) if self.cutn > self.n_zoom else None
        n, s = self.cutn, self.cut_size
        cp = self.color.forward_parameters((n, 3, s, s)) if self.augment else None
        gray = torch.rand(n, 1, 1, 1, device=image.device)
        noise = torch.randn(n, 3, s, s, device=image.device) * torch.rand(n, 1, 1, 1, device=image.device)
        params = CutoutParams(zp, wp, cp, gray, noise * self.noise if self.augment else noise * 0)
        return self._apply(zoom_in, wide_in, params), params

    def replay(self, image: torch.Tensor, params: CutoutParams) -> torch.Tensor:
        """Apply the transforms of an earlier call to another image of the same size."""
        return self._apply(*self._inputs(image), params)

    def _inputs(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The zoom input (n_zoom, 4, h, w) and the pooled wide input (n_wide, 4, s, s), with alpha."""
        rgba = F.pad(image, (0, 0, 0, 0, 0, 1), value=1.0)  # (1, 4, H, W)
        h, w = image.shape[-2:]
        scale = 2 * self.cut_size / min(h, w)  # keep crops at most ~2x minified (limits aliasing)
        if scale < 1:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            rgba = F.interpolate(rgba, size=size, mode="bilinear", antialias=True)
        zoom_in = rgba.expand(self.n_zoom, -1, -1, -1)
        wide_in = _letterbox(rgba, self.cut_size).expand(self.cutn - self.n_zoom, -1, -1, -1)
        return zoom_in, wide_in

    def _apply(self, zoom_in: torch.Tensor, wide_in: torch.Tensor, params: CutoutParams) -> torch.Tensor:
        parts = []
        if params.zoom is not None:
            parts.append(self.zoom(zoom_in, params=params.zoom))
        if params.wide is not None:
            parts.append(self.wide(wide_in, params=params.wide))
        rgba = torch.cat(parts)  # (N, 4, s, s), colour premultiplied by coverage
        rgb = rgba[:, :3] + (1 - rgba[:, 3:]) * params.gray
        if params.color is not None:
            rgb = self.color(rgb.clamp(0, 1), params=params.color)
        return rgb + params.noise


def zoom_pipeline(cut_size: int):
    """Zoom cuts: a random resized crop (scale 0.25-0.95) to ``cut_size``, then a random perspective (0.4)."""
    import kornia.augmentation as K

    size = (cut_size, cut_size)
    return K.AugmentationSequential(
        K.RandomResizedCrop(size, scale=(0.25, 0.95), ratio=(0.85, 1.2), cropping_mode="resample"),
        K.RandomPerspective(0.4, p=0.7))


def wide_pipeline():
    """Wide cuts of a letterboxed square: a small shift and zoom-out, then a gentle perspective (0.2)."""
    import kornia.augmentation as K

    return K.AugmentationSequential(
        K.RandomAffine(degrees=0, translate=(0.05, 0.05), scale=(0.9, 1.0), p=1.0),
        K.RandomPerspective(0.2, p=0.7))


def _letterbox(rgba: torch.Tensor, size: int) -> torch.Tensor:
    """The whole image pooled ((avg + max) / 2, pixray's trick) to fit a ``size`` square, centred, alpha 0 around."""
    h, w = rgba.shape[-2:]
    th, tw = (size, max(1, round(size * w / h))) if h >= w else (max(1, round(size * h / w)), size)
    pooled = (F.adaptive_avg_pool2d(rgba, (th, tw)) + F.adaptive_max_pool2d(rgba, (th, tw))) / 2
    top, left = (size - th) // 2, (size - tw) // 2
    return F.pad(pooled, (left, size - tw - left, top, size - th - top), value=0.0)
