"""The CLIP prompt loss: squared great-circle distance between image embeddings and prompt embeddings (pixray's
``Prompt``), per-prompt weight and stop, summed over prompts and weighted perceptors. Text prompts and target
images (``--target-image``: encoded once from fixed crops of the whole picture) are both prompts here."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from pixgen.losses.base import Loss, LossInput
from pixgen.losses.functional import spherical_dist, stopped

#: a target image's one-off embedding is the mean of these many fixed crops (see ``whole_image_crops``)
TARGET_CROPS = 6


class ClipPromptLoss(Loss):
    """Pulls every cutout's embedding toward each text prompt and target image (away, for negative weights)."""

    name = "clip"

    def __init__(self, *, prompts: list[Any], perceptors: dict[str, tuple[Any, float]],
                 target_images: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.prompts = list(prompts)
        self.images = tuple(target_images)  # pixgen.image_prompts.ImagePrompt
        self.perceptors = perceptors  # key -> (perceptor, weight)
        self.targets: dict[str, torch.Tensor] = {}

    def setup(self, context: Any = None) -> None:
        """Encode the prompt texts and target images once per perceptor."""
        texts = [p.text for p in self.prompts]
        self.targets = {key: self._encode(perc, texts) for key, (perc, _) in self.perceptors.items()}
        device = next(iter(self.targets.values())).device
        every = [*self.prompts, *self.images]
        self.weights = torch.tensor([p.weight for p in every], device=device)  # (P,)
        self.stops = torch.tensor([p.stop for p in every], device=device)  # (P,)

    @torch.no_grad()
    def _encode(self, perceptor: Any, texts: list[str]) -> torch.Tensor:
        """(P, D): the texts' embeddings, then each target image's mean crop embedding (renormalised)."""
        from pixgen.image_prompts import whole_image_crops
        from pixgen.io import load_image

        rows = [perceptor.encode_text(texts)] if texts else []
        for image in self.images:
            picture = load_image(image.path).to(perceptor.mean.device)
            crops = perceptor.encode_image(whole_image_crops(picture, perceptor.input_size))  # (TARGET_CROPS, D)
            rows.append(F.normalize(crops.mean(0, keepdim=True), dim=-1))
        return torch.cat(rows)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Σ_perceptors w_p · Σ_prompts |w| · mean over cutouts of the stopped, signed distance."""
        total = 0.0
        for key, (_, weight) in self.perceptors.items():
            dists = spherical_dist(inp.embeds[key][:, None], self.targets[key][None])  # (N, P)
            total = total + weight * (self.weights.abs() * stopped(dists, self.weights, self.stops).mean(0)).sum()
        return total


class ImagePromptLoss(Loss):
    """``--image-prompt``: each step the picture gets the render's own cutout transforms and is re-encoded;
    cutout i of the render is pulled towards cutout i of the picture (pushed away for a negative weight)."""

    name = "image_prompt"

    def __init__(self, *, image: Any, perceptors: dict[str, tuple[Any, float]]) -> None:
        super().__init__()
        self.image, self.perceptors = image, perceptors  # pixgen.image_prompts.ImagePrompt
        self.picture: torch.Tensor | None = None  # (1, 3, H, W) at the render's size

    def setup(self, context: Any = None) -> None:
        """Read the picture once (fitted to the render's size at the first step)."""
        from pixgen.io import load_image

        self.original = load_image(self.image.path)

    def forward(self, inp: LossInput) -> torch.Tensor:
        """Σ_perceptors w_p · mean over cutouts of the stopped, signed distance to the picture's same cutout."""
        from pixgen.io import fit

        if inp.replay is None:
            raise RuntimeError("image prompts need the step's cutout transforms (LossInput.replay)")
        if self.picture is None or self.picture.shape != inp.render.shape:
            _, _, h, w = inp.render.shape
            self.picture = fit(self.original, (w, h)).to(inp.render.device)
        with torch.no_grad():
            cuts = inp.replay(self.picture)
            targets = {key: perc.encode_image(cuts[perc.input_size]) for key, (perc, _) in self.perceptors.items()}
        weight = torch.tensor([self.image.weight], device=inp.render.device)
        stop = torch.tensor([self.image.stop], device=inp.render.device)
        total = 0.0
        for key, (_, perceptor_weight) in self.perceptors.items():
            dists = spherical_dist(inp.embeds[key], targets[key])[:, None]  # (N, 1): cutout i vs cutout i
            total = total + perceptor_weight * abs(self.image.weight) * stopped(dists, weight, stop).mean()
        return total
