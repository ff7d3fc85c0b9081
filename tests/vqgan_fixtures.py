"""Tiny taming-format VQGANs for tests, written the way real ones are found in the wild.

The YAML follows taming's layout (training loss config, data section, Net2NetTransformer wrapping); the
checkpoint is Lightning-style: ``state_dict`` (with ``loss.*`` keys) plus epoch, global_step, optimizer states,
a ``ModelCheckpoint`` class as a callbacks key, ``AttributeDict`` hyper-parameters and numpy scalars, pickled
under pytorch_lightning's names without importing it. Weights come from taming's own modules with the real
architectures' key layout (same ``ch_mult``, ``num_res_blocks``, ``attn_resolutions``) at reduced width.

Use from a test: ``from vqgan_fixtures import write_tiny_vqgan`` -> ``(model.yaml, last.ckpt)``; build a drawer
with ``VqganDrawer(w, h, vqgan_config=str(yaml), vqgan_checkpoint=str(ckpt))``.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

F16 = {"ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 2, "attn_resolutions": [16]}  # imagenet/wikiart/coco/...
GUMBEL_F8 = {"ch_mult": [1, 1, 2, 4], "num_res_blocks": 2, "attn_resolutions": [32]}
LPIPS_LOSS = {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
              "params": {"disc_conditional": False, "disc_in_channels": 3, "disc_start": 250001,
                         "disc_weight": 0.8, "codebook_weight": 1.0}}


class FakeModelCheckpoint:
    """Pickled as pytorch_lightning's ModelCheckpoint (old Lightning keys ``callbacks`` by the class)."""

    _pickle_as = ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")


class FakeAttributeDict(dict):
    """Pickled as pytorch_lightning's AttributeDict (``hyper_parameters``)."""

    _pickle_as = ("pytorch_lightning.utilities.parsing", "AttributeDict")


class _AliasPickler(pickle._Pickler):
    """Writes classes that carry ``_pickle_as`` under that module and name."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        alias = obj.__dict__.get("_pickle_as") if isinstance(obj, type) else None
        if alias is None:
            super().save_global(obj, name)
            return
        self.write(pickle.GLOBAL + f"{alias[0]}\n{alias[1]}\n".encode())
        self.memoize(obj)


ALIAS_PICKLE = types.SimpleNamespace(__name__="alias_pickle", Pickler=_AliasPickler)


class _TrainingLoss(nn.Module):
    """Stands for the ``loss.*`` entries (discriminator, LPIPS, logvar) of real checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.logvar = nn.Parameter(torch.zeros(()))
        self.discriminator = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2))


class TamingLayout(nn.Module):
    """taming's VQModel/GumbelVQ attribute names built from taming's modules: ``state_dict()`` has the real
    checkpoint keys (``encoder.*``, ``decoder.*``, ``quantize.*``, ``quant_conv.*``, ``post_quant_conv.*``)."""

    def __init__(self, ddconfig: dict[str, Any], n_embed: int, embed_dim: int, gumbel: bool) -> None:
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import GumbelQuantize, VectorQuantizer2

        super().__init__()
        z = ddconfig["z_channels"]
        with contextlib.redirect_stdout(io.StringIO()):  # taming's Decoder prints its z shape
            self.encoder, self.decoder = Encoder(**ddconfig), Decoder(**ddconfig)
        self.loss = _TrainingLoss()
        if gumbel:
            self.quantize = GumbelQuantize(z, embed_dim, n_embed=n_embed)
        else:
            self.quantize = VectorQuantizer2(n_embed, embed_dim, beta=0.25)
        self.quant_conv = nn.Conv2d(z, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z, 1)


def ddconfig(arch: dict[str, Any], ch: int, z_channels: int, resolution: int = 256) -> dict[str, Any]:
    """A taming ddconfig with the real layout ``arch`` at width ``ch`` (a multiple of 32)."""
    return {"double_z": False, "z_channels": z_channels, "resolution": resolution, "in_channels": 3, "out_ch": 3,
            "ch": ch, **arch, "dropout": 0.0}


def taming_yaml(dd: dict[str, Any], n_embed: int, embed_dim: int, kind: str) -> dict[str, Any]:
    """A config in taming's layout; ``kind`` is ``vq``, ``gumbel`` or ``transformer`` (a Net2NetTransformer)."""
    params: dict[str, Any] = {"embed_dim": embed_dim, "n_embed": n_embed, "monitor": "val/rec_loss",
                              "ddconfig": dd, "lossconfig": LPIPS_LOSS}
    target = "taming.models.vqgan.VQModel"
    if kind == "gumbel":
        target = "taming.models.vqgan.GumbelVQ"
        params["kl_weight"] = 1.0e-8
        params["temperature_scheduler_config"] = {"target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler",
                                                  "params": {"warm_up_steps": 0, "max_decay_steps": 1000001,
                                                             "lr_start": 0.9, "lr_max": 0.9, "lr_min": 1.0e-6}}
    model = {"base_learning_rate": 4.5e-6, "target": target, "params": params}
    if kind == "transformer":
        first = {"target": target, "params": {**params, "ckpt_path": "logs/first_stage/last.ckpt",
                                              "lossconfig": {"target": "taming.modules.losses.DummyLoss"}}}
        model = {"base_learning_rate": 4.5e-6, "target": "taming.models.cond_transformer.Net2NetTransformer",
                 "params": {"cond_stage_config": {"target": "taming.modules.misc.coord.CoordStage",
                                                  "params": {"n_embed": n_embed, "down_factor": 16}},
                            "transformer_config": {"target": "taming.modules.transformer.mingpt.GPT",
                                                   "params": {"vocab_size": n_embed, "block_size": 512,
                                                              "n_layer": 1, "n_head": 2, "n_embd": 32}},
                            "first_stage_config": first}}
    return {"model": model, "data": {"target": "main.DataModuleFromConfig", "params": {"batch_size": 4}}}


def lightning_checkpoint(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Wrap a state dict the way a pytorch_lightning 1.x ``last.ckpt`` does, extra entries included."""
    return {
        "epoch": 3, "global_step": 1234, "pytorch-lightning_version": "1.0.8",
        "state_dict": state_dict,
        "callbacks": {FakeModelCheckpoint: {"monitor": "val/rec_loss", "best_model_score": torch.tensor(0.25),
                                            "best_model_path": "logs/checkpoints/epoch=3.ckpt",
                                            "current_score": np.float64(0.25)}},
        "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros(4)}},
                              "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9), "params": [0]}]}],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": FakeAttributeDict(embed_dim=32, n_embed=64, monitor="val/rec_loss"),
    }


def write_tiny_vqgan(directory: str | Path, *, kind: str = "vq", ch: int = 32, z_channels: int = 32,
                     n_embed: int = 64, seed: int = 0, stem: str = "model") -> tuple[Path, Path]:
    """Write ``<stem>.yaml`` + ``<stem>.ckpt`` of a random tiny VQGAN; ``kind``: ``vq`` (f16 layout),
    ``gumbel`` (Gumbel f8 layout) or ``transformer`` (f16 first stage inside a Net2NetTransformer)."""
    dd = ddconfig(GUMBEL_F8 if kind == "gumbel" else F16, ch, z_channels)
    torch.manual_seed(seed)
    module = TamingLayout(dd, n_embed, z_channels, gumbel=kind == "gumbel")
    state = module.state_dict()
    if kind == "transformer":
        state = {f"first_stage_model.{k}": v for k, v in state.items() if not k.startswith("loss.")}
        state["transformer.tok_emb.weight"] = torch.zeros(n_embed, 32)
    return write_files(Path(directory), stem, taming_yaml(dd, n_embed, z_channels, kind), state)


def write_files(directory: Path, stem: str, config: dict[str, Any],
                state: dict[str, torch.Tensor]) -> tuple[Path, Path]:
    """Write a YAML and a Lightning-style checkpoint; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    yaml_path, ckpt_path = directory / f"{stem}.yaml", directory / f"{stem}.ckpt"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False))
    torch.save(lightning_checkpoint(dict(state)), ckpt_path, pickle_module=ALIAS_PICKLE)
    return yaml_path, ckpt_path


def fit_tiny_vqgan(directory: str | Path, image: torch.Tensor, *, steps: int = 150,
                   seed: int = 0) -> tuple[Path, Path]:
    """A small f4 VQGAN (taming modules) fitted to reproduce ``image`` (1, 3, H, W) in [0, 1]: encoder and
    decoder trained as an autoencoder, then the codebook set to the image's latents so quantising is exact."""
    torch.manual_seed(seed)
    dd = ddconfig({"ch_mult": [1, 2, 2], "num_res_blocks": 1, "attn_resolutions": []}, 32, 8, resolution=32)
    _, _, h, w = image.shape
    n_embed = (h // 4) * (w // 4)
    module = TamingLayout(dd, n_embed, 8, gumbel=False)
    parts = [module.encoder, module.decoder, module.quant_conv, module.post_quant_conv]
    opt = torch.optim.Adam([p for m in parts for p in m.parameters()], lr=2e-3)
    x = image * 2 - 1
    for _ in range(steps):
        opt.zero_grad()
        out = module.decoder(module.post_quant_conv(module.quant_conv(module.encoder(x))))
        nn.functional.mse_loss(out, x).backward()
        opt.step()
    with torch.no_grad():
        latents = module.quant_conv(module.encoder(x))  # (1, 8, h/4, w/4)
        module.quantize.embedding.weight.copy_(latents.flatten(2)[0].T)
    return write_files(Path(directory), "fitted", taming_yaml(dd, n_embed, 8, "vq"), module.state_dict())
