"""The CLIP prompt loss: squared great-circle distance between image and prompt embeddings (pixray's
``Prompt``), per-prompt weight and stop, summed over prompts and weighted perceptors."""

from __future__ import annotations

from typing import Any

import torch

from pixgen.losses.base import Loss, LossInput
from pixgen.losses.functional import spherical_dist


class ClipPromptLoss(Loss):
    """Pulls every cutout's embedding toward each text prompt (and away, for negative weights)."""

    name = "clip"

    def __init__(self, *, prompts: list[Any], perceptors: dict[str, tuple[Any, float]]) -> None:
        super().__init__()
        self.prompts = list(prompts)
        self.perceptors = perceptors  # key -> (perceptor, weight)
        self.targets: dict[str, torch.Tensor] = {}

    def setup(self, context: Any = None) -> None:
        """Encode the prompt texts once per perceptor."""
        texts = [p.text for p in self.prompts]
        self.targets = {key: perc.encode_text(texts) for key, (perc, _) in self.perceptors.items()}
        device = next(iter(self.targets.values())).device
        self.weights = torch.tensor([p.weight for p in self.prompts], device=device)  # (P,)
        self.stops = torch.tensor([p.stop for p in self.prompts], device=device)  # (P,)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Σ_perceptors w_p · Σ_prompts |w| · mean over cutouts of the stopped, signed distance."""
        total = 0.0
        for key, (_, weight) in self.perceptors.items():
            dists = spherical_dist(inp.embeds[key][:, None], self.targets[key][None])  # (N, P)
            dists = dists * self.weights.sign()
            stopped = _replace_grad(dists, torch.maximum(dists, self.stops))
            total = total + weight * (self.weights.abs() * stopped.mean(dim=0)).sum()
        return total


def _replace_grad(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """The value of ``forward`` with the gradient of ``backward``."""
    return backward + (forward - backward).detach()
