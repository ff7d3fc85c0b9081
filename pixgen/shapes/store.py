"""The shapes wing's model-store entries: files that ship in ``pixgen/shapes/assets/`` and are never downloaded.

setup.cfg registers each one in the entry-point group ``pixgen.models`` (``pixgen.registry.MODELS``), so
``pixgen models list/path/verify`` show them and the core never names this package. A missing file is reported
with the entry's ``rebuild`` command.
"""

from __future__ import annotations

from pixgen.model_table import ModelEntry, WeightFile

_PACKAGE = "pixgen.shapes"
_ASSETS = "pixgen/shapes/assets"


def _rebuild(script: str) -> str:
    return f"`python scripts/{script} --out {_ASSETS}` (the shipped settings are in its docstring)"


VQGAN = ModelEntry(
    name="shapes", kind="vqgan", package=_PACKAGE,
    files={"config": WeightFile("shapes_vqgan.yaml"), "checkpoint": WeightFile("shapes_vqgan.ckpt")},
    description="small VQGAN trained on simple shapes (--drawer vqgan:shapes); ships with pixgen",
    rebuild=_rebuild("train_shapes_vqgan.py"),
)

CLIP = ModelEntry(
    name="shapes_clip", kind="clip", package=_PACKAGE,
    files={"config": WeightFile("shapes_clip.json"), "weights": WeightFile("shapes_clip.safetensors"),
           "vocabulary": WeightFile("shapes_bpe.txt.gz")},
    description="64 px ViT CLIP of the shapes world (--clip shapes); ships with pixgen",
    rebuild=_rebuild("train_shapes_clip.py"),
)

CNN = ModelEntry(
    name="shapes_cnn", kind="clip", package=_PACKAGE,
    files={"config": WeightFile("shapes_cnn.json"), "weights": WeightFile("shapes_cnn.safetensors")},
    description="64 px CNN CLIP of the shapes world (--clip shapes_cnn); ships with pixgen",
    rebuild="the two commands for the shipped CNN CLIP in the docstring of scripts/train_shapes_clip.py",
)

DENOISER = ModelEntry(
    name="shapes_denoiser", kind="denoiser", package=_PACKAGE,
    files={"weights": WeightFile("shapes_denoiser.pt")},
    description="shapes scene denoiser (--loss denoise); ships with pixgen",
    rebuild=_rebuild("train_shapes_denoiser.py"),
)

PRIOR = ModelEntry(
    name="shapes_prior", kind="prior", package=_PACKAGE,
    files={"weights": WeightFile("shapes_prior.pt")},
    description="shapes VQGAN's code prior (--code-prior shapes); ships with pixgen",
    rebuild=_rebuild("train_shapes_prior.py"),
)
