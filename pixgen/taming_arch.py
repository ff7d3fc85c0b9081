"""Known VQGAN architectures (``pixgen models list``) as taming configs, random-weight models built from them,
and taming-layout files written from a model: for tests, benchmarks and training scripts."""

from __future__ import annotations

from pathlib import Path

import torch

from pixgen.errors import PixgenError
from pixgen.taming_loader import TamingConfig, VqganModel, freeze

_F16 = {"double_z": False, "z_channels": 256, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
        "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 2, "attn_resolutions": [16], "dropout": 0.0}
_GUMBEL_F8 = {**_F16, "ch_mult": [1, 1, 2, 4], "attn_resolutions": [32]}


def architecture(name: str, *, ch: int | None = None, z_channels: int | None = None,
                 n_embed: int | None = None) -> TamingConfig:
    """The config of a known model (``pixgen models list``), optionally narrowed (``ch`` a multiple of 32)
    with the same key layout: same ``ch_mult``, ``num_res_blocks`` and ``attn_resolutions``."""
    from pixgen.weights import get_entry

    arch = get_entry(name).arch
    if not arch:
        raise PixgenError(f"the architecture of {name!r} is not known; load it from its files instead")
    base = _GUMBEL_F8 if arch["arch"] == "gumbel_f8" else _F16
    width = z_channels or base["z_channels"]
    dd = {**base, "ch": ch or base["ch"], "z_channels": width}
    return TamingConfig(ddconfig=dd, n_embed=n_embed or arch["n_embed"], embed_dim=width,
                        gumbel=arch["arch"] == "gumbel_f8", source=f"{name} architecture")


def random_model(name: str = "imagenet_f16_16384", device: str | torch.device = "cpu", *,
                 seed: int = 0) -> VqganModel:
    """A known architecture with random weights (benchmarks, tests); frozen, in eval mode, on ``device``."""
    torch.manual_seed(seed)
    return freeze(VqganModel(architecture(name))).to(device)


def write_taming_files(model: VqganModel, directory: str | Path, stem: str) -> tuple[Path, Path]:
    """Write ``model`` as ``<stem>.yaml`` + ``<stem>.ckpt`` in taming's layout; returns both paths."""
    import yaml

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    yaml_path, ckpt_path = directory / f"{stem}.yaml", directory / f"{stem}.ckpt"
    yaml_path.write_text(yaml.safe_dump(model.config.to_yaml_dict(), sort_keys=False))
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.checkpoint_state_dict().items()}}, ckpt_path)
    return yaml_path, ckpt_path
