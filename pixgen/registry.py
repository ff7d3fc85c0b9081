"""Plug-in registries with lazy ``"module:Class"`` entries, and the ``NAME[:ARG...][@WEIGHT]`` spec grammar."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any

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
    """Name -> plug-in (a class, or any object such as a model entry), imported only when first asked for, so
    a missing optional dependency is reported when (and only when) that plug-in is chosen.

    Entries come from ``register()`` and from the installed packages' entry points in ``group`` (how wings and
    third-party packages add plug-ins: ``[options.entry_points] pixgen.losses = name = package.module:Class``).
    An entry point is read as data (its ``module:attr`` string); nothing is imported until ``get``.
    """

    kind: str
    entries: dict[str, str | object] = field(default_factory=dict)
    group: str | None = None
    _installed: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def register(self, name: str, target: str | object) -> None:
        """Add a plug-in: the object itself, or a lazy ``"package.module:attr"`` string."""
        self.entries[name] = target

    def targets(self) -> dict[str, str | object]:
        """Every entry: the installed entry points, then the registered ones (which win on a clash)."""
        if self._installed is None:  # read the installed packages' metadata once per registry
            from importlib.metadata import entry_points

            group = entry_points(group=self.group) if self.group else ()
            self._installed = {ep.name: ep.value for ep in group}
        return {**self._installed, **self.entries}

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self.targets())

    def __contains__(self, name: object) -> bool:
        return name in self.targets()

    def get(self, name: str) -> Any:
        """The plug-in for ``name``; unknown names raise an error listing the valid choices."""
        targets = self.targets()
        if name not in targets:
            raise PixgenError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(targets))}")
        target = targets[name]
        return load_target(target, f"the {self.kind} {name!r}") if isinstance(target, str) else target


def load_target(target: str, what: str) -> Any:
    """Import ``"package.module:attr"``; a missing package becomes one line naming ``what`` needs it."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PixgenError(f"{what} needs a package that is not installed ({exc}); install it with pip and "
                          "try again") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PixgenError(f"{what} points at {target}, which does not exist; reinstall the package that "
                          "provides it") from None


def _builtin_drawers() -> Registry:
    reg = Registry("drawer", group="pixgen.drawers")
    reg.register("pixel", "pixgen.drawers.pixel:PixelDrawer")
    reg.register("vqgan", "pixgen.drawers.vqgan:VqganDrawer")
    reg.register("vector", "pixgen.drawers.vector:VectorDrawer")
    reg.register("line_sketch", "pixgen.drawers.line_sketch:LineSketchDrawer")
    return reg


def _builtin_losses() -> Registry:
    reg = Registry("loss", group="pixgen.losses")
    reg.register("palette", "pixgen.losses.palette:PaletteLoss")
    reg.register("smoothness", "pixgen.losses.smoothness:SmoothnessLoss")
    reg.register("saturation", "pixgen.losses.saturation:SaturationLoss")
    reg.register("symmetry", "pixgen.losses.symmetry:SymmetryLoss")
    reg.register("edge", "pixgen.losses.edge:EdgeLoss")
    reg.register("style", "pixgen.losses.style:StyleLoss")
    return reg


def _builtin_filters() -> Registry:
    reg = Registry("filter", group="pixgen.filters")
    reg.register("lookup", "pixgen.filters.lookup:LookupFilter")
    reg.register("tiler", "pixgen.filters.tiler:TilerFilter")
    reg.register("wallpaper", "pixgen.filters.wallpaper:WallpaperFilter")
    return reg


DRAWERS = _builtin_drawers()
LOSSES = _builtin_losses()
FILTERS = _builtin_filters()
#: CLIPs a package ships under a short name (``--clip shapes``): a callable returning ``ClipFiles``
CLIP_MODELS = Registry("CLIP model", group="pixgen.clip_models")
#: image towers a package adds to timm (``vision_cfg.timm_model_name``): a callable that registers it
TIMM_TOWERS = Registry("timm image tower", group="pixgen.timm_towers")
#: named bundles of settings (``--preset NAME``): ``pixgen.presets.Preset`` objects
PRESETS = Registry("preset", group="pixgen.presets")
#: named models of the model store (``pixgen models ...``): ``pixgen.model_table.ModelEntry`` objects
MODELS = Registry("model", group="pixgen.models")
#: code priors for ``--init-noise prior`` (``--code-prior NAME[:FILE]``): ``load(file | None, codebook)``
CODE_PRIORS = Registry("code prior", group="pixgen.code_priors")
