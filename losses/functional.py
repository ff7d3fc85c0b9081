"""Small pure functions shared by losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def spherical_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared great-circle distance between the directions of ``x`` and ``y`` (broadcast over the last dim):
    ``2 * arcsin(|x̂ - ŷ| / 2) ** 2`` (Crowson's VQGAN+CLIP, pixray)."""
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)
