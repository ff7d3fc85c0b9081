"""The drawer contract. A drawer is an ``nn.Module`` whose trainable parameters *are* the image.

Construction: ``Drawer(width, height, **options)``; options are keyword-only constructor arguments with
types and defaults (see ``pixgen.options``), and ``spec_args`` maps ``--drawer name:ARG`` to them. A drawer
may trim ``self.width``/``self.height`` in its constructor (VQGAN: to a multiple of its downsampling factor);
the engine compares them with the requested size and tells the user. Constructors must fail early (missing
model files, bad options) with a ``PixgenError``, before any work is done.
The engine then calls, in order:

1. ``.to(device)``, ``setup(context)`` (a ``pixgen.context.SetupContext``: the parsed prompts, how the run
   starts...), then ``init_from_noise(kind, generator)`` or ``init_from_image(img)`` -- set the parameters
   (the generator is a CPU ``torch.Generator``; all randomness must come from it);
2. ``param_groups(lr)`` -- the optimizer is built from these groups;
3. every step: ``set_progress(done / iterations)``, ``render()`` -> (1, 3, H, W) in [0, 1], differentiable;
   after ``optimizer.step()``: ``project_()`` (clamps, codebook range);
4. ``extra_outputs()`` when saving (e.g. ``{"output.svg": "<svg ...>"}``).

Frozen models (a VQGAN decoder) are never submodules: they come from a process-wide cached loader, so that
``trainable_state()`` and checkpoints hold only what is optimized.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from pixgen.noise import noise_image


class Drawer(nn.Module):
    """Base class of all drawers; subclasses implement ``render``, ``init_from_image`` and ``project_``."""

    name: ClassVar[str] = ""
    #: names of the options that ``--drawer NAME:ARG1:ARG2`` fills, in order
    spec_args: ClassVar[tuple[str, ...]] = ()
    #: learning rate used when the run does not set ``lr``
    default_lr: ClassVar[float] = 0.1
    #: ``init_noise`` kinds this drawer understands besides the engine's noise images
    extra_init_noise: ClassVar[tuple[str, ...]] = ()

    def __init__(self, width: int, height: int, **options: Any) -> None:
        """Subclasses pass their own keyword options through, so ``to_config`` can rebuild them."""
        super().__init__()
        self.width, self.height = width, height
        self._options: dict[str, Any] = options

    # -- required --------------------------------------------------------------------------------------
    def render(self) -> torch.Tensor:
        """The image, (1, 3, H, W) in [0, 1], differentiable w.r.t. the parameters."""
        raise NotImplementedError

    def init_from_image(self, img: torch.Tensor) -> None:
        """Set the parameters so the render approximates ``img`` (1, 3, H, W) in [0, 1]."""
        raise NotImplementedError

    # -- optional, with defaults -----------------------------------------------------------------------
    def setup(self, context: Any) -> None:
        """Runs once on the run's device before the start is set; ``context`` is a ``SetupContext``."""

    def init_from_noise(self, kind: str, generator: torch.Generator) -> None:
        """Start from a noise image (``pixels``, ``gradient``, ``snow``, ``none``); drawers may add kinds."""
        self.init_from_image(noise_image(kind, self.width, self.height, generator))

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups; override to give groups their own learning rates."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def set_progress(self, fraction: float) -> None:
        """Told by the engine before each render how far the run is, in [0, 1] (a schedule may follow it)."""

    @torch.no_grad()
    def project_(self) -> None:
        """Apply constraints after each optimizer step (clamp colours, widths, codebook range)."""

    def extra_outputs(self) -> dict[str, str | bytes]:
        """Files written beside ``output.png`` when saving, by file name (e.g. ``output.svg``)."""
        return {}

    def to_config(self) -> dict[str, Any]:
        """The options that rebuild this drawer: ``{"name": ..., "width": ..., "height": ..., **options}``."""
        return {"name": self.name, "width": self.width, "height": self.height, **self._options}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what is optimized (small checkpoints; never a frozen model)."""
        return {k: v.detach().cpu() for k, v in self.state_dict().items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``trainable_state`` returned."""
        self.load_state_dict(state)


def ramp_share(progress: float, ramp: float) -> float:
    """How far a render goes from its continuous form to its discrete one (VQGAN codes, palette colours) at
    ``progress`` (a fraction of the run) under a ramp of ``ramp``: rising linearly to 1 at ``ramp``, then 1
    (always 1 for ramp 0)."""
    return progress / ramp if progress < ramp else 1.0
