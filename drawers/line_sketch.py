"""``--drawer line_sketch``: a few long dark strokes on paper-coloured background, as pixray's line drawer.

Parameters are resolution-independent (see ``pixgen.drawers.vector``): control points in normalised canvas
coordinates, widths as a fraction of the height; strokes are opaque black, the paper (242, 238, 203).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from pixgen.drawers.vector import StrokeDrawer, image_generator, random_walk_points
from pixgen.errors import PixgenError
from pixgen.noise import NOISE_KINDS

PAPER = (242 / 255, 238 / 255, 203 / 255)


class LineSketchDrawer(StrokeDrawer):
    """``strokes`` black Bézier strokes of ``stroke_length`` cubics each on paper; optimizes points and
    widths (pixray: 1 px, 0.1 px per step at ``lr == default_lr``), and the paper colour (0.01) only with
    ``allow_paper_color``."""

    name: ClassVar[str] = "line_sketch"
    spec_args: ClassVar[tuple[str, ...]] = ("strokes",)

    def __init__(self, width: int, height: int, *, strokes: int = 24, stroke_length: int = 8,
                 min_width: float = 0.5, max_width: float = 2.0, allow_paper_color: bool = False) -> None:
        """Options: stroke count, cubics per stroke, width range (percent of the height), paper colour."""
        if strokes < 1 or stroke_length < 1:
            raise PixgenError(f"line_sketch needs strokes >= 1 and stroke_length >= 1, got {strokes} and "
                              f"{stroke_length}; try --drawer line_sketch:24")
        super().__init__(width, height, strokes=strokes, stroke_length=stroke_length, min_width=min_width,
                         max_width=max_width, allow_paper_color=allow_paper_color)
        self.strokes, self.stroke_length = strokes, stroke_length
        self._install("paper", torch.tensor(PAPER))

    def init_from_noise(self, kind: str, generator: torch.Generator) -> None:
        """Random strokes around the centre on pixray's paper, as pixray (whatever the noise ``kind``)."""
        if kind not in NOISE_KINDS:
            raise PixgenError(f"unknown init noise {kind!r}; choose one of: {', '.join(NOISE_KINDS)}")
        start = 0.5 + 0.5 * (torch.rand(self.strokes, 2, generator=generator) - 0.5)  # (P, 2)
        self._strokes_from(start, generator, torch.tensor(PAPER))

    def init_from_image(self, img: torch.Tensor) -> None:
        """Strokes that start on the image's dark pixels (drawn from a generator seeded by the image), on
        paper of the mean colour of its lightest quarter."""
        img = img.detach().float().cpu().clamp(0, 1)[0]  # (3, h, w)
        generator = image_generator(img)
        grey = img.mean(0)  # (h, w)
        pick = torch.multinomial(((1 - grey) ** 2).flatten() + 1e-6, self.strokes, replacement=True,
                                 generator=generator)  # (P,) start pixels, mostly dark ones
        h, w = grey.shape
        start = torch.stack([(pick % w + 0.5) / w, (pick // w + 0.5) / h], dim=1)
        light = grey.flatten().topk(max(1, grey.numel() // 4)).indices
        self._strokes_from(start, generator, img.flatten(1)[:, light].mean(1))

    def _strokes_from(self, start: torch.Tensor, generator: torch.Generator, paper: torch.Tensor) -> None:
        """Walks of ``stroke_length`` cubics from ``start`` (P, 2), steps ±1/(2(n+2)) (aspect-corrected)."""
        radius = torch.tensor([self.height / self.width, 1.0]) / (self.stroke_length + 2)
        n_seg = torch.full((self.strokes,), self.stroke_length)
        points = random_walk_points(n_seg, start, radius, generator).clamp(0, 1)
        self._set_strokes(points, n_seg, torch.full((self.strokes,), self.min_width), paper)

    def stroke_rgba(self) -> torch.Tensor:
        """Opaque black, (P, 4)."""
        return self.points.new_tensor([0.0, 0.0, 0.0, 1.0]).expand(len(self.widths), 4)
