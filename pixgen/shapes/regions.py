"""A shapes-CLIP image tower that measures colour regions: soft palette masks and their spatial moments.

Registered with timm (``pixgen_shapes_regions``) so that open_clip builds it through its own timm path, as it
does the CNN tower (``pixgen.shapes.cnn``). Each pixel is softly assigned to one of the palette colours (learned
prototypes, initialised at the shapes palette) or to an "off-palette" channel. Every channel is then described
by its area, centroid, spread, boundary length and boundary^2 / area (a scattered region has a long boundary),
normalised third- and fourth-order central moments (which tell a square, whose mass reaches into the corners,
from a circle, and an apex-up triangle by its skew) and a coarse 4x4 occupancy grid; an MLP turns these into
the features open_clip projects (``pixgen_shapes_regions_linear``: no MLP, the projection alone).

Why: generation ascends the CLIP's similarity by its pixel gradient. Through moments, that gradient is a
smooth polynomial field over the image per colour (add red in the corners, take it off the sides), so it moves
whole regions towards the caption's shape, where a ViT's or CNN's gradient on a 64 px image is mostly
adversarial noise (docs/shapes_experiments.md). This is an inductive bias built for the shapes world, stated as
such. Measured (docs/shapes_experiments.md): it judges held-out scenes better than the ViT or the CNN, but
generation with it does not pass more captions, so it is an experimental option, not the shipped CLIP.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

TIMM_NAME = "pixgen_shapes_regions"
LINEAR_NAME = "pixgen_shapes_regions_linear"  # the same measurements, no MLP: open_clip's projection alone
GRID = 4  # side of the coarse occupancy grid per channel
#: what ``region_moments`` measures per channel, in order (x, y: offsets from the centroid over the spread)
FEATURES = ("area", "cx", "cy", "sxx", "syy", "sxy", "spread", "edge", "ragged",
            "x3", "x2y", "xy2", "y3", "x4", "x2y2", "y4", "x3y", "xy3")
MOMENTS = len(FEATURES)
PRESENT = 2e-3  # area below which a channel counts as absent: its shape moments fade out


def region_moments(masks: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) soft masks -> (B, K, MOMENTS): area, centroid, spread and normalised central moments."""
    h, w = masks.shape[-2:]
    v, u = torch.meshgrid(torch.linspace(-1, 1, h, device=masks.device), torch.linspace(-1, 1, w, device=masks.device),
                          indexing="ij")
    area = masks.mean(dim=(2, 3))  # (B, K)
    wts = masks / (masks.sum(dim=(2, 3), keepdim=True) + PRESENT * h * w)  # (B, K, H, W), sums to <= 1
    cx, cy = (wts * u).sum(dim=(2, 3)), (wts * v).sum(dim=(2, 3))
    du, dv = u - cx[..., None, None], v - cy[..., None, None]  # (B, K, H, W)
    sxx, syy, sxy = ((wts * t).sum(dim=(2, 3)) for t in (du * du, dv * dv, du * dv))
    spread = (sxx + syy + 1e-4).sqrt()
    nu, nv = du / spread[..., None, None], dv / spread[..., None, None]
    higher = [nu ** 3, nu * nu * nv, nu * nv * nv, nv ** 3, nu ** 4, nu ** 2 * nv ** 2, nv ** 4, nu ** 3 * nv,
              nu * nv ** 3]
    present = area / (area + PRESENT)
    edge = edge_length(masks)  # (B, K): boundary length as a fraction of the image side
    ragged = (edge * edge / (area + PRESENT)).asinh() * present  # boundary^2/area: 16 square, 64/pi disc
    shape = torch.stack([(wts * t).sum(dim=(2, 3)) for t in higher], dim=-1).asinh() * present[..., None]
    return torch.cat([torch.stack([area, cx, cy, sxx, syy, sxy, spread, edge, ragged], dim=-1), shape], dim=-1)


def edge_length(masks: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) soft masks -> (B, K) total variation (boundary length) in units of the image side: a
    solid region has a short boundary for its area, the same area scattered in fragments a long one."""
    dx = (masks[..., :, 1:] - masks[..., :, :-1]).abs().sum(dim=(2, 3))
    dy = (masks[..., 1:, :] - masks[..., :-1, :]).abs().sum(dim=(2, 3))
    return (dx + dy) / masks.shape[-1]


class ShapesRegions(nn.Module):
    """Soft palette masks (learned prototypes, fixed softness ``tau``); each mask's moments and 4x4 grid go through
    one MLP shared by all channels, and a linear layer mixes the channels' codes."""

    def __init__(self, tau: float = 0.03, grad_tau: float = 0.15, off_distance: float = 0.3, width: int = 256,
                 hidden: bool = True) -> None:
        super().__init__()
        from open_clip import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD  # the normalisation before the tower

        from pixgen.shapes.render import palette_tensor

        self.prototypes = nn.Parameter(palette_tensor().clone())  # (K, 3) in [0, 1], one per palette colour
        self.off_logit = nn.Parameter(torch.tensor(-off_distance ** 2 / tau))
        self.tau, self.grad_tau = tau, grad_tau
        self.register_buffer("mean", torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)
        channels, per = len(self.prototypes) + 1, MOMENTS + GRID * GRID
        self.norm = nn.BatchNorm1d(per)  # the same statistics for every channel's features
        if hidden:
            self.region = nn.Sequential(nn.Linear(per, 128), nn.GELU(), nn.Linear(128, 64), nn.GELU())  # shared
            self.mix = nn.Sequential(nn.Linear(channels * 64, width), nn.GELU())
        else:  # linear: the similarity is a linear function of the normalised measurements
            self.region, self.mix = nn.Identity(), nn.Identity()
        self.num_features = width if hidden else channels * per
        self.default_cfg: dict[str, Any] = {}  # timm's attribute; no pretrained config (trained by pixgen)
        self.pretrained_cfg = self.default_cfg

    def masks(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, K+1, H, W) assignment to each prototype and off-palette: the
        values of a sharp softmax (``tau``), the gradient of a softer one (``grad_tau``), so that a pixel deep
        in one colour still learns which way another colour lies (a sharp softmax's gradient there is ~0). In
        generation it measured no better than the sharp gradient (docs/shapes_experiments.md)."""
        rgb = x * self.std + self.mean  # back to [0, 1]
        dist = ((rgb.unsqueeze(1) - self.prototypes.view(1, -1, 3, 1, 1)) ** 2).sum(dim=2)  # (B, K, H, W)
        off = self.off_logit.expand(dist.shape[0], 1, *dist.shape[2:])
        sharp = torch.cat([-dist / self.tau, off], dim=1).softmax(dim=1)
        if self.grad_tau == self.tau:
            return sharp
        soft = torch.cat([-dist / self.grad_tau, off * (self.tau / self.grad_tau)], dim=1).softmax(dim=1)
        return soft + (sharp - soft).detach()  # sharp values, the soft assignment's gradient

    def reset_classifier(self, num_classes: int = 0, global_pool: str | None = None) -> None:
        """timm's interface: there is no classifier (``global_pool`` unused)."""
        if num_classes:
            raise ValueError("pixgen_shapes_regions has no classifier; open_clip adds the projection")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_features)."""
        m = self.masks(x)
        grid = F.adaptive_avg_pool2d(m, GRID).flatten(2)  # (B, K+1, 16)
        feats = torch.cat([region_moments(m), grid], dim=-1)  # (B, K+1, per)
        b, k, per = feats.shape
        regions = self.region(self.norm(feats.reshape(b * k, per))).view(b, -1)  # (B, (K+1) * 64 or per)
        return self.mix(regions)


def pixgen_shapes_regions(pretrained: bool = False, **kwargs: Any) -> ShapesRegions:
    """timm entry point (weights come through open_clip, never through timm)."""
    if pretrained:
        raise ValueError("pixgen_shapes_regions has no timm weights; load the shapes CLIP through open_clip")
    keep = ("tau", "grad_tau", "off_distance", "width", "hidden")
    return ShapesRegions(**{k: v for k, v in kwargs.items() if k in keep})


def pixgen_shapes_regions_linear(pretrained: bool = False, **kwargs: Any) -> ShapesRegions:
    """timm entry point of the linear variant (no MLP after the measurements)."""
    return pixgen_shapes_regions(pretrained, **{**kwargs, "hidden": False})


def register_timm_model() -> str:
    """Add both variants of the tower to timm's model registry (idempotent); returns the main one's name."""
    import timm
    from timm.models import register_model

    for name, entry in ((TIMM_NAME, pixgen_shapes_regions), (LINEAR_NAME, pixgen_shapes_regions_linear)):
        if not timm.is_model(name):
            register_model(entry)
    return TIMM_NAME
