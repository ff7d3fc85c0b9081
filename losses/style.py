"""``--loss style``: a style loss on the run's own CLIP, in the place of pixray's ``Losses/StyleLoss.py``.

pixray's style loss is STROTSS (relaxed earth mover's distance and moments of VGG16 hypercolumns), and it
downloads ImageNet VGG16 weights (``torchvision vgg16(pretrained=True)``). This one needs no download: it matches
Gram matrices (Gatys et al. 2016), the channel correlations that describe texture and colour regardless of
layout, of the image tower of each CLIP of the run (open_clip's ``forward_intermediates``, each block; a CLIP
whose tower gives no layers, such as the shapes CNN, is left out) plus the pixels themselves (as pixray's
hypercolumns start with the image), between the render and ``style_file``.

Each layer scores ``|G_render - G_style|² / |G_style|²`` (so every layer counts alike, whatever its scale); the
loss is the mean over layers, averaged over the CLIPs by their weights. Both images are seen whole, resized to
each CLIP's input size. Options, with pixray's names: ``style_file`` (required), ``styleloss_skip`` (steps
before it starts; 0 here, pixray's 100 suits its 250+ step runs) and ``styleloss_every`` (1: every step).
pixray's ``styleloss_content_weight`` and ``styleloss_ospace`` belong to STROTSS and are not offered.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixgen.errors import PixgenError
from pixgen.io import open_image
from pixgen.losses.base import Loss, LossInput

log = logging.getLogger("pixgen")


def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) features -> (N, C, C) Gram matrices, averaged over the H·W positions."""
    flat = features.flatten(2).float()
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def tower_grams(perceptor: Any, images: torch.Tensor) -> list[torch.Tensor]:
    """Gram matrices of (N, 3, H, W) ``images`` in [0, 1]: the normalised pixels, then every block of the CLIP's
    image tower, the images resized to its input size."""
    size = perceptor.input_size
    x = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    x = (x - perceptor.mean) / perceptor.std
    visual = perceptor.model.visual
    dtype = next(visual.parameters()).dtype
    out = visual.forward_intermediates(x.to(dtype), intermediates_only=True, output_fmt="NCHW")
    return [gram(x), *(gram(f) for f in out["image_intermediates"])]


def has_layers(perceptor: Any) -> bool:
    """Whether the CLIP's image tower gives its blocks' features (open_clip ViTs and ResNets, timm towers whose
    trunk supports ``forward_intermediates``)."""
    visual = perceptor.model.visual
    trunk = getattr(visual, "trunk", visual)
    return hasattr(visual, "forward_intermediates") and hasattr(trunk, "forward_intermediates")


def style_distance(grams: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of ``|G - T|² / |T|²`` (``grams`` batched (N, C, C), ``targets`` (1, C, C))."""
    terms = [((g - t) ** 2).sum((1, 2)).mean() / (t**2).sum().clamp_min(1e-12) for g, t in zip(grams, targets,
                                                                                                strict=True)]
    return torch.stack(terms).mean()


def read_style(path: str, longest: int = 512) -> torch.Tensor:
    """The style image as (1, 3, H, W) in [0, 1], its longer side at most ``longest`` (CLIP sees 224 or so)."""
    image = open_image(path, "style_file")
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    image = image.convert("RGB")
    image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


class StyleLoss(Loss):
    """Gram-matrix distance of the render to ``style_file`` in the layers of the run's CLIPs (no download)."""

    name: ClassVar[str] = "style"
    spec_args: ClassVar[tuple[str, ...]] = ("style_file",)

    def __init__(self, *, style_file: str | None = None, styleloss_skip: int = 0, styleloss_every: int = 1) -> None:
        """Options: ``style_file`` (an image, required), ``styleloss_skip`` (steps) and ``styleloss_every``."""
        super().__init__()
        if not style_file:
            raise PixgenError("the style loss needs a style image: give --style-file IMAGE "
                              "(or --loss style:IMAGE)")
        if styleloss_skip < 0:
            raise PixgenError(f"styleloss_skip must be 0 or more steps, got {styleloss_skip}")
        if styleloss_every < 1:
            raise PixgenError(f"styleloss_every must be at least 1, got {styleloss_every}")
        self.register_buffer("style", read_style(style_file), persistent=False)  # (1, 3, H, W)
        self.skip, self.every = styleloss_skip, styleloss_every
        self._towers: list[tuple[Any, float, list[torch.Tensor]]] = []  # a plain list: CLIPs stay unregistered

    def setup(self, context: Any) -> None:
        """Compute the style image's Gram matrices in every CLIP of the run whose layers it can read."""
        usable = [(p, w) for p, w in context.perceptors.values() if has_layers(p)]
        for perceptor in {p for p, _ in context.perceptors.values()} - {p for p, _ in usable}:
            log.info("style loss: CLIP %s does not give its layers' features; the style loss leaves it out",
                     perceptor.name)
        if not usable:
            raise PixgenError("the style loss needs a CLIP whose image tower gives its layers' features (an open_clip "
                              "ViT or ResNet); add one with --clip")
        self._towers = []
        for perceptor, weight in usable:
            with torch.no_grad():
                targets = tower_grams(perceptor, self.style.to(context.device))
            self._towers.append((perceptor, float(weight), targets))

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Weighted mean over the CLIPs of the render's ``style_distance`` (0 while skipped)."""
        if inp.step < self.skip or inp.step % self.every:
            return inp.render.float().sum() * 0
        total = sum(weight for _, weight, _ in self._towers) or 1.0
        terms = [weight * style_distance(tower_grams(perceptor, inp.render.float()), targets)
                 for perceptor, weight, targets in self._towers]
        return torch.stack(terms).sum() / total
