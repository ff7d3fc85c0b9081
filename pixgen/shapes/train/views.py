"""Batched training views of shapes scenes, made like generation's cutouts (``pixgen.augment.Cutouts``).

Each image of a batch gets one view: a "zoom" cut (random resized crop, scale 0.25-0.95, then perspective
0.4), a "wide" cut (the whole image pooled into the square, shifted/scaled a little, perspective 0.2, the
uncovered area a random gray) or, with ``clean_fraction``, the plain resized image. Then hue/saturation
jitter (hue 0.04, not 0.1: red and orange are only 25 degrees apart), Gaussian noise with std U(0, 0.1),
and sometimes a blur or a wash of smooth noise, so that blurry, half-optimised images are seen too.
Parameters mirror ``Cutouts`` so the CLIP learns what generation shows it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pixgen.augment import wide_pipeline, zoom_pipeline


class TrainViews:
    """One augmented ``size`` x ``size`` view per image of a (B, 3, H, W) batch; kornia's random state."""

    def __init__(self, size: int = 64, *, zoom_fraction: float = 0.5, clean_fraction: float = 0.15,
                 noise: float = 0.1, blur_p: float = 0.2, wash_p: float = 0.15) -> None:
        import kornia.augmentation as K

        self.size, self.noise, self.blur_p, self.wash_p = size, noise, blur_p, wash_p
        self.zoom_fraction, self.clean_fraction = zoom_fraction, clean_fraction
        self.zoom, self.wide = zoom_pipeline(size), wide_pipeline()  # the same stacks as generation's cutouts
        self.color = K.ColorJitter(hue=0.04, saturation=0.1, p=0.8)  # smaller hue: red vs orange
        self.blur = K.RandomGaussianBlur((5, 5), (0.3, 1.5), p=1.0)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, size, size) views (noise may leave [0, 1] slightly)."""
        return self.cut(images)[0]

    def cut(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The views and which of them are zoom cuts ((B,) bool: they may crop shapes away)."""
        n = images.shape[0]
        device = images.device
        kind = torch.rand(n, device=device)  # < zoom: zoom cut; > 1 - clean: plain; else wide
        rgba = F.pad(images, (0, 0, 0, 0, 0, 1), value=1.0)  # (B, 4, H, W)
        pooled = _pool(rgba, self.size)  # (B, 4, s, s)
        out = pooled.clone()
        zoom = kind < self.zoom_fraction
        wide = (~zoom) & (kind <= 1 - self.clean_fraction)
        if zoom.any():
            out[zoom] = self.zoom(rgba[zoom])
        if wide.any():
            out[wide] = self.wide(pooled[wide])
        gray = torch.rand(n, 1, 1, 1, device=device)
        rgb = out[:, :3] + (1 - out[:, 3:]) * gray  # (B, 3, s, s)
        rgb = self.color(rgb.clamp(0, 1))
        rgb = self._degrade(rgb)
        return rgb + torch.randn_like(rgb) * torch.rand(n, 1, 1, 1, device=device) * self.noise, zoom

    def _degrade(self, rgb: torch.Tensor) -> torch.Tensor:
        """Blur some views and wash some with smooth noise (like early, half-optimised renders)."""
        n = rgb.shape[0]
        blur = torch.rand(n, device=rgb.device) < self.blur_p
        if blur.any():
            rgb[blur] = self.blur(rgb[blur])
        wash = torch.rand(n, device=rgb.device) < self.wash_p
        if wash.any():
            k = int(wash.sum())
            clouds = F.interpolate(torch.rand(k, 3, 4, 4, device=rgb.device), size=rgb.shape[-2:],
                                   mode="bicubic", align_corners=False).clamp(0, 1)
            alpha = torch.rand(k, 1, 1, 1, device=rgb.device) * 0.35
            rgb[wash] = rgb[wash] * (1 - alpha) + clouds * alpha
        return rgb


def _pool(rgba: torch.Tensor, size: int) -> torch.Tensor:
    """Whole square images pooled to ``size`` ((avg + max) / 2, as the wide cutouts do)."""
    return (F.adaptive_avg_pool2d(rgba, size) + F.adaptive_max_pool2d(rgba, size)) / 2
