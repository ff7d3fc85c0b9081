"""Safe checkpoint loading: ``torch.load(weights_only=True)`` with the non-tensor objects that Lightning
checkpoints carry replaced by inert stand-ins (never constructed); anything else is refused."""

from __future__ import annotations

from pathlib import Path

from pixgen.errors import PixgenError

# Non-tensor objects that Lightning checkpoints carry (callback classes used as dict keys, hyper-parameters,
# numpy scalars): they are replaced by inert stand-ins, never constructed. Anything else is refused.
_STAND_IN_PREFIXES = ("pytorch_lightning.", "lightning.", "lightning_fabric.", "numpy.", "omegaconf.", "typing.")
_DICT_LIKE = ("pytorch_lightning.utilities.parsing.AttributeDict", "lightning_fabric.utilities.data.AttributeDict",
              "lightning.fabric.utilities.data.AttributeDict")
_LEGACY_NAMES = ("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint", "numpy.core.multiarray.scalar",
                 "numpy._core.multiarray.scalar", "numpy.dtype", *_DICT_LIKE)


class StandIn:
    """Takes the place of a skipped non-tensor object while unpickling; it stores and runs nothing."""

    def __new__(cls, *args: object, **kwargs: object) -> StandIn:
        return object.__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


def load_checkpoint_state(path: Path) -> dict:
    """The tensors of a checkpoint's ``state_dict`` (or of a bare state dict), read with
    ``torch.load(weights_only=True)``; truncated, corrupt or code-carrying files raise ``PixgenError``."""
    import torch

    corrupt = (f"cannot read checkpoint {path}: the file is truncated or corrupt ({{}}); delete it and download "
               "it again, or point --vqgan-checkpoint at a good copy")
    try:
        names, is_zip = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)), True
    except ValueError:  # not a zip archive: legacy format, or not a checkpoint at all
        names, is_zip = list(_LEGACY_NAMES), False
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a damaged archive
        raise PixgenError(corrupt.format(_short(exc))) from exc
    refused = sorted(n for n in names if not n.startswith(_STAND_IN_PREFIXES))
    if refused:
        raise PixgenError(_refusal(path, refused))
    allowed = [(dict if n in _DICT_LIKE else StandIn, n) for n in names]
    try:
        with torch.serialization.safe_globals(allowed):
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:  # noqa: BLE001
        if "Unsupported global" in str(exc):
            raise PixgenError(_refusal(path, [str(exc).split("GLOBAL ")[-1].split(" ")[0]])) from exc
        raise PixgenError(corrupt.format(_short(exc))) from exc
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    if not tensors:
        raise PixgenError(f"checkpoint {path} holds no state_dict of tensors; is it a model checkpoint?")
    return tensors


def _refusal(path: Path, names: list[str]) -> str:
    return (f"checkpoint {path} contains objects pixgen will not unpickle ({', '.join(names[:5])}): loading "
            "them could run code. If you trust the file, re-save its weights only: torch.save({'state_dict': "
            "torch.load(PATH, weights_only=False)['state_dict']}, 'clean.ckpt')")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
