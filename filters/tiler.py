"""``--filters tiler``: pixray's tiler, a random ``torch.roll`` of the render in x and y every step.

CLIP then sees the picture wrapped around at random places, so the edges have to join up: the result tiles
seamlessly. The saved image is the tile itself, not rolled.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from pixgen.filters.base import Filter, no_loss, random_shift


class TilerFilter(Filter):
    """Random roll in x and y each step (a seamless tile); no loss, the saved image is not rolled."""

    name: ClassVar[str] = "tiler"

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Roll (1, 3, H, W) by a random (dy, dx)."""
        height, width = image.shape[-2:]
        shifts = (random_shift(height), random_shift(width))
        return torch.roll(image, shifts=shifts, dims=(-2, -1)), no_loss(image)

    def output(self, image: torch.Tensor) -> torch.Tensor:
        """The tile as it is."""
        return image
