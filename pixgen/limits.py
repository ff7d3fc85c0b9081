"""Memory limits: a run whose cutouts or image cannot fit in memory is refused before its first step, with the
estimate and a setting that fits, instead of swapping or being killed minutes later.

The estimate is a floor, not a forecast: a perceptor keeps about 50x a cutout's input bytes of activations for
the backward pass (measured on ViT-B/32: about 29 MiB per 224 px cutout, 0.6 MiB of input); larger CLIP models
keep more, and those runs still meet the out-of-memory message if they get that far.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from pixgen.errors import PixgenError

#: bytes per cutout pixel: 3 float32 channels, times the activations kept per input value
CUTOUT_FACTOR = 3 * 4 * 64
#: bytes per image pixel: the render, its gradient, the filters' copies and the drawer's maps (pixel: ~160)
IMAGE_FACTOR = 3 * 4 * 16


def estimate_bytes(cutn: int, input_sizes: Iterable[int], width: int, height: int) -> int:
    """Bytes a step needs at least: ``cutn`` cutouts for each perceptor (one input size each) plus the image."""
    return cutn * sum(size * size for size in input_sizes) * CUTOUT_FACTOR + width * height * IMAGE_FACTOR


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device``: CUDA's free memory, else the host's available memory (and the container's
    cgroup limit, if lower); None where it cannot be told (MPS)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        import psutil
    except ImportError:
        free = _meminfo_available()
    else:
        free = int(psutil.virtual_memory().available)
    known = [v for v in (free, _cgroup_room()) if v is not None]
    return min(known) if known else None


def check_memory(config: Any, perceptors: dict[str, tuple[Any, float]], device: torch.device) -> None:
    """Refuse a run whose estimate exceeds the free memory, naming the estimate and a ``--cutn`` or ``--size``
    that fits."""
    width, height = config.dimensions()
    sizes = [perceptor.input_size for perceptor, _ in perceptors.values()]
    need, free = estimate_bytes(config.cutn, sizes, width, height), available_bytes(device)
    if free is None or need <= free:
        return
    image = estimate_bytes(0, sizes, width, height)
    per_cutout = estimate_bytes(1, sizes, 0, 0)
    fits = (free - image) // per_cutout if per_cutout else 0
    if fits >= 1:
        fix = (f"use --cutn {fits} or less (add --batches {math.ceil(config.cutn / fits)} to keep as many cutouts "
               "per step)")
    else:
        scale = math.sqrt(free / 2 / max(1, image))
        fix = f"use a --size of at most {max(1, int(width * scale))}x{max(1, int(height * scale))}"
    raise PixgenError(f"--cutn {config.cutn} at --size {width}x{height} needs about {_size(need)} of memory "
                      f"(estimate), more than the {_size(free)} free on {device.type}; {fix}")


def _size(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _meminfo_available() -> int | None:
    """``MemAvailable`` from /proc/meminfo in bytes (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """What the cgroup v2 memory limit leaves (memory.max - memory.current), or None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text()))
    except (OSError, ValueError):
        return None
