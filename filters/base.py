"""The filter contract: ``Filter.forward(image) -> (image, loss)``, applied to the render before the cutouts.

A filter is a small ``nn.Module`` (pixray's ``--filters``). Options are keyword-only constructor arguments
(``pixgen.options``); ``spec_args`` maps ``--filters NAME:ARG`` to them. Each step the engine passes the render
through every filter in order and adds each filter's loss (times the spec's ``@WEIGHT``, default 1) to the
total. ``setup(run)`` runs once before the first step (e.g. to check the drawer's size). ``output(image)`` is
what the filter does to the image that is saved and shown: by default the same as in training, but a random
augmentation (a roll) leaves the saved image alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class Filter(nn.Module):
    """Base class of filter plug-ins: a differentiable image -> (image, scalar loss) map."""

    name: ClassVar[str] = ""
    spec_args: ClassVar[tuple[str, ...]] = ()

    def setup(self, context: Any) -> None:
        """Runs once before the first step, after the drawer is built; ``context`` is a ``SetupContext``."""

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, H, W) in [0, 1] -> (the filtered image (1, 3, H', W'), an unweighted scalar loss)."""
        raise NotImplementedError

    def output(self, image: torch.Tensor) -> torch.Tensor:
        """The filter applied to the image that is saved (``output.png``) and shown."""
        return self.forward(image)[0]


def no_loss(image: torch.Tensor) -> torch.Tensor:
    """A zero scalar on the image's device, for filters that add no loss."""
    return image.new_zeros(())


def random_shift(size: int) -> int:
    """A shift in ``[0, size)`` from torch's global RNG (the engine seeds it from the run's generator)."""
    return int(torch.randint(0, size, (1,)))
