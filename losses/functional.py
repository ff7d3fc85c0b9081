"""Small pure functions shared by losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stopped(dists: torch.Tensor, weights: torch.Tensor, stops: torch.Tensor) -> torch.Tensor:
    """Signed distances ``sign(w) * d`` whose gradient is cut once a prompt is past its stop: a positive prompt
    pulls until closer than ``|stop|``, a negative one pushes until farther than ``|stop|`` (pixray spells that
    stop negative; its sign is ignored); a stop of -inf never stops. ``dists`` (N, P), ``weights`` and ``stops``
    (P,)."""
    signed = dists * weights.sign()
    limit = stops.abs()
    active = ~torch.isfinite(stops) | torch.where(weights > 0, dists > limit, dists < limit)
    return torch.where(active, signed, signed.detach())


def spherical_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared great-circle distance between the directions of ``x`` and ``y`` (broadcast over the last dim):
    ``2 * arcsin(|x̂ - ŷ| / 2) ** 2`` (Crowson's VQGAN+CLIP, pixray)."""
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)
