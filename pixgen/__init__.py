"""pixgen: CLIP-guided image optimization (VQGAN, pixel and vector drawers; kornia cutouts; open_clip)."""

from __future__ import annotations

__version__ = "0.1.0"
