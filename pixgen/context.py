"""SetupContext: what a plug-in may know of its run when it is set up (never the ``Run`` itself)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from pixgen.prompts import Prompt, main_text


@dataclass(frozen=True)
class SetupContext:
    """Handed to ``setup()`` of drawers, filters and losses once, before the first step.

    ``perceptors`` maps a CLIP's key to ``(perceptor, weight)``; ``make_cutouts(cutn)`` builds the run's
    cutout pipelines (input size -> ``Cutouts``) with another number of cutouts.
    """

    device: torch.device
    prompts: tuple[Prompt, ...] = ()
    perceptors: dict[str, tuple[Any, float]] = field(default_factory=dict)
    make_cutouts: Callable[[int], dict[int, Any]] | None = None
    size: tuple[int, int] = (0, 0)
    iterations: int = 1
    start: str = "pixels"  # how the drawer starts: "image" (an init image) or an init-noise kind ("prior"...)
    drawer: Any = None  # the run's drawer (its parameters, e.g. to keep them near their start)

    @property
    def main_prompt(self) -> str:
        """The first positive text prompt of the highest weight ("" if there is none)."""
        return main_text(self.prompts)
