"""The shapes oracle: ground truth passes at any size, flat/noisy/wrong images fail."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixgen.shapes.oracle import check
from pixgen.shapes.render import palette_tensor, render_caption, render_scenes
from pixgen.shapes.sample import sample_batch
from pixgen.shapes.world import COLOURS, Scene, Shape, spec_caption


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 3, H, W)."""
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-x * x / (2 * sigma * sigma))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    img = F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="replicate"), k, groups=3)
    return F.conv2d(F.pad(img, (0, 0, radius, radius), mode="replicate"), k.transpose(2, 3), groups=3)


@pytest.mark.parametrize(("seed", "size"), [(0, 64), (1, 128), (2, 256), (3, 512)])
def test_ground_truth_passes_at_any_resolution(seed: int, size: int) -> None:
    scenes, specs = sample_batch(16 if size < 512 else 8, torch.Generator().manual_seed(seed), hard_negatives=False)
    images = render_scenes(scenes, size)
    for img, spec in zip(images, specs, strict=True):
        result = check(img, spec)
        assert result.passed, (spec_caption(spec), result.reasons)


def test_noisy_and_blurred_ground_truth_still_passes() -> None:
    scenes, specs = sample_batch(24, torch.Generator().manual_seed(10), hard_negatives=False)
    images = render_scenes(scenes, 128)
    gen = torch.Generator().manual_seed(11)
    degraded = (_blur(images, 1.0) + 0.08 * torch.randn(images.shape, generator=gen)).clamp(0, 1)
    passed = [check(img, spec).passed for img, spec in zip(degraded, specs, strict=True)]
    assert sum(passed) >= 0.95 * len(passed)


def test_pil_input_and_batch_dimension_are_accepted() -> None:
    from PIL import Image

    img = render_caption("a large blue square on a yellow background", 96, torch.Generator().manual_seed(0))
    assert check(img, "a large blue square on a yellow background").passed  # (1, 3, H, W)
    array = (img[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert check(Image.fromarray(array), "a large blue square on a yellow background").passed


@pytest.mark.parametrize("colour", COLOURS)
def test_flat_colour_fails(colour: str) -> None:
    flat = palette_tensor()[COLOURS.index(colour)].view(3, 1, 1).expand(3, 128, 128)
    for caption in ("a red circle", "a blue square on a white background", "a green triangle above a black circle"):
        assert not check(flat, caption).passed


@pytest.mark.parametrize("seed", range(4))
def test_noise_fails(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    uniform = torch.rand(3, 128, 128, generator=gen)
    blocks = F.interpolate(torch.rand(1, 3, 8, 8, generator=gen), size=128, mode="nearest")[0]
    for noise in (uniform, blocks):
        for caption in ("a red circle", "a yellow square on a purple background", "a blue circle left of a red square"):
            result = check(noise, caption)
            assert not result.passed, (caption, result.details)


def _scene(bg: str, *objects: tuple) -> torch.Tensor:
    return render_scenes([Scene(bg, tuple(Shape(*o) for o in objects))], 128)[0]


def test_wrong_attributes_fail_with_a_reason() -> None:
    img = _scene("blue", ("circle", "red", 0.22, 0.5, 0.1))
    assert check(img, "a small red circle on the left on a blue background").passed
    cases = {
        "a small green circle on the left": "no green shape",
        "a small red square on the left": "not a square",
        "a small red triangle": "not a triangle",
        "a small red circle on the right": "not at the right",
        "a large red circle": "not large",
        "a red circle on a white background": "background is blue",
        "a red circle in the center": "not at the center",
    }
    for caption, reason in cases.items():
        result = check(img, caption)
        assert not result.passed and any(reason in r for r in result.reasons), (caption, result.reasons)


def test_wrong_relation_fails() -> None:
    img = _scene("white", ("square", "yellow", 0.3, 0.25, 0.12), ("triangle", "purple", 0.35, 0.72, 0.12))
    assert check(img, "a yellow square above a purple triangle on a white background").passed
    assert check(img, "a purple triangle below a yellow square").passed
    for wrong in ("a yellow square below a purple triangle", "a yellow square left of a purple triangle",
                  "a purple triangle above a yellow square", "a yellow circle above a purple triangle"):
        assert not check(img, wrong).passed, wrong


def test_one_shape_caption_fails_on_clutter() -> None:
    img = _scene("white", ("circle", "red", 0.3, 0.3, 0.12), ("square", "blue", 0.7, 0.7, 0.15))
    result = check(img, "a red circle")
    assert not result.passed and "other colours" in result.reasons[0]


def test_shapes_are_told_apart_by_their_outline() -> None:
    for shape in ("circle", "square", "triangle"):
        img = _scene("black", (shape, "white", 0.5, 0.5, 0.2))
        for other in ("circle", "square", "triangle"):
            assert check(img, f"a white {other}").passed == (shape == other), (shape, other)


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_a_shape_cut_off_by_the_border_fails(shape: str) -> None:
    inside = _scene("yellow", (shape, "blue", 0.2, 0.5, 0.15))
    assert check(inside, f"a blue {shape} on the left").passed
    cut = _scene("yellow", (shape, "blue", 0.06, 0.5, 0.15))  # its left part lies outside the picture
    result = check(cut, f"a blue {shape} on the left")
    assert not result.passed and "the blue shape is cut off by the image border" in result.reasons[0]
    corner = _scene("black", ("circle", "yellow", 0.97, 0.97, 0.2))  # a quarter disc fills its box like a square
    assert any("cut off" in r for r in check(corner, "a yellow square").reasons)
