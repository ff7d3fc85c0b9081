"""pixgen's own image towers for the shapes CLIPs, registered with timm on demand so open_clip can build them."""

from __future__ import annotations

import importlib

TOWERS = {  # timm model name -> module with ``register_timm_model()``
    "pixgen_shapes_cnn": "pixgen.shapes.cnn",
    "pixgen_shapes_regions": "pixgen.shapes.regions",
    "pixgen_shapes_regions_linear": "pixgen.shapes.regions",
}


def register_tower(timm_name: str | None) -> bool:
    """Register the pixgen tower called ``timm_name`` with timm (idempotent); False when it is not pixgen's."""
    if timm_name not in TOWERS:
        return False
    importlib.import_module(TOWERS[timm_name]).register_timm_model()
    return True
