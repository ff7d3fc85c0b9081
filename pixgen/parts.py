"""Building a run's parts from its plan: device, perceptors, drawer, initial image, filters, losses."""

from __future__ import annotations

import logging
from typing import Any

import torch

from pixgen.config import RunConfig
from pixgen.context import SetupContext
from pixgen.errors import PixgenError
from pixgen.noise import NOISE_KINDS
from pixgen.plugins import Chosen, of_kind

log = logging.getLogger("pixgen")


def pick_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
        log.info("Using device: %s", name)
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PixgenError(f"device {name} was asked for but CUDA is not available; use --device cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise PixgenError(f"device {name} was asked for but MPS is not available; use --device cpu or auto")
    return device


def load_perceptors(specs: tuple[Any, ...], device: torch.device, dtype: torch.dtype | None = None,
                    compile: bool = False) -> dict[str, tuple[Any, float]]:
    """Load every parsed ``--clip`` spec (``ClipSpec``), image towers cast once to a reduced ``dtype`` if given
    and run through ``torch.compile`` with ``compile``: key -> (perceptor, weight)."""
    from pixgen.perceptors import load_perceptor

    return {spec.key: (load_perceptor(spec, device, dtype, compile), spec.weight) for spec in specs}


def build_drawer(config: RunConfig, chosen: Chosen, device: torch.device) -> Any:
    """Construct the chosen drawer with its options, and say if it trimmed the size."""
    width, height = config.dimensions()
    drawer = chosen.build(width, height)
    name = chosen.spec.name
    if (drawer.width, drawer.height) != (width, height):
        reason = f"a multiple of {drawer.factor}" if getattr(drawer, "factor", None) else "its grid"
        log.warning("Size %dx%d trimmed to %dx%d (the %s drawer needs %s)", width, height, drawer.width,
                    drawer.height, name, reason)
    kinds = (*NOISE_KINDS, *chosen.cls.extra_init_noise)
    if config.init_noise not in kinds:
        raise PixgenError(f"unknown init noise {config.init_noise!r} for the {name} drawer; "
                          f"choose one of: {', '.join(kinds)}")
    return drawer.to(device)


def build_filters(plugins: list[Chosen], device: torch.device) -> dict[str, tuple[Any, float]]:
    """Every ``--filters`` entry, in order: name -> (filter, weight of its loss)."""
    return {p.spec.name: (p.build().to(device), p.weight()) for p in of_kind(plugins, "filter")}


def build_extra_losses(plugins: list[Chosen]) -> dict[str, tuple[Any, float]]:
    """Every ``--loss NAME[:ARG...][@WEIGHT]``, constructed (not yet set up): name -> (loss, weight)."""
    return {p.spec.name: (p.build(), p.weight(p.cls.default_weight)) for p in of_kind(plugins, "loss")}


def initialize(drawer: Any, config: RunConfig, generator: torch.Generator) -> None:
    """Start the drawer from ``init_image`` if given, else from ``init_noise`` (the drawer's own kinds too)."""
    if config.init_image:
        from pixgen.io import load_image

        drawer.init_from_image(load_image(config.init_image, (drawer.width, drawer.height)))
    else:
        drawer.init_from_noise(config.init_noise, generator)


def build_losses(plan: Any, perceptors: dict[str, tuple[Any, float]], context: SetupContext,
                 extra: dict[str, tuple[Any, float]]) -> dict[str, tuple]:
    """The CLIP prompt loss (text prompts and target images), one loss per image prompt, the init-image terms
    and the ``extra`` losses: name -> (loss, weight), moved to the device and set up."""
    from pixgen.losses.clip import ImagePromptLoss
    from pixgen.losses.init import InitImageLoss, InitLatentLoss
    from pixgen.losses.story import prompt_loss

    config, losses = plan.config, {}
    if plan.prompts or plan.target_images:
        losses["clip"] = (prompt_loss(plan, perceptors), 1.0)  # a story's parts in turn (losses/story.py)
    for i, image in enumerate(plan.image_prompts):
        losses[f"image_prompt:{i}"] = (ImagePromptLoss(image=image, perceptors=perceptors), 1.0)
    if config.init_weight:
        losses["init"] = (InitImageLoss(path=config.init_image), config.init_weight)
    if config.init_latent_weight:
        losses["init_latent"] = (InitLatentLoss(), config.init_latent_weight)
    losses.update(extra)
    if not losses:
        raise PixgenError("nothing to optimise: give a --prompt, an --image-prompt or --target-image, or a --loss")
    for loss, _ in losses.values():
        loss.to(context.device)
        loss.setup(context)
    return losses


def build_optimizer(name: str, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The torch optimizer ``name`` (``--optimizer``) over the drawer's own parameter groups."""
    from pixgen.config import OPTIMIZERS

    return getattr(torch.optim, OPTIMIZERS[name.lower()])(groups)
