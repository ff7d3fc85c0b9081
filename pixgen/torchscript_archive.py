"""A restricted reader of TorchScript archives (``torch.jit.save`` zips, such as OpenAI's CLIP ``.pt`` files):
the tensors of a module's parameters and buffers by name, as ``torch.jit.load(f).state_dict()`` gives them.

Why not ``torch.jit.load``: it compiles the archive's TorchScript code and runs any ``__setstate__`` the archive
defines, and TorchScript is deprecated in torch 2.x. Here ``data.pkl`` is unpickled with an allow-list: tensors
rebuilt from the archive's own storages, ``OrderedDict``, TorchScript's list/type-tag helpers as identities, and
every TorchScript class (``__torch__.*``) as an inert attribute holder; any other global refuses the file.
So nothing in the file runs, neither Python nor TorchScript. Which attributes are parameters and buffers comes
from the ``__parameters__``/``__buffers__`` lines of the archive's class definitions (``code/``), which is how
TorchScript's ``state_dict()`` knows them. Tensors are read as little-endian (the ``byteorder`` record says).
"""

from __future__ import annotations

import collections
import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

_STORAGES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
             "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
             "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
             "BoolStorage": torch.bool}
_CLASS = re.compile(r"^class (\w+)\(Module\):\n  __parameters__ = \[(.*?)\]\n  __buffers__ = \[(.*?)\]", re.M)


class ArchiveError(Exception):
    """The archive is damaged or holds more than a module's tensors; the message completes "is a TorchScript
    archive ..."."""


def is_torchscript(names: list[str]) -> bool:
    """True when a zip's member names are a TorchScript archive's (``torch.save`` zips have no constants)."""
    return any(name.endswith("constants.pkl") for name in names)


def read_archive(path: Path) -> dict[str, torch.Tensor]:
    """The named parameters and buffers of the module saved in the archive at ``path`` (CPU tensors, their
    saved dtypes); raises ``ArchiveError``."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ArchiveError("without its data.pkl")
        root = pickles[0][: -len("data.pkl")]
        if f"{root}byteorder" in names and archive.read(f"{root}byteorder").strip() != b"little":
            raise ArchiveError("in big-endian byte order")
        classes = _script_classes(archive, root, names)
        try:
            module = _ArchiveUnpickler(archive.read(pickles[0]), archive, root, classes).load()
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise ArchiveError(f"that is damaged ({exc})") from None
    return _flatten(module)


class _ScriptObject:
    """An inert stand-in for a TorchScript class instance: it only keeps the attributes it is given."""

    state_names: frozenset[str] | None = None  # its parameters and buffers; None: unknown (every tensor)

    def __setstate__(self, state: Any) -> None:
        self.__dict__["attrs"] = state if isinstance(state, dict) else {}


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``, allowing only tensors, plain containers and inert objects."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str, classes: dict[str, frozenset[str]]):
        super().__init__(io.BytesIO(data))
        self.archive, self.root, self.classes = archive, root, classes

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return type(name, (_ScriptObject,), {"state_names": self.classes.get(f"{module}.{name}")})
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        if module == "torch.jit._pickle" and name.startswith("build_"):
            return _identity
        if module == "torch.jit._pickle" and name == "restore_type_tag":
            return _first
        raise ArchiveError(f"that names {module}.{name}, which is no part of a model's weights (pixgen will not "
                           "run it)")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise ArchiveError(f"with an unknown storage reference {pid!r}")
        raw = bytearray(self.archive.read(f"{self.root}data/{pid[2]}"))
        return torch.frombuffer(raw, dtype=pid[1]) if raw else torch.empty(0, dtype=pid[1])


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    return torch.as_strided(storage, size, stride, offset)


def _identity(value: Any) -> Any:
    return value


def _first(value: Any, *_: Any) -> Any:
    return value


def _script_classes(archive: zipfile.ZipFile, root: str, names: list[str]) -> dict[str, frozenset[str]]:
    """Qualified TorchScript class name -> its parameters and buffers, from the archive's class definitions."""
    found = {}
    for name in names:
        if name.startswith(f"{root}code/") and name.endswith(".py"):
            module = name[len(f"{root}code/"):-3].replace("/", ".")
            for cls, params, buffers in _CLASS.findall(archive.read(name).decode("utf-8", "replace")):
                found[f"{module}.{cls}"] = frozenset(re.findall(r'"([^"]+)"', params + buffers))
    return found


def _flatten(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    if not isinstance(obj, _ScriptObject):
        raise ArchiveError(f"of a {type(obj).__name__}, not of a module")
    state = {}
    for key, value in obj.__dict__.get("attrs", {}).items():
        if isinstance(value, _ScriptObject):
            state.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, torch.Tensor) and (obj.state_names is None or key in obj.state_names):
            state[f"{prefix}{key}"] = value
    return state
