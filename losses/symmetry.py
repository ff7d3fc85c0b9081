"""``--loss symmetry``: pixray's symmetry loss (``Losses/SymmetryLoss.py``), the MSE between the render and its
mirror image.

``symmetry_axis`` (or ``--loss symmetry:AXIS``) says which flip the render should equal:

- ``horizontal`` (default, pixray's ``torch.flip(out, [3])``): flipped left to right, so the left half mirrors
  the right half (a face, a butterfly);
- ``vertical``: flipped top to bottom, so the top half mirrors the bottom half (a reflection in water);
- ``both``: the sum of the two terms, symmetric both ways.

It reads the render, not the cutouts (their random crops are not symmetric). ``--loss symmetry@W`` behaves as
pixray's ``--symmetry_weight W`` (default 1).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from pixgen.errors import PixgenError
from pixgen.losses.base import Loss, LossInput

#: axis name -> the tensor dims flipped (of (N, C, H, W)), one term each
AXES = {"horizontal": ((3,),), "vertical": ((2,),), "both": ((3,), (2,))}


def mirror_mse(image: torch.Tensor, axis: str = "horizontal") -> torch.Tensor:
    """The MSE between (N, C, H, W) ``image`` and its flip(s) along ``axis`` (summed for ``both``)."""
    return torch.stack([F.mse_loss(image, torch.flip(image, dims)) for dims in AXES[axis]]).sum()


class SymmetryLoss(Loss):
    """MSE between the render and its mirror image (``symmetry_axis`` horizontal, vertical or both)."""

    name: ClassVar[str] = "symmetry"
    spec_args: ClassVar[tuple[str, ...]] = ("symmetry_axis",)

    def __init__(self, *, symmetry_axis: str = "horizontal") -> None:
        """Option: ``symmetry_axis``, the flip the render should equal (horizontal = left-right, as pixray)."""
        super().__init__()
        if symmetry_axis not in AXES:
            raise PixgenError(f"unknown symmetry_axis {symmetry_axis!r}; choose one of: {', '.join(AXES)}")
        self.axis = symmetry_axis

    def forward(self, inp: LossInput) -> torch.Tensor:
        """``mirror_mse`` of the render, in fp32 (the render may come from a bf16 or fp16 autocast)."""
        return mirror_mse(inp.render.float(), self.axis)
