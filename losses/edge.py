"""``--loss edge``: pixray's edge loss (``Losses/EdgeLoss.py``), pulls the border of the render to a colour.

Options (pixray's names and defaults):

- ``edge_thickness`` (5): the width of the border strips, in % of the image's width (left, right strips) and
  height (top, bottom strips);
- ``edge_margins`` ("L,R,T,B", each in %): a thickness per side instead, e.g. ``"0,0,10,10"`` for top and
  bottom bands only; a side of 0 has no strip;
- ``edge_color`` ("white"): a colour as the palettes write one (``red``, ``#ff8800``, ``(255+136+0)``);
- ``edge_color_weight`` (0.1): the scale of the whole loss;
- ``global_color_weight`` (0.05): a term pulling the *whole* image gently toward the colour, too.

The loss is ``edge_color_weight × (Σ MSE(strip, colour) + global_color_weight × MSE(render, colour))``, over
the render (not the cutouts). The left and right strips run the full height; the top and bottom ones lie
between them, as in pixray. Unlike pixray, which truncates, a side above 0 % is at least one pixel wide.
pixray's ``--edge_input_image`` and ``--edge_mask_image`` are not offered.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from pixgen.errors import PixgenError
from pixgen.losses.base import Loss, LossInput
from pixgen.palette import colour


def parse_margins(text: str) -> tuple[float, float, float, float]:
    """``"L,R,T,B"`` (commas or spaces; each a % of the image) as four numbers, checked."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) and 0 <= v <= 100 for v in values):
        raise PixgenError(f"edge_margins {text!r} must be four percentages 0-100, left,right,top,bottom "
                          "(e.g. 5,5,10,10)")
    left, right, top, bottom = values
    if left + right > 100 or top + bottom > 100:
        raise PixgenError(f"edge_margins {text!r}: left+right and top+bottom must each be at most 100 %")
    return values


def strip_pixels(percent: float, length: int) -> int:
    """``percent`` of ``length`` in whole pixels: at least 1 when ``percent`` > 0, at most ``length``."""
    return 0 if percent <= 0 else min(length, max(1, round(percent * length / 100)))


def border_strips(image: torch.Tensor, margins: tuple[float, ...]) -> list[torch.Tensor]:
    """The non-empty left, right, top and bottom strips of (N, C, H, W) ``image`` for ``margins`` in %."""
    height, width = image.shape[-2:]
    left, right = strip_pixels(margins[0], width), strip_pixels(margins[1], width)
    top, bottom = strip_pixels(margins[2], height), strip_pixels(margins[3], height)
    middle = image[..., left:width - right]
    strips = [image[..., :left], image[..., width - right:], middle[..., :top, :], middle[..., height - bottom:, :]]
    return [strip for strip in strips if strip.numel()]


def _check_weight(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise PixgenError(f"{name} must be a finite number >= 0, got {value}")


class EdgeLoss(Loss):
    """MSE of the render's border strips (and, gently, the whole render) to ``edge_color``, as pixray."""

    name: ClassVar[str] = "edge"

    def __init__(self, *, edge_thickness: float = 5.0, edge_margins: str | None = None, edge_color: str = "white",
                 edge_color_weight: float = 0.1, global_color_weight: float = 0.05) -> None:
        """Options: ``edge_thickness`` (%), ``edge_margins`` ("L,R,T,B" %), ``edge_color``, ``edge_color_weight``
        and ``global_color_weight``; see the module docstring."""
        super().__init__()
        if not (math.isfinite(edge_thickness) and 0 <= edge_thickness <= 50):
            raise PixgenError(f"edge_thickness must be a percentage 0-50, got {edge_thickness}")
        _check_weight("edge_color_weight", edge_color_weight)
        _check_weight("global_color_weight", global_color_weight)
        self.margins = parse_margins(edge_margins) if edge_margins is not None else (edge_thickness,) * 4
        self.register_buffer("colour", torch.tensor(colour(edge_color)).view(1, 3, 1, 1))
        self.edge_color_weight, self.global_color_weight = edge_color_weight, global_color_weight

    def forward(self, inp: LossInput) -> torch.Tensor:
        """``edge_color_weight × (Σ strip MSE + global_color_weight × render MSE)`` to the colour."""
        render, target = inp.render.float(), self.colour.float()  # fp32, whatever the run's autocast made
        terms = [F.mse_loss(strip, target.expand_as(strip)) for strip in border_strips(render, self.margins)]
        if self.global_color_weight:
            terms.append(self.global_color_weight * F.mse_loss(render, target.expand_as(render)))
        total = torch.stack(terms).sum() if terms else render.sum() * 0
        return self.edge_color_weight * total
