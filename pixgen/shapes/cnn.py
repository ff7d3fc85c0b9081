"""The shapes CLIP's image tower: a small VGG-style CNN registered with timm, so that open_clip builds it
through its own timm path (``vision_cfg.timm_model_name``) and loads its weights like any open_clip model.

Why not open_clip's ViT or ModifiedResNet: at 64 px both take far more steps than a CPU budget buys before
they tell a circle from a square (a supervised probe stayed at chance after 300 steps), while 3x3
convolutions with max pooling pick up edges and corners within a few hundred. The features are the last
map's global max (what is anywhere), its global mean (how much of it; it also spreads generation's gradient
over every pixel, where a max alone reaches one spot per channel) and a coarse 4x4 grid (where things are).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

TIMM_NAME = "pixgen_shapes_cnn"
WIDTHS = (32, 64, 64, 128)  # channels per stage; each stage halves the resolution (64 -> 4)
GRID_CHANNELS = 16  # channels of the coarse 4x4 "where" map


class ShapesCNN(nn.Module):
    """Stages of conv3x3, BN, GELU and 2x2 max pooling; then global max, global mean and a 4x4 grid."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, image_size: int = 64, in_chans: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_chans
        for width in widths:
            layers += [nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.GELU(),
                       nn.MaxPool2d(2)]
            prev = width
        self.features = nn.Sequential(*layers[:-1])  # the last pooling is done by ``forward``
        self.where = nn.Conv2d(prev, GRID_CHANNELS, 1)
        grid = image_size // 2 ** len(widths)
        self.num_features = 2 * prev + GRID_CHANNELS * grid * grid
        self.default_cfg: dict[str, Any] = {}  # timm's attribute; no pretrained config (trained by pixgen)
        self.pretrained_cfg = self.default_cfg

    def reset_classifier(self, num_classes: int = 0, global_pool: str | None = None) -> None:
        """timm's interface: there is no classifier; the grid is always flattened (``global_pool`` unused)."""
        if num_classes:
            raise ValueError("pixgen_shapes_cnn has no classifier; open_clip adds the projection")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) -> (B, num_features): what is anywhere (global max), how much of it (global mean,
        which also gives every pixel a gradient in generation) and where (the 4x4 grid)."""
        x = self.features(x)  # (B, C, 8, 8)
        grid = F.max_pool2d(self.where(x), 2)  # (B, GRID_CHANNELS, 4, 4)
        return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3)), grid.flatten(1)], dim=1)


def pixgen_shapes_cnn(pretrained: bool = False, **kwargs: Any) -> ShapesCNN:
    """timm entry point (weights come through open_clip, never through timm)."""
    if pretrained:
        raise ValueError("pixgen_shapes_cnn has no timm weights; load the shapes CLIP through open_clip")
    kwargs = {k: v for k, v in kwargs.items() if k in ("widths", "image_size", "in_chans")}
    return ShapesCNN(**kwargs)


def register_timm_model() -> str:
    """Add the CNN to timm's model registry (idempotent); returns its timm name."""
    import timm
    from timm.models import register_model

    if not timm.is_model(TIMM_NAME):
        register_model(pixgen_shapes_cnn)
    return TIMM_NAME
