"""The plug-ins a run uses (its drawer, filters and extra losses), each with its options checked.

Options come from two places: the ``:`` arguments of the plug-in's spec (``--filters wallpaper:shift``) and the
run's named options (``--wallpaper-type shift``, a YAML key, an API keyword). A named option goes to every chosen
plug-in that declares it, so one ``--palette`` serves both the ``lookup`` filter and the ``palette`` loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixgen.config import RunConfig
from pixgen.errors import PixgenError
from pixgen.options import plugin_options, resolve_options, route_options
from pixgen.registry import DRAWERS, FILTERS, LOSSES, Spec


@dataclass(frozen=True)
class Chosen:
    """One plug-in of a run: its kind (drawer, filter, loss), parsed spec, class and checked options."""

    kind: str
    spec: Spec
    cls: type
    options: dict[str, Any]

    @property
    def what(self) -> str:
        """``filter 'lookup'``: how messages name it."""
        return f"{self.kind} {self.spec.name!r}"

    def build(self, *args: Any) -> Any:
        """Construct the plug-in with its options."""
        return self.cls(*args, **self.options)

    def weight(self, default: float = 1.0) -> float:
        """The spec's ``@WEIGHT``, or ``default``."""
        return default if self.spec.weight is None else self.spec.weight


def chosen_plugins(config: RunConfig) -> list[Chosen]:
    """The drawer, then the filters in order, then the extra losses, with checked options; loads no model."""
    picks = [("drawer", DRAWERS, config.drawer)]
    picks += [("filter", FILTERS, text) for text in config.filters]
    picks += [("loss", LOSSES, text) for text in config.loss]
    parsed: list[tuple[str, Spec, type]] = []
    for kind, registry, text in picks:
        spec = Spec.parse(text)
        if any((kind, spec.name) == (k, s.name) for k, s, _ in parsed):
            raise PixgenError(f"{kind} {spec.name!r} is given twice; give each {kind} once")
        parsed.append((kind, spec, registry.get(spec.name)))
    owners = [(f"{kind} {spec.name!r}", cls) for kind, spec, cls in parsed]
    try:
        routed = route_options(owners, config.plugin_options)
    except PixgenError as exc:
        raise PixgenError(f"{exc}{_unchosen_hint(config.plugin_options, owners)}") from None
    return [Chosen(kind, spec, cls, resolve_options(cls, what, spec.args, options))
            for (kind, spec, cls), (what, _), options in zip(parsed, owners, routed, strict=True)]


def _unchosen_hint(options: dict[str, Any], owners: list[tuple[str, type]]) -> str:
    """``; palette is an option of filter 'lookup', loss 'palette': choose one of them`` for a named option
    that only plug-ins the run did not choose declare."""
    chosen = {name for _, cls in owners for name in plugin_options(cls)}
    for key in (k.replace("-", "_") for k in options):
        if key in chosen:
            continue
        offers = [f"{registry.kind} {name!r}" for registry in (DRAWERS, FILTERS, LOSSES) for name in registry.names()
                  if key in _options_or_none(registry, name)]
        if offers:
            return f"; {key} is an option of {', '.join(offers)}: choose one of them"
    return ""


def _options_or_none(registry: Any, name: str) -> dict[str, Any]:
    try:
        return plugin_options(registry.get(name))
    except PixgenError:  # a plug-in whose optional dependency is missing offers nothing here
        return {}


def of_kind(plugins: list[Chosen], kind: str) -> list[Chosen]:
    """The chosen plug-ins of one kind, in order."""
    return [plugin for plugin in plugins if plugin.kind == kind]
