"""Taming-transformers VQGANs from a YAML and a checkpoint, through ``taming.modules`` only.

Never imports ``taming.models``/``taming.main`` or pytorch_lightning, never builds the training loss (which
downloads VGG/LPIPS). The YAML is read with pyyaml; the checkpoint with ``torch.load(weights_only=True)``
(see ``pixgen.checkpoints.load_checkpoint_state``). Models are loaded once per process per (files, device).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixgen.errors import PixgenError

_REQUIRED_DD = ("ch", "out_ch", "ch_mult", "num_res_blocks", "attn_resolutions", "in_channels", "resolution",
                "z_channels")
_VQ_TARGETS = {"VQModel": False, "VQNoDiscModel": False, "GumbelVQ": True}  # class name -> gumbel


@dataclass(frozen=True)
class TamingConfig:
    """What builds a taming VQGAN first stage: ``ddconfig`` (Encoder/Decoder), codebook size and width."""

    ddconfig: dict[str, Any] = field(hash=False)
    n_embed: int
    embed_dim: int
    gumbel: bool = False
    prefix: str = ""  # key prefix inside the checkpoint: "first_stage_model." for taming transformers
    source: str = ""  # where it was read from, for messages

    @property
    def factor(self) -> int:
        """Downsampling factor: image side / latent side."""
        return 2 ** (len(self.ddconfig["ch_mult"]) - 1)

    def to_yaml_dict(self) -> dict[str, Any]:
        """The config in taming's YAML layout (loss replaced by taming's DummyLoss)."""
        params: dict[str, Any] = {"embed_dim": self.embed_dim, "n_embed": self.n_embed,
                                  "ddconfig": dict(self.ddconfig),
                                  "lossconfig": {"target": "taming.modules.losses.DummyLoss"}}
        if self.gumbel:
            params["kl_weight"] = 1.0e-8
            params["temperature_scheduler_config"] = {
                "target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler",
                "params": {"warm_up_steps": 0, "max_decay_steps": 1000001, "lr_start": 0.9, "lr_max": 0.9,
                           "lr_min": 1.0e-6}}
        target = "GumbelVQ" if self.gumbel else "VQModel"
        return {"model": {"base_learning_rate": 4.5e-6, "target": f"taming.models.vqgan.{target}",
                          "params": params}}


def read_config(path: str | Path) -> TamingConfig:
    """Parse a taming ``model.yaml`` (VQModel, GumbelVQ, or a Net2NetTransformer's first stage)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PixgenError(f"cannot read VQGAN config {path} ({exc.strerror}); check --vqgan-config") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PixgenError(f"VQGAN config {path} is not valid YAML ({str(exc).splitlines()[0]}); "
                          "give the model.yaml that came with the checkpoint") from exc
    return parse_config(data, str(path))


def parse_config(data: Any, source: str) -> TamingConfig:
    """The ``TamingConfig`` in a loaded taming YAML document; ``source`` names it in errors."""
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or "target" not in model:
        raise PixgenError(f"{source} is not a taming model config (no model.target); "
                          "give the model.yaml that came with the checkpoint")
    target, params, prefix = str(model["target"]), model.get("params") or {}, ""
    if target.endswith("Net2NetTransformer"):
        first = params.get("first_stage_config") or {}
        target, params, prefix = str(first.get("target", "")), first.get("params") or {}, "first_stage_model."
    kind = target.rsplit(".", 1)[-1]
    if kind not in _VQ_TARGETS:
        raise PixgenError(f"{source}: model target {target!r} is not supported; pixgen loads taming VQModel, "
                          "GumbelVQ and the first stage of Net2NetTransformer")
    if params.get("remap"):
        raise PixgenError(f"{source}: codebook remapping (params.remap) is not supported; use a model without it")
    dd = params.get("ddconfig") or {}
    missing = [k for k in _REQUIRED_DD if k not in dd] + [k for k in ("n_embed", "embed_dim") if k not in params]
    if missing:
        raise PixgenError(f"{source}: the VQGAN params lack {', '.join(missing)}; is this a taming VQGAN config?")
    return TamingConfig(ddconfig=dict(dd), n_embed=int(params["n_embed"]), embed_dim=int(params["embed_dim"]),
                        gumbel=_VQ_TARGETS[kind], prefix=prefix, source=source)


class VqganModel(nn.Module):
    """A frozen VQGAN built from taming's Encoder, Decoder and quantizer; latents live in codebook space."""

    def __init__(self, config: TamingConfig) -> None:
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import GumbelQuantize, VectorQuantizer2

        super().__init__()
        self.config = config
        dd, z_channels = config.ddconfig, config.ddconfig["z_channels"]
        self.encoder = Encoder(**dd)
        with contextlib.redirect_stdout(io.StringIO()):  # taming's Decoder prints its z shape
            self.decoder = Decoder(**dd)
        self.quant_conv = nn.Conv2d(z_channels, config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, z_channels, 1)
        if config.gumbel:
            self.quantizer = GumbelQuantize(z_channels, config.embed_dim, n_embed=config.n_embed)
        else:
            self.quantizer = VectorQuantizer2(config.n_embed, config.embed_dim, beta=0.25)

    @property
    def factor(self) -> int:
        """Downsampling factor (16 for the f16 models, 8 for Gumbel f8)."""
        return self.config.factor

    @property
    def codebook(self) -> torch.Tensor:
        """The code vectors, (n_embed, embed_dim)."""
        return self.quantizer.embed.weight if self.config.gumbel else self.quantizer.embedding.weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> latent (N, D, H/f, W/f); Gumbel models give their argmax code vectors."""
        h = self.quant_conv(self.encoder(x))  # (N, D, h, w)
        if self.config.gumbel:
            return self.tokens_to_latent(self.quantizer.proj(h).argmax(1))
        return h

    def quantize(self, z: torch.Tensor, share: float = 1.0) -> torch.Tensor:
        """Nearest code vector per position, with a straight-through gradient to ``z`` (N, D, h, w); a ``share``
        under 1 moves only that share of the way from ``z`` to its codes (the gradient is the same)."""
        zf, zq = z.movedim(1, -1), self.codebook[self.nearest_codes(z)]  # both (N, h, w, D)
        return (zf + share * (zq - zf).detach()).movedim(-1, 1)

    def nearest_codes(self, z: torch.Tensor) -> torch.Tensor:
        """The index of the nearest code vector at each position of ``z`` (N, D, h, w): (N, h, w)."""
        zf, book = z.movedim(1, -1), self.codebook  # (N, h, w, D), (K, D)
        return (zf.pow(2).sum(-1, keepdim=True) + self._codebook_stats()[0] - 2 * zf @ book.T).argmin(-1)

    def clamp_to_codebook(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` (N, D, h, w) clamped per channel to the range the code vectors span."""
        _, lo, hi = self._codebook_stats()
        return torch.maximum(torch.minimum(z, hi), lo)

    def _codebook_stats(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The code vectors' squared norms (K,) and per-channel min and max (1, D, 1, 1): constant for a frozen
        model, so computed once per codebook tensor (again if it is moved or replaced)."""
        book = self.codebook
        key = (book.data_ptr(), book.device, book.dtype, book._version)
        if getattr(self, "_stats_key", None) != key:
            with torch.no_grad():
                self._stats = (book.pow(2).sum(1), book.amin(0).view(1, -1, 1, 1), book.amax(0).view(1, -1, 1, 1))
            self._stats_key = key
        return self._stats

    def tokens_to_latent(self, tokens: torch.Tensor) -> torch.Tensor:
        """Code indices (N, h, w) -> their code vectors (N, D, h, w)."""
        return self.codebook[tokens].movedim(-1, 1)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Latent (N, D, h, w) -> image (N, 3, h*f, w*f), roughly in [-1, 1]."""
        return self.decoder(self.post_quant_conv(z_q))

    def decode_image(self, z_q: torch.Tensor) -> torch.Tensor:
        """Latent (N, D, h, w) -> image (N, 3, h*f, w*f) in [0, 1] (clamped: no gradient where it clips)."""
        return self.decode(z_q).add(1).div(2).clamp(0, 1)

    def round_trip(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [0, 1] encoded, snapped to the nearest codes and decoded, in [0, 1]."""
        return self.decode_image(self.quantize(self.encode(images * 2 - 1)))

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights under taming's checkpoint names (``quantize.*``), e.g. to write a taming checkpoint."""
        return {_checkpoint_name(k): v for k, v in self.state_dict().items()}


def _checkpoint_name(key: str) -> str:
    return "quantize." + key[len("quantizer."):] if key.startswith("quantizer.") else key


def _model_name(key: str) -> str:
    return "quantizer." + key[len("quantize."):] if key.startswith("quantize.") else key


# -- loading -----------------------------------------------------------------------------------------------
def load_vqgan(config: str | Path, checkpoint: str | Path, device: str | torch.device = "cpu") -> VqganModel:
    """The frozen model for these files on ``device``, loaded once per process: later calls with the same
    files (same size and mtime) and device return the same object."""
    cfg_path, ckpt_path = _existing(config, "--vqgan-config"), _existing(checkpoint, "--vqgan-checkpoint")
    return _cached_model(cfg_path, _stamp(cfg_path), ckpt_path, _stamp(ckpt_path), _device_key(device))


def clear_model_cache() -> None:
    """Forget every loaded model (frees their memory once no drawer holds them)."""
    _cached_model.cache_clear()


def model_cache_info() -> Any:
    """``functools.lru_cache`` statistics of the process-wide model cache."""
    return _cached_model.cache_info()


@functools.lru_cache(maxsize=4)
def _cached_model(cfg_path: Path, cfg_stamp: tuple, ckpt_path: Path, ckpt_stamp: tuple, device: str) -> VqganModel:
    if device != "cpu":  # copy the CPU model rather than read the checkpoint again
        cpu = _cached_model(cfg_path, cfg_stamp, ckpt_path, ckpt_stamp, "cpu")
        return copy.deepcopy(cpu).to(device)
    return build_from_files(cfg_path, ckpt_path)


def build_from_files(config: str | Path, checkpoint: str | Path) -> VqganModel:
    """Build a model from a taming YAML and checkpoint (uncached); mismatches raise ``PixgenError``."""
    from pixgen.checkpoints import load_checkpoint_state

    cfg = read_config(config)
    state = load_checkpoint_state(Path(checkpoint))
    model = VqganModel(cfg)  # (building on the meta device would cost seconds of one-time imports)
    model.load_state_dict(_model_state(state, model, cfg, Path(checkpoint)), assign=True)
    return freeze(model)


def freeze(model: VqganModel) -> VqganModel:
    """``model`` frozen, in eval mode and channels-last (returned for chaining)."""
    # channels_last: about 12% faster decoder steps on CPU (oneDNN), and the layout tensor cores want on CUDA
    return model.eval().requires_grad_(False).to(memory_format=torch.channels_last)


def _model_state(state: dict[str, torch.Tensor], model: VqganModel, cfg: TamingConfig,
                 path: Path) -> dict[str, torch.Tensor]:
    ours = {}
    for key, value in state.items():
        name = key[len(cfg.prefix):]
        if key.startswith(cfg.prefix) and not name.startswith("loss."):
            ours[_model_name(name)] = value.to(torch.float32, copy=True) if value.is_floating_point() else value
    expected = model.state_dict()

    def names(keys: list[str]) -> str:
        shown = ", ".join(cfg.prefix + _checkpoint_name(k) for k in keys[:4])
        return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")

    missing = [k for k in expected if k not in ours]
    unexpected = [k for k in ours if k not in expected]
    shapes = [f"{cfg.prefix}{_checkpoint_name(k)} is {tuple(ours[k].shape)}, config wants "
              f"{tuple(expected[k].shape)}" for k in expected if k in ours and ours[k].shape != expected[k].shape]
    problems = ([f"missing keys: {names(missing)}"] if missing else []) + \
        ([f"unexpected keys: {names(unexpected)}"] if unexpected else []) + \
        ([f"wrong shapes: {'; '.join(shapes[:4])}"] if shapes else [])
    if problems:
        gumbel_ckpt = "quantizer.proj.weight" in ours
        if gumbel_ckpt != cfg.gumbel:
            problems.insert(0, f"the checkpoint has a {'Gumbel' if gumbel_ckpt else 'vector'} quantizer but the "
                               f"config builds a {'Gumbel' if cfg.gumbel else 'vector'} one")
        raise PixgenError(f"checkpoint {path} does not match its config {cfg.source}: {'; '.join(problems)}. "
                          "Give the .yaml that came with this .ckpt (--vqgan-config/--vqgan-checkpoint)")
    return ours


def _existing(path: str | Path, flag: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise PixgenError(f"VQGAN file {path} does not exist; check {flag}")
    return path.resolve()


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _device_key(device: str | torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)
