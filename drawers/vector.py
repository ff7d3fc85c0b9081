"""``--drawer vector``: CLIPDraw-style random Bézier strokes, rendered by ``pixgen.raster`` (no diffvg).

Parameters are resolution-independent: control points in normalised canvas coordinates (x / width,
y / height), stroke widths as a fraction of the canvas height, RGBA colours in [0, 1].
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from pixgen.drawers.base import Drawer, ramp_share
from pixgen.errors import PixgenError
from pixgen.noise import NOISE_KINDS
from pixgen.palette import choice_logits, parse_palette, pick_colours
from pixgen.raster import Paths, rasterize

#: canvas height at which pixray's per-pixel learning rates (points 1 px, widths 0.1 px) are kept exactly
REFERENCE_HEIGHT = 224


def segment_layout(n_segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each cubic finds its control points when paths of ``n_segments`` (P,) cubics are stored one after
    another (3n + 1 points each): ``(seg_index (M, 4) into the points, seg_path (M,))``."""
    counts = 3 * n_segments + 1  # (P,) points per path
    first = torch.cumsum(counts, 0) - counts  # (P,) each path's first point
    seg_path = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), n_segments)  # (M,)
    j = torch.arange(len(seg_path), device=counts.device) - (torch.cumsum(n_segments, 0) - n_segments)[seg_path]
    return (first[seg_path] + 3 * j).unsqueeze(1) + torch.arange(4, device=counts.device), seg_path


def random_walk_points(n_segments: torch.Tensor, start: torch.Tensor, radius: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor:
    """Control points (C, 2) of paths of ``n_segments`` (P,) cubics that walk from ``start`` (P, 2) in uniform
    steps of ``±radius/2`` (2,), as pixray's init; laid out as ``segment_layout`` expects."""
    counts = 3 * n_segments + 1  # (P,)
    first = torch.cumsum(counts, 0) - counts  # (P,)
    steps = radius * (torch.rand(int(counts.sum()), 2, generator=generator, dtype=torch.float64) - 0.5)
    steps[first] = start.double()
    walk = torch.cumsum(steps, 0)  # (C, 2)
    return (walk - (walk[first] - steps[first])[torch.repeat_interleave(torch.arange(len(counts)), counts)]).float()


def image_generator(img: torch.Tensor) -> torch.Generator:
    """A generator seeded from the image content, so ``init_from_image`` is reproducible."""
    data = (img.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy().tobytes()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(data).digest()[:8], "little"))


def sample_colours(img: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear colours (N, 3) of ``img`` (1, 3, H, W) at normalised points ``xy`` (N, 2) in [0, 1]."""
    grid = (xy.to(img) * 2 - 1).view(1, 1, -1, 2)  # (1, 1, N, 2)
    return F.grid_sample(img, grid, align_corners=False, padding_mode="border")[0, :, 0].T.clamp(0, 1)


class StrokeDrawer(Drawer):
    """Shared machinery of stroke drawers: points/widths parameters, rendering, clamps, SVG export.

    Subclasses create the strokes (``_set_strokes``) and say what colours and background they use.
    """

    default_lr: ClassVar[float] = 1.0
    #: learning rates at ``lr == default_lr``: points and widths in pixels at ``REFERENCE_HEIGHT`` (pixray)
    point_lr_px: ClassVar[float] = 1.0
    width_lr_px: ClassVar[float] = 0.1
    colour_lr: ClassVar[float] = 0.01
    #: learning rate of palette-choice logits (``palette``) at ``lr == default_lr``
    logit_lr: ClassVar[float] = 0.1
    #: colour parameters in the order of their optimizer groups
    colour_names: ClassVar[tuple[str, ...]] = ("paper", "paper_logits", "colors", "color_logits")

    def __init__(self, width: int, height: int, *, min_width: float, max_width: float,
                 allow_paper_color: bool = False, **options: Any) -> None:
        """Check the width range (percent of the canvas height) and record the options; with
        ``allow_paper_color`` the background colour is optimized too."""
        if not 0 < min_width <= max_width:
            raise PixgenError(f"stroke widths need 0 < min_width <= max_width (percent of the height), got "
                              f"{min_width} and {max_width}; pass e.g. min_width=1 max_width=5")
        super().__init__(width, height, min_width=min_width, max_width=max_width,
                         allow_paper_color=allow_paper_color, **options)
        self.allow_paper_color = allow_paper_color
        # as fractions of the height, never thinner than 1 px (pixray's line drawer floor)
        self.min_width = max(min_width / 100, 1 / height)
        self.max_width = max(max_width / 100, self.min_width)

    def _install(self, name: str, value: torch.Tensor) -> None:
        """Set a parameter (if ``name`` is trainable) or buffer, on the device of the paper colour, which
        exists from the constructor on, so it does not matter whether ``.to(device)`` came before the init."""
        device = self.paper.device if hasattr(self, "paper") else torch.device("cpu")
        value = value.to(device)
        if name in self.trainable_names():
            setattr(self, name, nn.Parameter(value.float()))
        else:
            self.register_buffer(name, value)

    def _set_strokes(self, points: torch.Tensor, n_segments: torch.Tensor, widths: torch.Tensor,
                     paper: torch.Tensor) -> None:
        """Install strokes: points (C, 2) normalised, ``n_segments`` (P,) cubics per path, widths (P,) as a
        fraction of the height, and the background colour (3,)."""
        self._install("points", points)
        self._install("widths", widths)
        self._install("n_segments", n_segments.long())
        self._set_layout()
        with torch.no_grad():
            self.paper.copy_(paper)

    def _set_layout(self) -> None:
        """Derive the segment index buffers from ``n_segments`` (not saved: they follow from it)."""
        seg_index, seg_path = segment_layout(self.n_segments)
        self.register_buffer("seg_index", seg_index, persistent=False)
        self.register_buffer("seg_path", seg_path, persistent=False)

    def path_centres(self) -> torch.Tensor:
        """Mean control point of every path, (P, 2) normalised."""
        centres = self.points.detach()[self.seg_index].mean(1)  # (M, 2)
        return torch.zeros(len(self.n_segments), 2).to(centres).index_add_(0, self.seg_path, centres) / (
            self.n_segments.unsqueeze(1))

    def trainable_names(self) -> set[str]:
        """Names of the tensors that are parameters (the others are buffers): points, widths, and the paper
        colour with ``allow_paper_color``."""
        return {"points", "widths", "paper"} if self.allow_paper_color else {"points", "widths"}

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Points, widths and every trainable colour tensor (``colour_names``), each its own learning rate."""
        points_lr, widths_lr, colour_lr = self._group_lrs(lr)
        groups = [{"params": [self.points], "lr": points_lr, "name": "points"},
                  {"params": [self.widths], "lr": widths_lr, "name": "widths"}]
        trainable = self.trainable_names()
        for name in (n for n in self.colour_names if n in trainable):
            rate = lr / self.default_lr * self.logit_lr if name.endswith("_logits") else colour_lr
            groups.append({"params": [getattr(self, name)], "lr": rate, "name": name})
        return groups

    def stroke_rgba(self) -> torch.Tensor:
        """Stroke colours (P, 4) RGBA in [0, 1]."""
        raise NotImplementedError

    def background(self) -> torch.Tensor:
        """The background (paper) colour (3,) in [0, 1]."""
        return self.paper

    def paths(self) -> Paths:
        """The strokes in pixel coordinates, as the rasterizer and the SVG writer take them."""
        if not hasattr(self, "points"):
            raise PixgenError(f"the {self.name} drawer has no strokes yet; call init_from_noise or "
                              "init_from_image before rendering")
        scale = self.points.new_tensor([self.width, self.height])
        ctrl = self.points[self.seg_index] * scale  # (M, 4, 2) pixels
        return Paths(ctrl, self.seg_path, self.widths * self.height, self.stroke_rgba())

    def render(self) -> torch.Tensor:
        """Rasterize the strokes over the background: (1, 3, H, W) in [0, 1]."""
        return rasterize(self.paths(), self.width, self.height, self.background()).clamp(0, 1)

    def _group_lrs(self, lr: float) -> tuple[float, float, float]:
        """(points, widths, colours) learning rates in parameter units, scaled by ``lr / default_lr``."""
        scale = lr / self.default_lr
        return (scale * self.point_lr_px / REFERENCE_HEIGHT, scale * self.width_lr_px / REFERENCE_HEIGHT,
                scale * self.colour_lr)

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp widths to [min_width, max_width], keep control points within 10 % of the canvas and the
        paper colour in [0, 1]."""
        self.widths.clamp_(self.min_width, self.max_width)
        self.points.clamp_(-0.1, 1.1)
        self.paper.clamp_(0, 1)

    def extra_outputs(self) -> dict[str, str | bytes]:
        """``output.svg``: the same strokes as vector paths."""
        from pixgen.svg import paths_to_svg

        return {"output.svg": paths_to_svg(self.paths(), self.width, self.height, self.background())}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore strokes saved by ``trainable_state`` (their number of control points may differ)."""
        for key, value in state.items():
            self._install(key, value.clone())
        self._set_layout()


class VectorDrawer(StrokeDrawer):
    """CLIPDraw: ``strokes`` open Bézier paths of 1 to ``segments`` cubics, RGBA, composited over white
    (over the image's mean colour after ``init_from_image``).

    Points, widths and colours have their own Adam learning rates (pixray: 1 px, 0.1 px, 0.01 at
    ``lr == default_lr``); widths stay within ``min_width``-``max_width`` percent of the height.
    """

    name: ClassVar[str] = "vector"
    spec_args: ClassVar[tuple[str, ...]] = ("strokes",)

    def __init__(self, width: int, height: int, *, strokes: int = 1024, segments: int = 3,
                 min_width: float = 1.0, max_width: float = 5.0, allow_paper_color: bool = False,
                 fill: bool = False, palette: str | None = None, palette_ramp: float = 0.0) -> None:
        """Options: stroke count, most cubic segments per stroke, width range in percent of the height,
        whether the background colour is optimized too, ``fill``: closed paths filled with their colour
        (blobs that start as small circles of exactly ``segments`` cubics) instead of open strokes, and
        ``palette`` (a ``--palette`` string): every stroke (and the paper) is one opaque colour of it, chosen by
        optimized logits, instead of free RGBA; over the first ``palette_ramp`` of the run the colours blend
        from the logits' softmax mixture of the palette to the chosen colour."""
        if strokes < 1 or segments < 1:
            raise PixgenError(f"the vector drawer needs strokes >= 1 and segments >= 1, got {strokes} and "
                              f"{segments}; try --drawer vector:256")
        super().__init__(width, height, strokes=strokes, segments=segments, min_width=min_width,
                         max_width=max_width, allow_paper_color=allow_paper_color, fill=fill, palette=palette,
                         palette_ramp=palette_ramp)
        if not 0.0 <= palette_ramp < 1.0:
            raise PixgenError(f"palette_ramp {palette_ramp} is out of range; give a fraction of the run in [0, 1)")
        self.strokes, self.segments, self.fill = strokes, segments, fill
        self.palette_ramp, self.progress = palette_ramp, 1.0
        self.register_buffer("palette_rgb", None if palette is None else parse_palette(palette), persistent=False)
        self._install("paper", torch.ones(3))
        if "paper_logits" in self.trainable_names():
            self._install("paper_logits", choice_logits(self.paper.view(1, 3), self.palette_rgb)[0])

    def init_from_noise(self, kind: str, generator: torch.Generator) -> None:
        """Random strokes with random RGBA colours over white (pixray/CLIPDraw), whatever the noise ``kind``."""
        if kind not in NOISE_KINDS:
            raise PixgenError(f"unknown init noise {kind!r}; choose one of: {', '.join(NOISE_KINDS)}")
        self._random_strokes(generator, torch.ones(3))
        if self.palette_rgb is not None:
            self._install("color_logits", torch.randn(self.strokes, len(self.palette_rgb), generator=generator))
            return
        self._install("colors", torch.rand(self.strokes, 4, generator=generator))

    def init_from_image(self, img: torch.Tensor) -> None:
        """Random strokes (drawn from a generator seeded by the image content), opaque, each in the image's
        colour under it, over the image's mean colour."""
        img = img.detach().float().cpu()
        self._random_strokes(image_generator(img), img.mean(dim=(0, 2, 3)))
        rgb = sample_colours(img, self.path_centres().clamp(0, 1))  # (P, 3)
        if self.palette_rgb is not None:
            if "paper_logits" in self.trainable_names():
                self._install("paper_logits", choice_logits(self.paper.detach().view(1, 3), self.palette_rgb)[0])
            self._install("color_logits", choice_logits(rgb, self.palette_rgb))
            return
        self._install("colors", torch.cat([rgb, torch.ones(self.strokes, 1)], dim=1))

    def _random_strokes(self, generator: torch.Generator, paper: torch.Tensor) -> None:
        """pixray's clipdraw init: a start point anywhere, each control point within ±0.05 of the last
        (with ``fill``: circles of radius 3-10 % of the height around random centres)."""
        if self.fill:
            self._random_blobs(generator, paper)
            return
        n_seg = torch.randint(1, self.segments + 1, (self.strokes,), generator=generator)
        start = torch.rand(self.strokes, 2, generator=generator)
        points = random_walk_points(n_seg, start, torch.tensor([0.1, 0.1]), generator)
        widths = torch.full((self.strokes,), (self._options["min_width"] + self._options["max_width"]) / 400)
        self._set_strokes(points, n_seg, widths.clamp(self.min_width, self.max_width), paper)

    def _random_blobs(self, generator: torch.Generator, paper: torch.Tensor) -> None:
        """Closed paths of ``segments`` cubics whose 3n + 1 control points lie evenly on a circle."""
        n = 3 * self.segments
        centre = 0.1 + 0.8 * torch.rand(self.strokes, 1, 2, generator=generator)  # (P, 1, 2)
        radius = 0.03 + 0.07 * torch.rand(self.strokes, 1, 1, generator=generator)
        angle = torch.arange(n + 1) * (2 * torch.pi / n)  # (n + 1,) the last point closes the loop
        ring = torch.stack([torch.cos(angle) * self.height / self.width, torch.sin(angle)], dim=1)  # (n + 1, 2)
        points = (centre + radius * ring).reshape(-1, 2)  # (P * (n + 1), 2)
        n_seg = torch.full((self.strokes,), self.segments)
        self._set_strokes(points, n_seg, torch.full((self.strokes,), self.min_width), paper)

    def paths(self) -> Paths:
        """The strokes in pixel coordinates; with ``fill`` every path is closed and filled with its colour."""
        paths = super().paths()
        if self.fill:
            paths.fill_rgba = paths.stroke_rgba
        return paths

    def trainable_names(self) -> set[str]:
        """Points, widths and colours (and the paper colour with ``allow_paper_color``); with ``palette`` the
        colours are the logits of palette choices."""
        names = super().trainable_names()
        if self.palette_rgb is None:
            return names | {"colors"}
        return names - {"paper"} | {"color_logits"} | ({"paper_logits"} if self.allow_paper_color else set())

    def stroke_rgba(self) -> torch.Tensor:
        """The optimized RGBA colours (P, 4), or with ``palette`` the chosen palette colours, opaque."""
        if self.palette_rgb is None:
            return self.colors
        rgb = self._choose(self.color_logits)
        return torch.cat([rgb, torch.ones_like(rgb[:, :1])], dim=1)

    def background(self) -> torch.Tensor:
        """The paper colour, or with ``palette`` and ``allow_paper_color`` the chosen palette colour."""
        if self.palette_rgb is None or not self.allow_paper_color:
            return self.paper
        return self._choose(self.paper_logits)

    def _choose(self, logits: torch.Tensor) -> torch.Tensor:
        """The palette colours (..., 3) that ``logits`` (..., K) choose, at this point of the ``palette_ramp``."""
        return pick_colours(logits, self.palette_rgb, ramp_share(self.progress, self.palette_ramp))

    def set_progress(self, fraction: float) -> None:
        """The run's progress, for the ``palette_ramp`` schedule."""
        self.progress = fraction

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp widths, points and paper (see ``StrokeDrawer``) and free colours to [0, 1]."""
        super().project_()
        if self.palette_rgb is None:
            self.colors.clamp_(0, 1)
