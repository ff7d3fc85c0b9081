"""Persistent generation chains: the VQGAN drawer's own optimisation, run inside CLIP training.

A generation run descends the CLIP loss from a noise start; a CLIP trained only on true scenes rates the
off-scene images that descent finds (blobs, stray colours) above real scenes of the caption. ``DrawerChains``
keeps ``n`` such runs alive across training steps, as persistent contrastive divergence does for
energy-based models: every training step advances each chain a few steps of the generation loss (the spherical
distance to its caption through training views, pixray's smoothness loss, Adam on the latent as the engine's
optimizer), and the chain images become negatives for their captions. Chains restart from fresh noise after a
random lifetime of up to a whole run, so the negatives cover every stage of generation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from pixgen.drawers.vqgan import pyramid_latent
from pixgen.losses.functional import spherical_dist
from pixgen.losses.smoothness import gradient_magnitude
from pixgen.noise import fractal_noise
from pixgen.shapes.sample import sample_spec
from pixgen.shapes.train.clip_training import normalise
from pixgen.shapes.world import Spec, spec_caption


@dataclass
class ChainSettings:
    """Generation settings of the chains: the shapes preset's lr 0.5, smoothness 10 and 150 iterations; one latent
    grid by default (the preset has ``latent_levels`` 4: ``levels=4`` matches it)."""

    n: int = 16
    steps: int = 3  # generation steps per training step
    lr: float = 0.5
    smoothness: float = 10.0
    lifetime: int = 150  # generation steps before a chain restarts, at most
    levels: int = 1  # latent grids (the drawer's latent_levels: the latent plus coarser grids summed into it)
    pair_share: float | None = None  # share of two-shape captions (None: the caption sampler's own, about 0.45)
    start: str = "noise"  # "noise": encoded fractal noise (the engine's pixels init); "prior": the code prior's draw
    warmup: int = 0  # generation steps over which the lr rises linearly (the preset's lr_warmup, in steps)
    denoise: float = 0.0  # weight of the shapes denoiser's loss relative to the CLIP distance (0: off)
    denoise_after: int = 45  # generation steps before the denoiser's loss applies (the preset's 30 % of 150)


class DrawerChains:
    """``n`` generation runs of the shapes VQGAN drawer, advanced against the current CLIP."""

    def __init__(self, vqgan, settings: ChainSettings, rng: random.Random, size: int = 64) -> None:
        if settings.start not in ("noise", "prior"):
            raise ValueError(f"chain start {settings.start!r} must be 'noise' or 'prior'")
        self.vqgan, self.cfg, self.rng, self.size = vqgan, settings, rng, size
        self.prior = self.denoiser = None
        if settings.start == "prior":
            from pixgen.shapes.prior import prior_for

            self.prior = prior_for("shapes", vqgan.codebook)
        if settings.denoise > 0:
            from pixgen.shapes.denoiser import load_denoiser
            from pixgen.shapes.models import denoiser_path

            self.denoiser = load_denoiser(denoiser_path())
        d, h = vqgan.codebook.shape[1], size // vqgan.factor
        #: the latent grid, then the coarser ones (half, quarter, ... size), as the drawer's ``latent_levels``
        self.grids = [torch.zeros(settings.n, d, -(-h // 2**k), -(-h // 2**k)) for k in range(settings.levels)]
        self.m, self.v = [torch.zeros_like(g) for g in self.grids], [torch.zeros_like(g) for g in self.grids]
        self.t = torch.zeros(settings.n)
        self.life = torch.zeros(settings.n)
        self.specs: list[Spec] = [self._spec() for _ in range(settings.n)]
        self._restart(torch.ones(settings.n, dtype=torch.bool))

    def _spec(self) -> Spec:
        """A random caption spec; with ``pair_share``, a two-shape one with that probability."""
        if self.cfg.pair_share is None:
            return sample_spec(self.rng)
        pair = self.rng.random() < self.cfg.pair_share
        while True:
            spec = sample_spec(self.rng)
            if (spec.relation is not None) == pair:
                return spec

    @property
    def captions(self) -> list[str]:
        """Each chain's caption."""
        return [spec_caption(s) for s in self.specs]

    @torch.no_grad()
    def _restart(self, which: torch.Tensor) -> None:
        """New captions and fresh starts: encoded fractal noise (the engine's ``pixels`` init) or, with
        ``start="prior"``, the code prior's draw for the new caption (the shapes preset's start)."""
        gen = torch.Generator().manual_seed(self.rng.randrange(2**31))
        index = which.nonzero().flatten().tolist()
        for i in index:
            self.specs[i] = self._spec()
            self.life[i] = self.rng.randint(self.cfg.steps, self.cfg.lifetime)
            for grid in self.grids[1:]:
                grid[i] = 0
            if self.prior is None:
                self.grids[0][i] = self.vqgan.encode(fractal_noise(self.size, self.size, gen) * 2 - 1)[0]
        if self.prior is not None and index:
            from pixgen.shapes.denoiser import caption_tokens

            codes = self.prior.sample_codes(caption_tokens([spec_caption(self.specs[i]) for i in index]), gen)
            self.grids[0][index] = self.vqgan.tokens_to_latent(codes)
        for m, v in zip(self.m, self.v, strict=True):
            m[which], v[which] = 0, 0
        self.t[which] = 0
        self._project()

    def latent(self) -> torch.Tensor:
        """The latent grid plus the coarser grids, each upsampled (nearest) to its size."""
        return pyramid_latent(self.grids)

    def images(self) -> torch.Tensor:
        """The chains' current renders (n, 3, size, size) in [0, 1] (differentiable in the grids)."""
        return self.vqgan.decode_image(self.vqgan.quantize(self.latent()))

    def advance(self, model, tokenizer, views) -> torch.Tensor:
        """Restart finished chains, run ``steps`` generation steps on the others with ``model`` in eval mode,
        and return the renders (n, 3, size, size), detached."""
        self._restart(self.t >= self.life)
        training = model.training
        model.eval()
        with torch.no_grad():
            txt = model.encode_text(tokenizer(self.captions))
        for _ in range(self.cfg.steps):
            self.grids = [g.detach().requires_grad_(True) for g in self.grids]
            images = self.images()
            cut = views(images)
            emb = model.encode_image(normalise(cut))
            loss = spherical_dist(emb, txt).sum() + self.cfg.smoothness * _smoothness(cut) + self._denoise(images)
            grads = torch.autograd.grad(loss, self.grids)
            self.grids = [g.detach() for g in self.grids]
            self._adam(grads)
        model.train(training)
        with torch.no_grad():
            return self.images()

    def _denoise(self, images: torch.Tensor) -> torch.Tensor:
        """The denoiser's loss (``denoise`` × the mean squared distance of each render to its fixed denoised
        self), summed over the chains that are past ``denoise_after`` steps; 0 without a denoiser."""
        if self.denoiser is None:
            return torch.zeros(())
        with torch.no_grad():
            clean = self.denoiser(images, None)
        per_chain = (images - clean).pow(2).mean(dim=(1, 2, 3))
        return self.cfg.denoise * (per_chain * (self.t >= self.cfg.denoise_after)).sum()

    @torch.no_grad()
    def _adam(self, grads: tuple[torch.Tensor, ...]) -> None:
        """One Adam step per chain and grid (torch's defaults: betas 0.9, 0.999, eps 1e-8; the lr rising over
        ``warmup`` steps), then the clamp."""
        self.t += 1
        t = self.t.view(-1, 1, 1, 1)
        lr = self.cfg.lr * (t / self.cfg.warmup).clamp(max=1.0) if self.cfg.warmup > 0 else self.cfg.lr
        for grid, grad, m, v in zip(self.grids, grads, self.m, self.v, strict=True):
            m.mul_(0.9).add_(grad, alpha=0.1)
            v.mul_(0.999).addcmul_(grad, grad, value=0.001)
            grid -= lr * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)).sqrt() + 1e-8)
        self._project()

    @torch.no_grad()
    def _project(self) -> None:
        """Clamp the summed latent to the codebook's range (the finest grid takes the correction), as the drawer."""
        latent = self.latent()
        self.grids[0] = self.vqgan.clamp_to_codebook(latent) - (latent - self.grids[0])


def chain_batch(chains: DrawerChains, model, tokenizer, views, rng: random.Random, size: int, repair: int = 0):
    """Advance the chains; returns ``(scenes, specs, images, negatives, dreams)``: a true scene of every chain's
    caption (rendered at ``size``, positives beside the chain images; with ``repair`` K, the nearest of K), the
    chain images the oracle does not pass (negatives for their captions) and all chain images (64 px)."""
    from pixgen.shapes.oracle import check
    from pixgen.shapes.render import render_scenes
    from pixgen.shapes.sample import sample_scene

    dreams = chains.advance(model, tokenizer, views)
    failed = torch.tensor([not check(d, s).passed for d, s in zip(dreams, chains.specs, strict=True)])
    if repair > 0:
        scenes = nearest_scenes(dreams, chains.specs, rng, repair)
    else:
        scenes = [sample_scene(s, rng) for s in chains.specs]
    return scenes, list(chains.specs), render_scenes(scenes, size), dreams[failed], dreams


def nearest_scenes(images: torch.Tensor, specs: list[Spec], rng: random.Random, k: int) -> list:
    """For each image (N, 3, s, s) in [0, 1], the closest (squared pixel distance) of ``k`` random scenes its
    caption describes: the repair target of a generation image, the true scene it is nearest to becoming."""
    from pixgen.shapes.render import render_scenes
    from pixgen.shapes.sample import sample_scene

    out = []
    for image, spec in zip(images, specs, strict=True):
        candidates = [sample_scene(spec, rng) for _ in range(k)]
        dist = (render_scenes(candidates, image.shape[-1]) - image).pow(2).flatten(1).sum(1)
        out.append(candidates[int(dist.argmin())])
    return out


def _smoothness(images: torch.Tensor) -> torch.Tensor:
    """Per-image mean gradient magnitude, summed over the batch (``losses.smoothness`` per image)."""
    return gradient_magnitude(images).mean(dim=(1, 2, 3)).sum()
