"""``--loss denoise``: a learned image prior for the shapes world (regularisation by denoising).

The loss is the mean squared distance between the render and the shapes denoiser's output for it, with the
output held fixed, so its gradient pulls the render towards the clean scene the denoiser sees in it: a blob
towards the nearest circle, square or triangle, fragments and stray colours away. The denoiser works at 64 px;
other render sizes are resized for it and its output resized back. ``--loss denoise:0.3@100`` waits for the
first 30 % of the run (the prompt sets the colours first) and then weighs 100.

A *conditioned* denoiser (``scripts/train_shapes_denoiser.py --conditioned``; the built-in one is not) reads the
run's prompt: its main positive text prompt (the first of the highest weight), so that a blob becomes the
shape the prompt names; with no text prompt it reads an empty caption and only cleans the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from pixgen.context import SetupContext
from pixgen.errors import PixgenError
from pixgen.losses.base import Loss, LossInput

SIZE = 64


class DenoiseLoss(Loss):
    """Mean squared distance of the render to the (fixed) output of the shapes denoiser."""

    name: ClassVar[str] = "denoise"
    spec_args: ClassVar[tuple[str, ...]] = ("denoise_start",)

    def __init__(self, *, denoiser: str | None = None, denoise_start: float = 0.0) -> None:
        """Options: ``denoiser``, a weights file from ``scripts/train_shapes_denoiser.py`` (default: built in);
        ``denoise_start``, the fraction of the run before the loss applies (the prompt sets colours first)."""
        super().__init__()
        if not 0 <= denoise_start < 1:
            raise PixgenError(f"denoise_start must be in [0, 1), got {denoise_start}")
        self.path, self.start = denoiser, denoise_start
        self.model: Any = None
        self.tokens: torch.Tensor | None = None

    def setup(self, context: SetupContext) -> None:
        """Load the denoiser (once) on the run's device, and read the main prompt if it is conditioned."""
        self._load(context.device, context.main_prompt)

    def _load(self, device: Any, caption: str = "") -> None:
        from pixgen.shapes.denoiser import caption_tokens, load_denoiser
        from pixgen.shapes.models import denoiser_path

        self.model = load_denoiser(Path(self.path) if self.path else denoiser_path(), device)
        if self.model.conditioned:
            self.tokens = caption_tokens([caption]).to(device)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Mean squared distance of the render to the denoised render (no gradient through the denoiser)."""
        render = inp.render
        if self.model is None:
            self._load(render.device)
        if inp.step < self.start * inp.total_steps:
            return render.sum() * 0.0
        with torch.no_grad():
            small = render
            if render.shape[-2:] != (SIZE, SIZE):
                small = F.interpolate(render, size=(SIZE, SIZE), mode="area")
            clean = self.model(small, self.tokens)
            if clean.shape != render.shape:
                clean = F.interpolate(clean, size=render.shape[-2:], mode="bilinear")
        return F.mse_loss(render, clean)
