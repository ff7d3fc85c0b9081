"""Where the shapes world's models live, and their registration with open_clip (all offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixgen.errors import PixgenError
from pixgen.perceptors import ClipFiles

CLIP_NAME = "shapes_clip"
#: the second built-in CLIP (``--clip shapes_cnn``): a convolutional image tower that tells shapes apart
CNN_NAME = "shapes_cnn"


def assets_dir() -> Path:
    """The package's ``assets`` folder (package data)."""
    return Path(__file__).resolve().parent / "assets"


def clip_config_path() -> Path:
    """The open_clip model config of the shapes CLIP (``shapes_clip.json``)."""
    return assets_dir() / f"{CLIP_NAME}.json"


def clip_weights_path() -> Path:
    """The shapes CLIP weights: an fp16 safetensors state dict that ``open_clip.create_model`` loads."""
    return _existing(assets_dir() / f"{CLIP_NAME}.safetensors", "scripts/train_shapes_clip.py")


def register_clip() -> str:
    """Add the shapes CLIP config to open_clip's model list (its image tower to timm's, idempotent); returns the
    model name."""
    from pixgen.perceptors import register_config_file

    return register_config_file(clip_config_path())


def cnn_config_path() -> Path:
    """The open_clip model config of the shapes CNN CLIP (``shapes_cnn.json``; same vocabulary as the ViT's)."""
    return assets_dir() / f"{CNN_NAME}.json"


def cnn_weights_path() -> Path:
    """The shapes CNN CLIP weights (fp16 safetensors, as the ViT's)."""
    return _existing(assets_dir() / f"{CNN_NAME}.safetensors", "scripts/train_shapes_clip.py",
                     how="the two commands in the docstring of scripts/train_shapes_clip.py (the shipped CNN CLIP)")


def shapes_clip_files() -> ClipFiles:
    """The 64 px ViT CLIP of the offline shapes world (``--clip shapes``; ships with pixgen)."""
    return ClipFiles(config=clip_config_path(), weights=clip_weights_path())


def shapes_cnn_files() -> ClipFiles:
    """The 64 px CNN CLIP of the offline shapes world (``--clip shapes_cnn``; ships with pixgen)."""
    return ClipFiles(config=cnn_config_path(), weights=cnn_weights_path())


def clip_model_name() -> str:
    """The open_clip model name of the shapes CLIP, registered with open_clip on first use."""
    return register_clip()


def clip_tokenizer() -> Any:
    """The shapes CLIP's tokenizer: open_clip's ``SimpleTokenizer`` with the compact shapes-world merges
    (``pixgen.shapes.vocab``) that the config names."""
    from pixgen.perceptors import tokenizer_for

    return tokenizer_for(register_clip(), clip_config_path())


def load_clip(device: Any = "cpu") -> Any:
    """The shapes CLIP through open_clip's own path: ``create_model(name, pretrained=weights)``, eval mode."""
    import open_clip

    model = open_clip.create_model(register_clip(), pretrained=str(clip_weights_path()), device=device)
    return model.eval()


def vqgan_paths() -> tuple[Path, Path]:
    """``(yaml, ckpt)`` of the shapes VQGAN, in taming's layout."""
    return (
        _existing(assets_dir() / "shapes_vqgan.yaml", "scripts/train_shapes_vqgan.py"),
        _existing(assets_dir() / "shapes_vqgan.ckpt", "scripts/train_shapes_vqgan.py"),
    )


def _existing(path: Path, script: str, how: str | None = None) -> Path:
    """``path`` if it is a file; else an error naming how to rebuild it (``how``, or running ``script``)."""
    if not path.is_file():
        how = how or f"'python {script} --out {path.parent}'"
        raise PixgenError(f"the built-in shapes model file {path} is missing; reinstall pixgen, or rebuild it "
                          f"with {how}")
    return path


def prior_path() -> Path:
    """The shapes VQGAN's code prior (``--init-noise prior --code-prior shapes``)."""
    return _existing(assets_dir() / "shapes_prior.pt", "scripts/train_shapes_prior.py")


def denoiser_path() -> Path:
    """The shapes scene denoiser's weights (fp16 state dict of ``pixgen.shapes.denoiser.ShapesDenoiser``)."""
    return _existing(assets_dir() / "shapes_denoiser.pt", "scripts/train_shapes_denoiser.py")
