"""``--loss saturation``: pixray's saturation loss (``Losses/SaturationLoss.py``), minus the colourfulness.

Colourfulness is Hasler and Süsstrunk's 2003 measure ("Measuring colourfulness in natural images"): with
``rg = R - G`` and ``yb = (R + G) / 2 - B`` over all pixels, ``sqrt(std_rg² + std_yb²) + 0.3 ·
sqrt(mean_rg² + mean_yb²)``. Grey images score 0; a pure red/blue mix scores about 1. As in pixray, each cutout
batch adds ``-colourfulness / 10``, so ``--loss saturation@W`` behaves as pixray's ``--saturation_weight W``
(default 1). It has no options of its own.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from pixgen.losses.base import Loss, LossInput


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler and Süsstrunk's colourfulness of all the pixels of (N, 3, H, W) images in [0, 1], a scalar."""
    pixels = images.movedim(1, -1).reshape(-1, 3)
    rg = pixels[:, 0] - pixels[:, 1]
    yb = 0.5 * (pixels[:, 0] + pixels[:, 1]) - pixels[:, 2]
    rg_std, rg_mean = torch.std_mean(rg)
    yb_std, yb_mean = torch.std_mean(yb)
    spread = torch.sqrt(rg_std**2 + yb_std**2 + 1e-12)  # + eps: a finite gradient on a flat grey image
    centre = torch.sqrt(rg_mean**2 + yb_mean**2 + 1e-12)
    return spread + 0.3 * centre


class SaturationLoss(Loss):
    """Minus the colourfulness (Hasler and Süsstrunk) of each cutout batch, / 10 as in pixray."""

    name: ClassVar[str] = "saturation"

    def __init__(self) -> None:
        """No options: the strength is the spec's weight (``--loss saturation@0.5``)."""
        super().__init__()

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Sum over the cutout batches (the render when there are none) of ``-colourfulness / 10``, in fp32."""
        batches = list(inp.cutouts.values()) or [inp.render]
        return torch.stack([-colourfulness(images.float()) / 10 for images in batches]).sum()  # fp32 under bf16
