"""``--loss denoise``: a learned image prior for the shapes world (regularisation by denoising).

The loss is the mean squared distance between the render and the shapes denoiser's output for it, with the
output held fixed, so its gradient pulls the render towards the clean scene the denoiser sees in it: a blob
towards the nearest circle, square or triangle, fragments and stray colours away. The denoiser works at 64 px;
other render sizes are resized for it and its output resized back. ``--loss denoise:0.3@100`` waits for the
first 30 % of the run (the prompt sets the colours first) and then weighs 100.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

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

    def setup(self, context: Any = None) -> None:
        """Load the denoiser (once) on the run's device."""
        from pixgen.shapes.denoiser import ShapesDenoiser
        from pixgen.shapes.models import denoiser_path

        path = Path(self.path) if self.path else denoiser_path()
        if not path.is_file():
            raise PixgenError(f"denoise loss: no denoiser weights at {path}; give --denoiser a file written by "
                              "scripts/train_shapes_denoiser.py")
        model = ShapesDenoiser()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict({k: v.float() for k, v in state.items()})
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: say which and how to fix it
            raise PixgenError(f"denoise loss: {path} is not a shapes denoiser checkpoint "
                              f"({type(exc).__name__}); rebuild it with scripts/train_shapes_denoiser.py") from exc
        device = getattr(context, "device", None) or "cpu"
        self.model = model.to(device).eval().requires_grad_(False)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Mean squared distance of the render to the denoised render (no gradient through the denoiser)."""
        if self.model is None:
            self.setup()
        render = inp.render
        if inp.step < self.start * inp.total_steps:
            return render.sum() * 0.0
        with torch.no_grad():
            small = render
            if render.shape[-2:] != (SIZE, SIZE):
                small = F.interpolate(render, size=(SIZE, SIZE), mode="area")
            clean = self.model(small.to(next(self.model.parameters()).device))
            if clean.shape != render.shape:
                clean = F.interpolate(clean, size=render.shape[-2:], mode="bilinear")
        return F.mse_loss(render, clean.to(render))
