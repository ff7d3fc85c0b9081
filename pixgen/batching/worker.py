"""What a batch worker process does with one job: an ordinary ``pixgen.run`` of the job's settings, in the
worker's long-lived process (so the lru-cached CLIP and VQGAN loaders load each model once per worker), with
the output files returned as bytes: the driver writes them, so workers on other machines need no shared disk."""

from __future__ import annotations

import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pixgen.callbacks import Callback
from pixgen.errors import PixgenError


class NanGuard(Callback):
    """Stops a run whose loss is no longer a finite number (its image would be noise)."""

    def on_step(self, run: Any, result: Any) -> None:
        """Raise ``PixgenError`` on a NaN or infinite loss."""
        if not math.isfinite(result.loss):
            raise PixgenError(f"the loss became {result.loss} at iteration {result.iteration}; try a lower lr")


class JobWorker:
    """Runs jobs one after another in this process (a local worker process or a Ray actor)."""

    def __init__(self, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one job (``task``: ``settings``, ``cwd``); never raises for a failing job."""
        return run_job(task["settings"], task.get("cwd"))


def run_job(settings: dict[str, Any], cwd: str | None = None) -> dict[str, Any]:
    """Run one job and return its result: status (done, failed, interrupted), seconds, final loss, error, seed
    used, this worker and its model loads so far, and ``files`` (name -> bytes: output.png, settings.yaml...).
    Relative paths in the settings are read from ``cwd`` (the driver's folder) where this machine has it."""
    from pixgen.api import run
    from pixgen.callbacks import SaveImage

    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixgen-job-") as tmp:
        try:
            result = run(config=settings, save=False, progress=False, callbacks=[SaveImage(tmp, 0), NanGuard()])
        except Exception as exc:  # noqa: BLE001 - any failure of one job is recorded and the batch goes on
            _free_gpu_memory()
            return _result("failed", start, error=error_text(exc))
        if result.interrupted:
            return _result("interrupted", start, error="interrupted before the last iteration", seed=result.seed)
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())
                 if p.is_file() and not p.name.startswith(".")}
    loss = result.losses[-1] if result.losses else None
    return _result("done", start, loss=loss, seed=result.seed, files=files)


def _result(status: str, start: float, **fields: Any) -> dict[str, Any]:
    return {"status": status, "seconds": round(time.perf_counter() - start, 3), "loss": None, "error": None,
            "seed": None, "files": {}, "worker": f"{socket.gethostname()}:{os.getpid()}", "loads": model_loads(),
            **fields}


def error_text(exc: BaseException) -> str:
    """One line for the manifest: a ``PixgenError`` as it is, out-of-memory with a fix, others by type."""
    first = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, PixgenError):
        return first
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in first.lower():
        return f"out of memory ({first}); try a smaller cutn or size, or fewer workers per GPU"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def model_loads() -> int | None:
    """How many models this process has loaded (the CLIP and VQGAN loaders' cache misses; None if unknown)."""
    total = 0
    for module, name in (("pixgen.perceptors", "_load_cached"), ("pixgen.taming_loader", "_cached_model")):
        loader = getattr(sys.modules.get(module), name, None)  # a module not imported has loaded nothing
        info = getattr(loader, "cache_info", None)
        if module in sys.modules and info is None:
            return None
        total += info().misses if info else 0
    return total


def _free_gpu_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
