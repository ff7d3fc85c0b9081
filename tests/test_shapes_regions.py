"""The region-moment image tower of the shapes CLIP (pixgen.shapes.regions): its measurements and gradient."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from pixgen.shapes.oracle import templates
from pixgen.shapes.regions import FEATURES, MOMENTS, ShapesRegions, region_moments

ROOT = Path(__file__).resolve().parent.parent
X2Y2, Y3, RAGGED = (FEATURES.index(f) for f in ("x2y2", "y3", "ragged"))


def ideal(shape: str, size: int = 128) -> torch.Tensor:
    """A (1, 1, size, size) mask of the ideal shape in a centred box of half the image."""
    box = (size / 4, 3 * size / 4 - 1, size / 4, 3 * size / 4 - 1)
    return templates(box, size)[shape].float().view(1, 1, size, size)


def test_moments_tell_the_shapes_apart():
    moments = {s: region_moments(ideal(s))[0, 0] for s in ("circle", "square", "triangle")}
    # E[x^2 y^2] / spread^4: 1/4 for a square, 1/6 for a disc (analytic values, asinh-squashed by the tower)
    assert moments["square"][X2Y2] == pytest.approx(math.asinh(1 / 4), abs=0.01)
    assert moments["circle"][X2Y2] == pytest.approx(math.asinh(1 / 6), abs=0.01)
    assert moments["triangle"][Y3] < -0.1  # apex up: the mass sits low, with a tail towards the top
    assert abs(moments["square"][Y3]) < 0.01 and abs(moments["circle"][Y3]) < 0.01
    ragged = {s: math.sinh(m[RAGGED]) for s, m in moments.items()}  # boundary^2 / area (L1 boundary)
    assert ragged["square"] == pytest.approx(16, rel=0.05) and ragged["circle"] > 18 and ragged["triangle"] > 25
    cx, cy = moments["square"][1:3]
    assert abs(cx) < 0.02 and abs(cy) < 0.02


def test_absent_region_has_no_shape_and_a_finite_gradient():
    masks = torch.zeros(1, 2, 32, 32)
    masks[0, 0, 8:20, 8:20] = 1.0
    masks[0, 1, 3, 3] = 1e-6  # a trace of a colour: not a shape
    masks.requires_grad_(True)
    out = region_moments(masks)
    assert out.shape == (1, 2, MOMENTS)
    assert out[0, 1, RAGGED:].abs().max() < 1e-3
    out.sum().backward()
    assert torch.isfinite(masks.grad).all()


def test_masks_are_sharp_but_their_gradient_is_dense():
    tower = ShapesRegions()
    pal = tower.prototypes.detach()
    rgb = pal[torch.randint(0, 8, (1, 16, 16))].permute(0, 3, 1, 2)  # (1, 3, 16, 16) pure palette colours
    x = ((rgb - tower.mean) / tower.std).requires_grad_(True)
    m = tower.masks(x)
    assert m[:, :8].argmax(1).eq(((rgb.unsqueeze(1) - pal.view(1, 8, 3, 1, 1)) ** 2).sum(2).argmin(1)).all()
    assert m.max(dim=1).values.min() > 0.9  # sharp: a palette pixel belongs to its colour (off-palette: ~5 %)
    m[:, 0].sum().backward()  # "more red": every pixel should learn which way red lies
    dense = (x.grad.abs().sum(1) > 1e-4).float().mean()
    assert dense > 0.9
    sharp = ShapesRegions(grad_tau=0.03)
    x2 = x.detach().clone().requires_grad_(True)
    sharp.masks(x2)[:, 0].sum().backward()
    assert (x2.grad.abs().sum(1) > 1e-4).float().mean() < dense  # the sharp softmax alone is flat inside colours


@pytest.mark.parametrize("config", ["shapes_clip_regions.json", "shapes_clip_regions_linear.json"])
def test_tower_loads_through_open_clip(config):
    import open_clip

    from pixgen.perceptors import register_config_file

    name = register_config_file(ROOT / "scripts" / "configs" / config)
    model = open_clip.create_model(name).eval()
    x = torch.rand(4, 3, 64, 64, requires_grad=True)
    emb = model.encode_image(x)
    assert emb.shape == (4, 64)
    emb.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
