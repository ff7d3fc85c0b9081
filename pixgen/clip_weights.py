"""CLIP weights into an open_clip model: from the model store (``MODEL:TAG``) or a local file.

Formats, told apart by their contents (not their names): an open_clip state dict saved by ``torch.save``
(``.pt``/``.bin``, read with ``torch.load(weights_only=True)``), a safetensors file, and OpenAI's original
TorchScript archive (``ViT-B-32.pt`` from openaipublic).

Nothing in a file runs: state dicts go through torch's allow-list unpickler, and OpenAI's archive through
``pixgen.torchscript_archive``, a restricted reader of the zip (not ``torch.jit.load``: see its docstring).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixgen.errors import PixgenError
from pixgen.torchscript_archive import ArchiveError, is_torchscript, read_archive

#: int entries of OpenAI's archives that are no weights (``clip.model.build_model`` drops them too)
OPENAI_EXTRAS = ("input_resolution", "context_length", "vocab_size")
_EXPECTED = "an open_clip state dict (.pt, .bin, .safetensors) or OpenAI's TorchScript .pt archive"


class _BadFile(Exception):
    """What is wrong with a weights file (the middle of the one-line message)."""


def load_weights(model: nn.Module, model_name: str, tag: str) -> None:
    """Load the weights that ``tag`` names into ``model`` (an open_clip model named ``model_name``).

    ``random``: nothing (keep the initial weights). A tag that is an existing file, or has a path separator or
    a suffix: that local file. Otherwise the store entry ``MODEL:TAG`` (``pixgen models path``), downloaded now
    unless offline (``ModelUnavailableError``, naming the file to place and the flag); its preprocessing (mean,
    std) becomes the model's. Bad files raise ``PixgenError`` with one line saying what the file is."""
    if tag == "random":
        return
    path = weights_file(model_name, tag)
    state = read_state_dict(path, model_name)
    try:
        _load_into(model, state)
    except _BadFile as exc:
        raise PixgenError(f"CLIP weights {path} {exc}; expected {_EXPECTED} for {model_name}") from None
    if not is_path(tag):
        _use_pretrained_preprocess(model, model_name, tag)


def new_model(model_name: str, tag: str, device: str = "cpu") -> nn.Module:
    """An open_clip model ``model_name`` with its initial weights, built for the weights ``tag`` names
    (QuickGELU when they need it, ``wants_quick_gelu``), for ``load_weights``. open_clip's warning that no
    weights were loaded is silenced: they are loaded next."""
    import open_clip

    quiet = _DropRecord("No pretrained weights loaded")
    logging.getLogger().addFilter(quiet)
    try:
        return open_clip.create_model(model_name, pretrained=None, device=device,
                                      force_quick_gelu=wants_quick_gelu(model_name, tag))
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise PixgenError(f"could not build the CLIP model {model_name}: {exc}; check its model config") from exc
    finally:
        logging.getLogger().removeFilter(quiet)


class _DropRecord(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def is_path(tag: str) -> bool:
    """True when a ``--clip`` tag names a local file rather than a pretrained tag."""
    return (os.sep in tag or bool(os.altsep and os.altsep in tag) or bool(Path(tag).suffix)
            or Path(tag).expanduser().is_file())


def weights_file(model_name: str, tag: str) -> Path:
    """The local weights file of ``MODEL:TAG``: the tag itself when it is a path, else the store's file."""
    from pixgen.model_table import find_entry
    from pixgen.weights import ensure_files

    if is_path(tag):
        path = Path(tag).expanduser()
        if not path.is_file():
            raise PixgenError(f"CLIP weights file {tag} does not exist; check the path in --clip {model_name}:{tag}")
        return path
    entry = find_entry(f"{model_name}:{tag}")
    if entry is None or entry.kind != "clip" or "weights" not in entry.files:
        import open_clip

        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise PixgenError(f"unknown pretrained tag {tag!r} for {model_name}; choose one of: "
                          f"{', '.join([*tags, 'random'])}, or give a path to a weights file")
    return ensure_files(entry)["weights"]


def wants_quick_gelu(model_name: str, tag: str) -> bool:
    """True when the weights were trained with QuickGELU but ``model_name`` may not say so: open_clip's
    pretrained tag says so (OpenAI's, among others), or the tag is an OpenAI TorchScript archive."""
    if tag == "random":
        return False
    if is_path(tag):
        path = Path(tag).expanduser()
        try:
            return path.is_file() and _sniff(path) == "torchscript"
        except (_BadFile, OSError):
            return False  # load_weights says what is wrong with it
    import open_clip

    return bool(open_clip.get_pretrained_cfg(model_name, tag).get("quick_gelu"))


def read_state_dict(path: Path, model_name: str = "the model") -> dict[str, torch.Tensor]:
    """The tensors of a weights file (any supported format), ``state_dict``/``module.`` wrappers removed;
    a file that is none of them raises ``PixgenError`` saying what it is."""
    try:
        kind = _sniff(path)
        readers = {"torchscript": _read_torchscript, "torch": _read_torch, "safetensors": _read_safetensors}
        state = _unwrap(readers[kind](path))
    except _BadFile as exc:
        raise PixgenError(f"CLIP weights {path} {exc}; expected {_EXPECTED} for {model_name}") from None
    except OSError as exc:
        raise PixgenError(f"cannot read CLIP weights {path} ({exc.strerror or exc}); check the file") from None
    return state


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise _BadFile("is empty")
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise _BadFile(f"is a damaged zip archive ({exc})") from None
        return "torchscript" if is_torchscript(names) else "torch"
    if head.startswith(b"\x80"):
        return "torch"  # torch.save's legacy pickle stream
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size:
        return "safetensors"
    raise _BadFile(f"is not a weights file (it starts with {head[:8]!r})")


def _read_torch(path: Path) -> Any:
    try:
        with warnings.catch_warnings():  # a plain pickle stream: the refusal below says it, not a torch warning
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it names {named.group(1)})" if named else ""
        raise _BadFile(f"is a pickle holding more than tensors{what}, which pixgen will not run") from None
    except (RuntimeError, EOFError, ValueError, KeyError) as exc:
        raise _BadFile(f"is not a readable torch file ({str(exc).splitlines()[0] if str(exc) else exc!r})") \
            from None


def _read_torchscript(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = read_archive(path)
    except ArchiveError as exc:
        raise _BadFile(f"is a TorchScript archive {exc}") from None
    for key in OPENAI_EXTRAS:
        state.pop(key, None)
    return state


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise _BadFile(f"is not a readable safetensors file ({exc})") from None


def _unwrap(checkpoint: Any) -> dict[str, torch.Tensor]:
    """open_clip's ``load_state_dict`` unwrapping: a ``state_dict`` entry, a ``module.`` prefix."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise _BadFile(f"holds a {type(checkpoint).__name__}, not a state dict of tensors")
    odd = [k for k, v in checkpoint.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if odd:
        raise _BadFile(f"holds {len(odd)} entries that are no tensors ({odd[0]!r} among them), not a state dict")
    if all(k.startswith("module.") for k in checkpoint):
        checkpoint = {k[len("module."):]: v for k, v in checkpoint.items()}
    return checkpoint


# -- into the model --------------------------------------------------------------------------------------------
def _load_into(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """open_clip's ``load_checkpoint`` conversions, then a strict load with every tensor cast to the model's
    dtype (OpenAI's archives are fp16); a mismatch raises ``_BadFile`` naming the first differences."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

    target = model.state_dict()
    transient = {name for name, _ in model.named_buffers()} - set(target)  # recomputed by the model (attn_mask)
    state = {k: v for k, v in state.items() if k not in transient}
    try:
        state = convert_state_dict(model, state)
        if "positional_embedding" in state and not hasattr(model, "positional_embedding"):
            state = convert_to_custom_text_state_dict(state)
        for key in ("logit_scale", "logit_bias"):
            if key in state and key in target and state[key].numel() == target[key].numel():
                state[key] = state[key].reshape(target[key].shape)
        resize_pos_embed(state, model)
        resize_text_pos_embed(state, model)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise _BadFile(f"holds weights that open_clip cannot fit to this model ({exc})") from None
    _check_fit(state, target)
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in state.items()}, strict=True)


def _check_fit(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> None:
    missing = [k for k in target if k not in state]
    extra = [k for k in state if k not in target]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}" for k in target
              if k in state and state[k].shape != target[k].shape]
    if missing or extra or shapes:
        parts = [f"{len(found)} {what} (e.g. {found[0]})" for what, found in
                 (("missing", missing), ("unexpected", extra), ("of another shape", shapes)) if found]
        raise _BadFile(f"holds weights of another architecture: {len(state)} tensors, {', '.join(parts)}")


def _use_pretrained_preprocess(model: nn.Module, model_name: str, tag: str) -> None:
    """Give the model the mean/std (and the rest of the preprocessing) of open_clip's pretrained ``tag``."""
    import open_clip
    from open_clip.transform import merge_preprocess_dict

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if cfg:
        open_clip.set_model_preprocess_cfg(model, merge_preprocess_dict(open_clip.get_model_preprocess_cfg(model),
                                                                         cfg))
