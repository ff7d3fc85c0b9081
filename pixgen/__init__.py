"""pixgen: CLIP-guided image optimization (VQGAN, pixel and vector drawers; kornia cutouts; open_clip).

The public API is imported lazily, so ``import pixgen`` is cheap and has no side effects.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "run": "pixgen.api",
    "list_drawers": "pixgen.api",
    "list_losses": "pixgen.api",
    "list_filters": "pixgen.api",
    "batch": "pixgen.batching",
    "animate": "pixgen.animation",
    "Run": "pixgen.engine",
    "RunResult": "pixgen.engine",
    "StepResult": "pixgen.engine",
    "RunConfig": "pixgen.config",
    "PixgenError": "pixgen.errors",
    "Callback": "pixgen.callbacks",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'pixgen' has no attribute {name!r}")
