"""The vector (CLIPDraw) and line_sketch drawers: parameter groups, clamps, init, SVG export, optimization."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import fit_to_target

from pixgen.drawers.line_sketch import PAPER, LineSketchDrawer
from pixgen.drawers.vector import StrokeDrawer, VectorDrawer
from pixgen.errors import PixgenError

pytestmark = pytest.mark.usefixtures("one_thread")


W, H = 64, 48


def make(cls: type[StrokeDrawer], width: int = W, height: int = H, seed: int = 0, **options) -> StrokeDrawer:
    drawer = cls(width, height, **options)
    drawer.init_from_noise("pixels", torch.Generator().manual_seed(seed))
    return drawer


DRAWERS = [
    pytest.param(VectorDrawer, {"strokes": 40}, {"points", "widths", "colors"}, id="vector"),
    pytest.param(LineSketchDrawer, {"allow_paper_color": True}, {"points", "widths", "paper"}, id="line_sketch"),
    pytest.param(VectorDrawer, {"strokes": 12, "fill": True, "allow_paper_color": True, "palette": "[red,blue,white]"},
                 {"points", "widths", "color_logits", "paper_logits"}, id="vector-palette"),
]


@pytest.mark.parametrize(("cls", "options", "groups"), DRAWERS)
def test_gradients_reach_every_group_with_its_own_learning_rate(cls, options, groups) -> None:
    drawer = make(cls, **options)
    lrs = {g["name"]: g["lr"] for g in drawer.param_groups(drawer.default_lr)}
    kinds = {"logits" if name.endswith("_logits") else name for name in lrs}  # choice logits share one rate
    assert set(lrs) == groups and len(set(lrs.values())) == len(kinds)
    assert lrs["points"] == pytest.approx(1 / 224) and lrs["widths"] == pytest.approx(0.1 / 224)
    half = {g["name"]: g["lr"] for g in drawer.param_groups(drawer.default_lr / 2)}
    assert half == pytest.approx({k: v / 2 for k, v in lrs.items()})  # --lr scales every group
    target = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    ((drawer.render() - target) ** 2).mean().backward()
    for group in drawer.param_groups(drawer.default_lr):
        (param,) = group["params"]
        assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, group["name"]
    assert {id(p) for g in drawer.param_groups(1.0) for p in g["params"]} == {id(p) for p in drawer.parameters()}


def test_vector_paper_colour_is_fixed_white_unless_allowed() -> None:
    fixed, free = make(VectorDrawer, strokes=8), make(VectorDrawer, strokes=8, allow_paper_color=True)
    assert "paper" not in dict(fixed.named_parameters()) and torch.equal(fixed.paper, torch.ones(3))
    groups = {g["name"]: g for g in free.param_groups(1.0)}
    assert set(groups) == {"points", "widths", "colors", "paper"}
    blue = torch.zeros(1, 3, H, W)
    blue[:, 2] = 1.0
    fit_to_target(free, blue, steps=30, lr=10.0)
    assert free.paper[2] > 0.9 and free.paper[:2].max() < 0.3  # the background went blue
    assert 0 <= free.paper.min() and free.paper.max() <= 1


def test_filled_vector_paths_start_as_closed_blobs_around_their_centres() -> None:
    drawer = make(VectorDrawer, width=64, height=64, strokes=1, segments=4, fill=True)
    with torch.no_grad():
        drawer.colors.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    points = drawer.points.detach()
    assert len(points) == 13 and torch.allclose(points[0], points[-1])  # 4 cubics, closed
    centre = points[:-1].mean(0)
    image = drawer.render()[0]
    cx, cy = (centre * 64).long().tolist()
    assert image[:, cy, cx].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-3)  # filled inside
    assert image[:, 0, 0].tolist() == pytest.approx([1.0, 1.0, 1.0])  # white paper outside
    ((image - 0.5) ** 2).mean().backward()
    assert drawer.points.grad.abs().sum() > 0 and drawer.colors.grad.abs().sum() > 0


def test_vector_init_follows_pixray_and_project_clamps() -> None:
    drawer = make(VectorDrawer, width=224, height=224, strokes=200, min_width=1.0, max_width=5.0)
    assert set(drawer.n_segments.tolist()) == {1, 2, 3} and len(drawer.colors) == 200
    assert torch.allclose(drawer.widths, torch.tensor(0.015))  # (min + max) / 4 percent of the height
    with torch.no_grad():
        drawer.widths.add_(torch.linspace(-1, 1, 200))
        drawer.colors.add_(5.0)
        drawer.points.mul_(3)
    drawer.project_()
    assert drawer.widths.min().item() == pytest.approx(0.01) and drawer.widths.max().item() == pytest.approx(0.05)
    assert drawer.colors.max() == 1.0 and -0.1 <= drawer.points.min() and drawer.points.max() <= 1.1


def test_line_sketch_is_black_strokes_on_paper() -> None:
    drawer = make(LineSketchDrawer)
    assert len(drawer.n_segments) == 24 and set(drawer.n_segments.tolist()) == {8}
    assert "paper" not in dict(drawer.named_parameters())  # fixed unless allow_paper_color
    img = drawer.render()[0]
    assert torch.allclose(img[:, 0, 0], torch.tensor(PAPER))
    assert img.amin(dim=(1, 2)).max() < 0.2  # some pixel is (nearly) black


def test_parameters_are_resolution_independent() -> None:
    small = make(VectorDrawer, width=128, height=96, strokes=30)
    large = make(VectorDrawer, width=256, height=192, strokes=30)
    assert torch.equal(small.points, large.points) and torch.equal(small.widths, large.widths)
    shrunk = torch.nn.functional.avg_pool2d(large.render(), 2)
    assert (shrunk - small.render()).abs().mean() < 0.02


@pytest.mark.parametrize("cls", [VectorDrawer, LineSketchDrawer])
def test_init_from_image_is_reproducible_and_uses_its_colours(cls) -> None:
    img = torch.zeros(1, 3, H, W)
    img[:, 0] = 0.8  # dark red
    first, second = cls(W, H, strokes=30), cls(W, H, strokes=30)
    first.init_from_image(img)
    second.init_from_image(img)
    assert torch.equal(first.points, second.points)
    assert torch.allclose(first.background(), torch.tensor([0.8, 0.0, 0.0]))
    if cls is VectorDrawer:
        assert torch.allclose(first.colors, torch.tensor([0.8, 0.0, 0.0, 1.0]).expand(30, 4))


# resvg draws strokes of 1 px and less as hairlines, lighter than their area: line_sketch gets room for its ink
@pytest.mark.parametrize(("cls", "size", "options"), [(VectorDrawer, (96, 72), {"strokes": 60}),
                                                      (VectorDrawer, (96, 72), {"strokes": 20, "fill": True}),
                                                      (LineSketchDrawer, (256, 192), {})])
def test_svg_export_matches_the_render(cls, size, options) -> None:
    resvg_py = pytest.importorskip("resvg_py")
    from PIL import Image

    drawer = make(cls, *size, **options)
    svg = drawer.extra_outputs()["output.svg"]
    assert svg.startswith("<svg") and svg.count("<path") == len(drawer.n_segments)
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg))
    theirs = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255
    ours = drawer.render()[0].permute(1, 2, 0).detach().numpy()
    assert np.abs(ours - theirs).mean() < 0.02


@pytest.mark.parametrize(("cls", "options"), [(VectorDrawer, {"strokes": 64}), (LineSketchDrawer, {}),
                                             (VectorDrawer, {"strokes": 8, "fill": True})])
def test_loss_falls_on_cpu_against_a_target_image(cls, options) -> None:
    drawer = make(cls, **options)
    target = torch.zeros(1, 3, H, W)
    target[:, :, :, : W // 2] = 1.0  # white left half, black right half
    losses = fit_to_target(drawer, target, steps=15, lr=drawer.default_lr * 5)
    assert losses[-1] < 0.9 * losses[0], losses


def test_bad_options_and_rendering_before_init_fail_clearly() -> None:
    with pytest.raises(PixgenError, match="strokes"):
        VectorDrawer(W, H, strokes=0)
    with pytest.raises(PixgenError, match="min_width"):
        LineSketchDrawer(W, H, min_width=3.0, max_width=2.0)
    with pytest.raises(PixgenError, match="init_from_noise"):
        VectorDrawer(W, H).render()
    with pytest.raises(PixgenError, match="init noise"):
        VectorDrawer(W, H).init_from_noise("plaid", torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", [VectorDrawer, LineSketchDrawer])
def test_renders_on_cuda_after_to_device(cls) -> None:
    drawer = cls(W, H).to("cuda")  # the engine moves the drawer before initializing it
    drawer.init_from_noise("pixels", torch.Generator().manual_seed(0))
    img = drawer.render()
    assert img.device.type == "cuda" and all(p.device.type == "cuda" for p in drawer.parameters())
    cpu = make(cls)
    assert (img.cpu() - cpu.render()).abs().max() < 1e-3


@pytest.mark.parametrize(("drawer", "options"), [("vector", {"strokes": 32, "lr": 10.0}), ("line_sketch", {})])
def test_clip_loss_falls_in_a_short_engine_run(quick: dict, drawer: str, options: dict) -> None:
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    settings = {**quick, "drawer": drawer, **options, "iterations": 30, "lr_drops": [], "augment": False,
                "cut_noise": 0.0}
    run = Run(RunConfig.from_dict(settings))
    losses = [run.step().loss for _ in range(30)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.01, losses
    assert "output.svg" in run.drawer.extra_outputs()


def test_palette_vector_paths_are_opaque_palette_colours_whose_choice_can_change() -> None:
    palette = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    drawer = make(VectorDrawer, width=32, height=32, strokes=3, segments=4, fill=True, allow_paper_color=True,
                  palette="[red,blue,white]")
    pixels = drawer.render()[0].permute(1, 2, 0).reshape(-1, 3)
    on_palette = torch.cdist(pixels, palette).min(dim=1).values < 1e-4
    assert on_palette.float().mean() > 0.9  # only anti-aliased edges mix two palette colours
    assert torch.allclose(drawer.background(), palette[2], atol=1e-6)  # paper: the palette colour nearest white
    blue = palette[1].view(1, 3, 1, 1).expand(1, 3, 32, 32)
    fit_to_target(drawer, blue, steps=20, lr=10.0)
    assert torch.allclose(drawer.background(), palette[1], atol=1e-6)  # the paper's choice moved to blue
    assert drawer.render().sub(blue).abs().mean() < 0.05
    assert 'fill="rgb(0,0,255)"' in drawer.extra_outputs()["output.svg"]


def test_palette_vector_init_from_image_picks_the_nearest_palette_colours() -> None:
    drawer = VectorDrawer(16, 16, strokes=4, palette="[black,white,#00ff00]")
    image = torch.zeros(1, 3, 16, 16)
    image[:, 1] = 0.8  # green everywhere
    drawer.init_from_image(image)
    assert torch.allclose(drawer.stroke_rgba(), torch.tensor([[0.0, 1.0, 0.0, 1.0]] * 4), atol=1e-6)
    assert torch.equal(drawer.paper, image.mean(dim=(0, 2, 3)))  # fixed paper keeps the image's mean colour
    with pytest.raises(PixgenError, match="palette"):
        VectorDrawer(16, 16, strokes=4, palette="[nocolour]")


def test_palette_vector_state_round_trip_renders_the_same_image() -> None:
    options = {"strokes": 5, "fill": True, "allow_paper_color": True, "palette": "[red,blue,white]",
               "palette_ramp": 0.5}
    first = make(VectorDrawer, seed=3, **options)
    first.set_progress(0.2)  # mid-ramp: colours are still partly softmax mixtures
    second = VectorDrawer(W, H, **options)
    second.load_trainable_state(first.trainable_state())
    second.set_progress(0.2)
    assert set(first.trainable_state()) >= {"color_logits", "paper_logits"}
    assert torch.equal(first.render(), second.render())
    with pytest.raises(PixgenError, match="palette_ramp"):
        VectorDrawer(W, H, palette="[red]", palette_ramp=1.0)
