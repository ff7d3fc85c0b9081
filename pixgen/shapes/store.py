"""The shapes wing's model-store entries: files that ship in ``pixgen/shapes/assets/`` and are never downloaded.

setup.cfg registers each one in the entry-point group ``pixgen.models`` (``pixgen.registry.MODELS``), so
``pixgen models list/path/verify`` show them and the core never names this package. A missing file is reported
with the entry's ``rebuild`` command.
"""

from __future__ import annotations

from pixgen.model_table import ModelEntry, WeightFile

_PACKAGE = "pixgen.shapes"
_ASSETS = "pixgen/shapes/assets"


#: the sha256 of each shipped file (``pixgen models verify`` checks them); a retrained file gets its new value
#: from ``sha256sum pixgen/shapes/assets/*`` (tests/test_weights.py fails until it is written here)
_SHA256 = {
    "shapes_bpe.txt.gz": "27c8dc8ca89fdd9acbd599a681772f013f70591c59f1e9247c65012f748bd3dc",
    "shapes_clip.json": "fb911973ac86e57bd985167e48014abcf5c39f9216ec7f489078efa5bde90e18",
    "shapes_clip.safetensors": "bf6d92aa1ddfee2f4024196579ffc8c326813bb7ac03f8d810a9263bd15c1d6c",
    "shapes_cnn.json": "5a0e434e9b7253e389def4b14f8683a9938370195bf758fe89b414dd6390f69a",
    "shapes_cnn.safetensors": "ac969a1f74b640bd13a904cb0290f1a40b52de08b335d9506742040f34235b45",
    "shapes_denoiser.pt": "582e176d13becd365c7ea980d4867d02c6b9d99264176bf5e198e43014c6d107",
    "shapes_prior.pt": "2949f22970121c42aa0b0cef5c405e5467a1f93b17aae8d696d097d722c686ac",
    "shapes_vqgan.ckpt": "e2deb538efee4374096146c8c0d15a5dd68c801b88e0f50d53a69d1c7a497808",
    "shapes_vqgan.yaml": "5c6dce70e414d0acad80c90f6a0121be075a06c0bbc7e3d32f5e8e66690b804b",
}


def _shipped(filename: str) -> WeightFile:
    """A file of ``assets/`` with the sha256 it ships with."""
    return WeightFile(filename, sha256=_SHA256[filename])


def _rebuild(script: str) -> str:
    return f"`python scripts/{script} --out {_ASSETS}` (the shipped settings are in its docstring)"


VQGAN = ModelEntry(
    name="shapes", kind="vqgan", package=_PACKAGE,
    files={"config": _shipped("shapes_vqgan.yaml"), "checkpoint": _shipped("shapes_vqgan.ckpt")},
    description="small VQGAN trained on simple shapes (--drawer vqgan:shapes); ships with pixgen",
    rebuild=_rebuild("train_shapes_vqgan.py"),
)

CLIP = ModelEntry(
    name="shapes_clip", kind="clip", package=_PACKAGE,
    files={"config": _shipped("shapes_clip.json"), "weights": _shipped("shapes_clip.safetensors"),
           "vocabulary": _shipped("shapes_bpe.txt.gz")},
    description="64 px ViT CLIP of the shapes world (--clip shapes); ships with pixgen",
    rebuild=_rebuild("train_shapes_clip.py"),
)

CNN = ModelEntry(
    name="shapes_cnn", kind="clip", package=_PACKAGE,
    files={"config": _shipped("shapes_cnn.json"), "weights": _shipped("shapes_cnn.safetensors")},
    description="64 px CNN CLIP of the shapes world (--clip shapes_cnn); ships with pixgen",
    rebuild="the two commands for the shipped CNN CLIP in the docstring of scripts/train_shapes_clip.py",
)

DENOISER = ModelEntry(
    name="shapes_denoiser", kind="denoiser", package=_PACKAGE,
    files={"weights": _shipped("shapes_denoiser.pt")},
    description="shapes scene denoiser (--loss denoise); ships with pixgen",
    rebuild=_rebuild("train_shapes_denoiser.py"),
)

PRIOR = ModelEntry(
    name="shapes_prior", kind="prior", package=_PACKAGE,
    files={"weights": _shipped("shapes_prior.pt")},
    description="shapes VQGAN's code prior (--code-prior shapes); ships with pixgen",
    rebuild=_rebuild("train_shapes_prior.py"),
)
