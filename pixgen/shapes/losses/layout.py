"""``--loss layout``: a two-shape shapes caption scored shape by shape, each in its own half of the frame.

A CLIP reads "a red circle above a blue square" from the whole image, where both shapes are small. This loss
splits such a caption (``pixgen.shapes.world``'s grammar) into one one-shape caption per shape, each "a large
... in the center" of a square box on its side of the relation ("above": the top half's middle square, the
other in the bottom half's; a pair scene's shapes span 0.16-0.30 of the image, 0.32-0.6 of a box: large
there, and a box caption without a size also lets the CLIPs draw specks), and pulls cutouts of each box
towards its caption with the run's CLIPs and cutouts: each shape is seen at twice the size. The caption
names two shapes only, so ``layout_clear`` also penalises the colour spread of the pixels outside both boxes
(stray extra shapes there). Any other prompt (one shape, or outside the shapes world) adds nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from pixgen.context import SetupContext
from pixgen.errors import PixgenError
from pixgen.losses.base import Loss, LossInput
from pixgen.losses.functional import spherical_dist


class LayoutLoss(Loss):
    """Two-shape captions: each shape's box scored alone by the CLIPs, and the colour spread outside the boxes.

    Σ over boxes and CLIPs (weighted as the run weighs its CLIPs) of the box cutouts' mean distance to the
    box's one-shape caption, plus ``layout_clear`` × ``outside_spread``."""

    name: ClassVar[str] = "layout"
    spec_args: ClassVar[tuple[str, ...]] = ("layout_cutn", "layout_clear")

    def __init__(self, *, layout_cutn: int = 8, layout_clear: float = 10.0) -> None:
        """Options: ``layout_cutn``, cutouts per box and step (the run's augmentations); ``layout_clear``, the
        weight of the colour variance outside the boxes (defaults: the shapes preset's, measured in
        docs/shapes_experiments.md, session 23)."""
        super().__init__()
        if layout_cutn < 1:
            raise PixgenError(f"layout_cutn must be at least 1, got {layout_cutn}")
        if layout_clear < 0:
            raise PixgenError(f"layout_clear must be 0 or more, got {layout_clear}")
        self.cutn = int(layout_cutn)
        self.clear = float(layout_clear)
        self.cutouts: dict[int, Any] = {}
        self.boxes: list[tuple[float, float, float, float]] = []
        self.targets: list[dict[str, torch.Tensor]] = []
        self.perceptors: dict[str, tuple[Any, float]] = {}

    def setup(self, context: SetupContext) -> None:
        """Split the run's main prompt into boxes and encode each box's caption with every CLIP of the run."""
        from pixgen.shapes.world import relation_boxes

        self.perceptors = context.perceptors
        self.cutouts = context.make_cutouts(self.cutn)
        regions = relation_boxes(context.main_prompt, size="large")
        self.boxes = [box for _, box in regions]
        self.targets = [{key: perc.encode_text([caption]) for key, (perc, _) in self.perceptors.items()}
                        for caption, _ in regions]

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Σ_boxes Σ_CLIPs weight · mean distance of the box's cutouts to its caption (0 without boxes)."""
        total = inp.render.sum() * 0.0
        _, _, h, w = inp.render.shape
        for box, targets in zip(self.boxes, self.targets, strict=True):
            crop = inp.render[(..., *box_slices(box, h, w))]
            cuts = {size: cut(crop)[0] for size, cut in self.cutouts.items()}
            for key, (perc, weight) in self.perceptors.items():
                emb = perc.encode_image(cuts[perc.input_size])
                total = total + weight * spherical_dist(emb, targets[key]).mean()
        if self.clear and self.boxes:
            total = total + self.clear * outside_spread(inp.render, self.boxes)
        return total


def box_slices(box: tuple[float, float, float, float], h: int, w: int) -> tuple[slice, slice]:
    """The (rows, columns) slices of the box ``x0, y0, x1, y1`` (fractions) in an ``h`` × ``w`` image."""
    x0, y0, x1, y1 = box
    return slice(round(y0 * h), round(y1 * h)), slice(round(x0 * w), round(x1 * w))


def outside_spread(image: torch.Tensor, boxes: list[tuple[float, float, float, float]]) -> torch.Tensor:
    """Mean squared distance of the pixels of ``image`` (B, C, H, W) outside every box (fractions
    ``x0, y0, x1, y1``) to their mean colour, per image; 0 when the boxes cover it all."""
    _, _, h, w = image.shape
    outside = torch.ones(h, w, dtype=torch.bool, device=image.device)
    for box in boxes:
        outside[box_slices(box, h, w)] = False
    if not outside.any():
        return image.sum() * 0.0
    pixels = image[:, :, outside]  # (B, C, N)
    return (pixels - pixels.mean(dim=-1, keepdim=True)).pow(2).sum(dim=1).mean()
