"""``--precision auto|fp32|bf16|fp16``: reduced-precision autocast around the frozen models' work.

The drawer's parameters, the optimizer and the losses stay fp32; the render, cutouts and CLIP forward/backward
run under ``torch.autocast``. ``auto`` picks bf16 on CPUs with fast bf16 arithmetic (AVX-512 BF16 or AMX, read
from the CPU's flags, never guessed), bf16 on CUDA devices that support it (else fp16), and fp32 elsewhere.
fp16 uses a gradient scaler (its small exponent underflows gradients otherwise).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import torch

from pixgen.errors import PixgenError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: CPU flags (Linux ``/proc/cpuinfo``) that make bf16 matrix products faster than fp32
FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    if not sys.platform.startswith("linux"):
        return set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def choose(name: str, device: torch.device) -> tuple[str, torch.dtype | None]:
    """The precision ``name`` means on ``device``: (its name, the autocast dtype or None for fp32)."""
    name = str(name).lower()
    if name == "auto":
        name = auto_name(device)
    if name not in PRECISIONS:
        raise PixgenError(f"unknown precision {name!r}; choose one of: auto, {', '.join(PRECISIONS)}")
    return name, PRECISIONS[name]


def auto_name(device: torch.device) -> str:
    """What ``auto`` picks on ``device`` (see the module docstring)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and set(FAST_BF16_FLAGS) & cpu_flags():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``; a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 (None for the other precisions)."""
    return torch.amp.GradScaler(device.type) if dtype is torch.float16 else None
