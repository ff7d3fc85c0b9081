"""Plug-in registries with lazy ``"module:Class"`` entries, and the ``NAME[:ARG...][@WEIGHT]`` spec grammar."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

from pixgen.errors import PixgenError


@dataclass(frozen=True)
class Spec:
    """A parsed plug-in spec such as ``vqgan:imagenet_f16_16384`` or ``ViT-B-32:openai@0.5``."""

    name: str
    args: tuple[str, ...] = ()
    weight: float | None = None

    @classmethod
    def parse(cls, text: str) -> Spec:
        """Parse ``NAME[:ARG...][@WEIGHT]``; ``@WEIGHT`` is split from the right only if it is a number."""
        text = text.strip()
        weight = None
        head, sep, tail = text.rpartition("@")
        if sep and _is_number(tail):
            text, weight = head, float(tail)
            if not math.isfinite(weight):
                raise PixgenError(f"spec {text!r}: weight must be a finite number, got {tail!r}")
        name, *args = text.split(":")
        if not name:
            raise PixgenError(f"empty plug-in name in spec {text!r}; write NAME[:ARG...][@WEIGHT]")
        return cls(name=name, args=tuple(args), weight=weight)

    def __str__(self) -> str:
        text = ":".join((self.name, *self.args))
        return text if self.weight is None else f"{text}@{self.weight:g}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Registry:
    """Name -> plug-in class, imported only when first asked for, so a missing optional dependency is
    reported when (and only when) that plug-in is chosen."""

    kind: str
    entries: dict[str, str | type] = field(default_factory=dict)

    def register(self, name: str, target: str | type) -> None:
        """Add a plug-in: a class, or a lazy ``"package.module:ClassName"`` string."""
        self.entries[name] = target

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self.entries)

    def get(self, name: str) -> type:
        """The plug-in class for ``name``; unknown names raise an error listing the valid choices."""
        if name not in self.entries:
            raise PixgenError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        target = self.entries[name]
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise PixgenError(
                    f"the {self.kind} {name!r} needs a package that is not installed ({exc}); "
                    f"install it with pip and try again"
                ) from exc
            target = getattr(module, attr)
        return target


def _builtin_drawers() -> Registry:
    reg = Registry("drawer")
    reg.register("pixel", "pixgen.drawers.pixel:PixelDrawer")
    reg.register("vqgan", "pixgen.drawers.vqgan:VqganDrawer")
    reg.register("vector", "pixgen.drawers.vector:VectorDrawer")
    reg.register("line_sketch", "pixgen.drawers.line_sketch:LineSketchDrawer")
    return reg


def _builtin_losses() -> Registry:
    reg = Registry("loss")
    reg.register("palette", "pixgen.losses.palette:PaletteLoss")
    reg.register("smoothness", "pixgen.losses.smoothness:SmoothnessLoss")
    reg.register("denoise", "pixgen.losses.denoise:DenoiseLoss")
    reg.register("layout", "pixgen.losses.layout:LayoutLoss")
    return reg


def _builtin_filters() -> Registry:
    reg = Registry("filter")
    reg.register("lookup", "pixgen.filters.lookup:LookupFilter")
    reg.register("tiler", "pixgen.filters.tiler:TilerFilter")
    reg.register("wallpaper", "pixgen.filters.wallpaper:WallpaperFilter")
    return reg


DRAWERS = _builtin_drawers()
LOSSES = _builtin_losses()
FILTERS = _builtin_filters()
