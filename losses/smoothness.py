"""``--loss smoothness``: pixray's smoothness loss, the mean gradient magnitude of the cutouts.

It penalises every edge, so it removes speckle and small stray blobs first (a blob's cost grows with its
outline), and leaves large flat areas alone. ``kind`` as pixray's ``--smoothness_type``: ``default`` (the
magnitude), ``clipped`` (each pixel's magnitude capped at ``cap``, so strong outlines cost no more than weak
ones) or ``log`` (``log(1 + magnitude / cap)``).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from pixgen.errors import PixgenError
from pixgen.losses.base import Loss, LossInput

KINDS = ("default", "clipped", "log")


def gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Per-pixel gradient magnitude (``torch.gradient`` over H and W) of (N, C, H, W) images, same shape."""
    dy, dx = torch.gradient(images, dim=(-2, -1))
    return torch.sqrt(dx * dx + dy * dy + 1e-8)


class SmoothnessLoss(Loss):
    """Mean gradient magnitude (``torch.gradient``) of every cutout batch; optional ``kind`` and ``cap``."""

    name: ClassVar[str] = "smoothness"
    spec_args: ClassVar[tuple[str, ...]] = ("kind",)

    def __init__(self, *, kind: str = "default", cap: float = 0.1) -> None:
        """Options: ``kind`` (default, clipped, log) and ``cap``, the magnitude where clipping/log bend."""
        super().__init__()
        if kind not in KINDS:
            raise PixgenError(f"unknown smoothness kind {kind!r}; choose one of: {', '.join(KINDS)}")
        if not cap > 0:
            raise PixgenError(f"smoothness cap must be > 0, got {cap}")
        self.kind, self.cap = kind, cap

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Mean over the cutout batches (the render when there are none) of the mean gradient magnitude."""
        batches = list(inp.cutouts.values()) or [inp.render]
        return torch.stack([self._magnitude(images) for images in batches]).mean()

    def _magnitude(self, images: torch.Tensor) -> torch.Tensor:
        mag = gradient_magnitude(images)  # (N, 3, H, W)
        if self.kind == "clipped":
            mag = mag.clamp(max=self.cap)
        elif self.kind == "log":
            mag = torch.log1p(mag / self.cap)
        return mag.mean()
