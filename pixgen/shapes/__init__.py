"""The built-in shapes world: a caption grammar, a scene renderer, an analytic oracle and small offline models.

``world`` (palette, grammar, meaning), ``sample`` (random captions and scenes), ``render`` (torch renderer),
``oracle`` (does an image satisfy a caption?), ``views`` (training augmentations), ``models`` (shipped files).
"""

from __future__ import annotations

from pixgen.shapes.oracle import OracleResult, check
from pixgen.shapes.render import render_caption, render_scenes
from pixgen.shapes.world import Scene, Shape, Spec, caption_of, describes, parse_caption, spec_caption

__all__ = [
    "OracleResult",
    "Scene",
    "Shape",
    "Spec",
    "caption_of",
    "check",
    "describes",
    "parse_caption",
    "render_caption",
    "render_scenes",
    "spec_caption",
]
