"""Init weights: keep the run near where it started. ``--init-weight W`` pulls the render towards the init image
(pixel space, every drawer); ``--init-latent-weight W`` pulls the drawer's parameters towards their values at the
start (the drawer's own space: the VQGAN latent ``z``, the pixel grid, the strokes)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from pixgen.losses.base import Loss, LossInput


class InitImageLoss(Loss):
    """Mean squared distance of the render to the init image (fitted to the render's size)."""

    name = "init"

    def __init__(self, *, path: str) -> None:
        super().__init__()
        self.path = path
        self.target: torch.Tensor | None = None

    def setup(self, context: Any = None) -> None:
        """Read the init image once."""
        from pixgen.io import load_image

        self.original = load_image(self.path)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """MSE between the render (1, 3, H, W) and the init image at that size."""
        from pixgen.io import fit

        if self.target is None or self.target.shape != inp.render.shape:
            _, _, h, w = inp.render.shape
            self.target = fit(self.original, (w, h)).to(inp.render.device)
        return F.mse_loss(inp.render, self.target)


class InitLatentLoss(Loss):
    """Mean squared distance of the drawer's trainable parameters to their values at the start."""

    name = "init_latent"

    def setup(self, context: Any = None) -> None:
        """Remember the drawer's parameters as they are now (after its start was set)."""
        self.params = [p for p in context.drawer.parameters() if p.requires_grad]
        self.start = [p.detach().clone() for p in self.params]

    def forward(self, inp: LossInput) -> torch.Tensor:
        """The mean over parameter tensors of their MSE to the start."""
        terms = [F.mse_loss(p, p0) for p, p0 in zip(self.params, self.start, strict=True)]
        return torch.stack(terms).mean()
