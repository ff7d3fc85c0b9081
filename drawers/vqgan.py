"""VQGAN drawer: the parameters are a continuous latent ``z``; each render snaps it to the codebook with a
straight-through estimator and decodes it (pixray / VQGAN+CLIP).

``latent_levels`` N > 1 adds N - 1 coarser grids (half, quarter, ... the latent's size) whose upsampled sum with
``z`` is what gets quantised: a coarse cell's gradient is the sum over its block, so one step can recolour a
whole area (a background) instead of each cell following its own noisy straight-through gradient.

The frozen VQGAN is not a submodule: it comes from ``pixgen.taming_loader.load_vqgan`` (one copy per process
and device), so checkpoints of this drawer hold only ``z`` (and its coarser grids).
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixgen.drawers.base import Drawer, ramp_share
from pixgen.errors import PixgenError
from pixgen.registry import CODE_PRIORS
from pixgen.taming_loader import VqganModel, load_vqgan, read_config

log = logging.getLogger("pixgen")


class _ClampWithGrad(torch.autograd.Function):
    """Clamp whose gradient still flows where it pushes a clamped value back into range."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        ctx.lo, ctx.hi = lo, hi
        ctx.save_for_backward(x)
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * (grad * (x - x.clamp(ctx.lo, ctx.hi)) >= 0), None, None


def clamp_with_grad(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """``x.clamp(lo, hi)`` that lets gradients pull out-of-range values back in (pixray's ``clamp_with_grad``)."""
    return _ClampWithGrad.apply(x, lo, hi)


def vqgan_files(model: str, vqgan_config: str | None, vqgan_checkpoint: str | None) -> tuple[Path, Path]:
    """(config, checkpoint) paths: the local pair if given, else the named model from the store (downloaded
    now if needed; ``ModelUnavailableError`` when it cannot be)."""
    from pixgen.weights import ensure_model, get_entry

    if (vqgan_config is None) != (vqgan_checkpoint is None):
        raise PixgenError("give both --vqgan-config and --vqgan-checkpoint (a taming model.yaml and its .ckpt), "
                          "or neither to use a named --drawer vqgan:MODEL")
    if vqgan_config is not None and vqgan_checkpoint is not None:
        return Path(vqgan_config).expanduser(), Path(vqgan_checkpoint).expanduser()
    if get_entry(model).kind != "vqgan":
        raise PixgenError(f"{model!r} is not a VQGAN model; see `pixgen models list` for the VQGAN models")
    files = ensure_model(model)
    return files["config"], files["checkpoint"]


def load_code_prior(name: str | None, codebook: torch.Tensor) -> Any:
    """The code prior ``name`` names for a VQGAN with code vectors ``codebook`` (K, D): a registered kind
    (``pixgen.registry.CODE_PRIORS``: ``shapes``), ``KIND:FILE``, or a FILE when one kind is registered."""
    kinds = CODE_PRIORS.names()
    if name is None:
        raise PixgenError(f"--init-noise prior needs a code prior: give --code-prior with one of: {', '.join(kinds)}"
                          " (or KIND:FILE, a prior trained for this VQGAN)")
    kind, sep, file = name.partition(":")
    if kind in kinds:
        return CODE_PRIORS.get(kind)(file if sep else None, codebook)
    if not Path(name).expanduser().is_file():
        raise PixgenError(f"code prior {name!r} is neither a known kind ({', '.join(kinds)}) nor a file; "
                          "check --code-prior")
    if len(kinds) != 1:
        raise PixgenError(f"say which kind of code prior {name} is: --code-prior KIND:{name}, KIND one of: "
                          f"{', '.join(kinds)}")
    return CODE_PRIORS.get(kinds[0])(name, codebook)


def pyramid_latent(grids: list[torch.Tensor]) -> torch.Tensor:
    """The finest latent grid ``grids[0]`` plus each coarser ``grids[k]`` (half, quarter, ... its size),
    nearest-upsampled by ``2**k`` and cropped to it: what ``latent_levels`` quantises."""
    z = grids[0]
    for k, grid in enumerate(grids[1:], start=1):
        z = z + grid.repeat_interleave(2**k, -2).repeat_interleave(2**k, -1)[..., : z.shape[-2], : z.shape[-1]]
    return z


class VqganDrawer(Drawer):
    """A taming VQGAN latent, quantised and decoded on every render. Sizes are trimmed to its factor."""

    name = "vqgan"
    spec_args = ("model",)
    default_lr = 0.2
    extra_init_noise = ("tokens", "prior")

    def __init__(self, width: int, height: int, *, model: str = "imagenet_f16_16384",
                 vqgan_config: str | None = None, vqgan_checkpoint: str | None = None,
                 quantize_ramp: float = 0.0, latent_levels: int = 1, code_prior: str | None = None) -> None:
        super().__init__(width, height, model=model, vqgan_config=vqgan_config, vqgan_checkpoint=vqgan_checkpoint,
                         quantize_ramp=quantize_ramp, latent_levels=latent_levels, code_prior=code_prior)
        self.code_prior, self.caption = code_prior, ""
        if not 0.0 <= quantize_ramp < 1.0:
            raise PixgenError(f"quantize_ramp {quantize_ramp} is out of range; give a fraction of the run in [0, 1) "
                              "(0: quantize from the first step)")
        self.quantize_ramp, self.progress = quantize_ramp, 1.0
        self._config_path, self._checkpoint_path = vqgan_files(model, vqgan_config, vqgan_checkpoint)
        self._seen: dict[str, weakref.ref[VqganModel]] = {}
        config = read_config(self._config_path)
        factor = config.factor
        if width < factor or height < factor:
            raise PixgenError(f"size {width}x{height} is smaller than the VQGAN's downsampling factor {factor}; "
                              f"use at least {factor}x{factor}")
        self.width, self.height = width // factor * factor, height // factor * factor
        self.factor = factor  # the engine reports the trimming (``size_note``)
        self.vqgan()  # load (or fetch from the process cache) now: a bad checkpoint fails here
        h, w = self.height // factor, self.width // factor
        if not 1 <= latent_levels <= 1 + max(h, w).bit_length():
            raise PixgenError(f"latent_levels {latent_levels} is out of range; give 1 (one latent grid) up to "
                              f"{1 + max(h, w).bit_length()} for a {h}x{w} latent")
        self.z = nn.Parameter(torch.zeros(1, config.embed_dim, h, w))
        #: coarser grids (half, quarter, ... size), upsampled and added to ``z``: a step moves whole areas
        self.coarse = nn.ParameterList(
            nn.Parameter(torch.zeros(1, config.embed_dim, -(-h // 2**k), -(-w // 2**k)))
            for k in range(1, latent_levels))

    def vqgan(self) -> VqganModel:
        """The frozen model on the device of ``z`` (shared with every other drawer using the same files)."""
        device = self.z.device if hasattr(self, "z") else torch.device("cpu")
        model = self._seen.get(str(device), lambda: None)()
        if model is None:  # first use on this device: ask the process-wide cache (it stats the files)
            model = load_vqgan(self._config_path, self._checkpoint_path, device)
            self._seen[str(device)] = weakref.ref(model)  # no strong reference: the cache owns the model
        return model

    def set_progress(self, fraction: float) -> None:
        """The run's progress, for the ``quantize_ramp`` schedule."""
        self.progress = fraction

    def render(self) -> torch.Tensor:
        """Quantise ``z`` (straight-through; during the ``quantize_ramp`` part of the run only a growing share
        of the way to the codes), decode, map [-1, 1] to [0, 1]: (1, 3, H, W)."""
        model = self.vqgan()
        share = ramp_share(self.progress, self.quantize_ramp)
        out = model.decode(model.quantize(self.latent(), share)).contiguous()  # (1, 3, H, W) in about [-1, 1]
        return clamp_with_grad(out.add(1).div(2), 0.0, 1.0)

    def latent(self) -> torch.Tensor:
        """``z`` plus the coarser grids, each upsampled (nearest) to its size: (1, D, h, w)."""
        return pyramid_latent([self.z, *self.coarse])

    @torch.no_grad()
    def init_from_image(self, img: torch.Tensor) -> None:
        """``z`` = the encoder's latent of ``img`` (1, 3, H, W) in [0, 1] (resized if its size differs)."""
        img = img.to(self.z.device, torch.float32)
        if img.shape[-2:] != (self.height, self.width):
            img = F.interpolate(img, size=(self.height, self.width), mode="bilinear", antialias=True,
                                align_corners=False)
        self._start_at(self.vqgan().encode(img * 2 - 1))
        self.project_()

    @torch.no_grad()
    def init_from_noise(self, kind: str, generator: torch.Generator) -> None:
        """``tokens``: random codebook entries (the VQGAN+CLIP notebooks' start); ``prior``: a code prior's draw
        (``init_from_prior``); other kinds encode a noise image, as pixray does."""
        if kind == "prior":
            self.init_from_prior(generator)
            return
        if kind != "tokens":
            super().init_from_noise(kind, generator)
            return
        model = self.vqgan()
        _, _, h, w = self.z.shape
        tokens = torch.randint(model.codebook.shape[0], (1, h, w), generator=generator)  # (1, h, w)
        self._start_at(model.tokens_to_latent(tokens.to(self.z.device)))

    def setup(self, context: Any) -> None:
        """Remember the caption a code prior draws for (``init_noise`` ``prior``), and say when one is unused."""
        self.caption = context.main_prompt
        if context.start == "prior" and not self.caption:
            log.warning("no positive text prompt: the code prior draws a scene for an empty caption")
        if self.code_prior and context.start != "prior":
            log.warning("code_prior is set but the run starts from %s; the prior is not used (give --init-noise "
                        "prior)", "--init-image" if context.start == "image" else f"--init-noise {context.start}")

    @torch.no_grad()
    def init_from_prior(self, generator: torch.Generator) -> None:
        """``init_noise`` ``prior``: start from a code grid that the ``code_prior`` draws for the run's caption; a
        grid of another size is decoded and encoded at this drawer's size."""
        model = self.vqgan()
        prior = load_code_prior(self.code_prior, model.codebook)
        latent = model.tokens_to_latent(prior.draw(self.caption, generator))  # (1, D, g, g)
        if latent.shape[-2:] != self.z.shape[-2:]:
            self.init_from_image(model.decode_image(latent))
            return
        self._start_at(latent)

    def _start_at(self, latent: torch.Tensor) -> None:
        """``z`` = ``latent`` (1, D, h, w), the coarser grids zero: the pyramid's sum is ``latent``."""
        self.z.copy_(latent)
        for grid in self.coarse:
            grid.zero_()

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp the latent per channel to the codebook's range (the finest grid takes the correction)."""
        latent = self.latent()
        self.z.copy_(self.vqgan().clamp_to_codebook(latent) - (latent - self.z))
