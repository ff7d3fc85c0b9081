"""The CLIP prompt loss of a story (``pixgen.schedule``): one ``ClipPromptLoss`` per part, each part's texts
encoded once in ``setup``; each step scores the part that holds at that step (``LossInput.step``). Target images
hold for the whole run: they are one more prompt loss, encoded once, added at every step."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pixgen.losses.base import Loss, LossInput
from pixgen.losses.clip import ClipPromptLoss


class StoryClipLoss(Loss):
    """The text prompts of the part that holds at the step, plus the target images."""

    name = "clip"

    def __init__(self, *, schedule: Any, perceptors: dict[str, tuple[Any, float]],
                 target_images: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.schedule = schedule  # pixgen.schedule.Schedule
        self.parts = nn.ModuleList(ClipPromptLoss(prompts=list(segment.prompts), perceptors=perceptors)
                                   for segment in schedule.segments)
        self.images = ClipPromptLoss(prompts=[], perceptors=perceptors, target_images=target_images) \
            if target_images else None

    def setup(self, context: Any = None) -> None:
        """Encode every part's texts and the target images, once."""
        for part in [*self.parts, *([self.images] if self.images is not None else [])]:
            part.setup(context)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """The loss of the part at ``inp.step`` (plus the target images')."""
        loss = self.parts[self.schedule.index_at(inp.step)](inp)
        return loss if self.images is None else loss + self.images(inp)


def prompt_loss(plan: Any, perceptors: dict[str, tuple[Any, float]]) -> Loss:
    """The run's CLIP prompt loss: a ``StoryClipLoss`` for a story, else the plain ``ClipPromptLoss``."""
    schedule = plan.schedule
    if schedule is not None and schedule.is_story:
        return StoryClipLoss(schedule=schedule, perceptors=perceptors, target_images=plan.target_images)
    return ClipPromptLoss(prompts=list(plan.prompts), perceptors=perceptors, target_images=plan.target_images)
