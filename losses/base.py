"""The loss contract: ``Loss.forward(LossInput) -> scalar``, unweighted (the engine applies the weight)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class LossInput:
    """Everything a loss may look at in one step."""

    render: torch.Tensor  # (1, 3, H, W) in [0, 1], after filters
    cutouts: dict[int, torch.Tensor]  # input size -> (N, 3, s, s) augmented batch
    embeds: dict[str, torch.Tensor]  # perceptor key -> (N, D) L2-normalised image embeddings
    step: int
    total_steps: int
    extras: dict[str, Any] = field(default_factory=dict)
    #: the step's cutout transforms applied to another image of the render's size: input size -> (N, 3, s, s)
    replay: Callable[[torch.Tensor], dict[int, torch.Tensor]] | None = None


class Loss(nn.Module):
    """Base class of loss plug-ins. Options are keyword-only constructor arguments (``pixgen.options``)."""

    name: ClassVar[str] = ""
    spec_args: ClassVar[tuple[str, ...]] = ()
    default_weight: ClassVar[float] = 1.0

    def setup(self, context: Any) -> None:
        """Runs once before the first step (encode prompts, load models); ``context`` is a ``SetupContext``."""

    def forward(self, inp: LossInput) -> torch.Tensor:
        """The unweighted scalar loss for this step."""
        raise NotImplementedError
