"""pixray's small losses (saturation, symmetry, edge) and the CLIP Gram style loss: each moves its own measure.

The effect tests run the pixel drawer with the tiny real CLIP for a few dozen CPU steps, with and without the
loss (same seed), and compare the quantity the loss claims to change on the final image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pixgen.errors import PixgenError
from pixgen.losses.base import LossInput
from pixgen.losses.edge import border_strips, parse_margins
from pixgen.losses.saturation import colourfulness
from pixgen.losses.symmetry import mirror_mse
from pixgen.registry import LOSSES

STYLE = str(Path(__file__).parent / "data" / "style_stripes.png")
STEPS = 12
_RUNS: dict[tuple[str, ...], Any] = {}  # loss specs -> the finished Run, shared by the tests of this module


def _inputs(render: torch.Tensor, cutouts: dict | None = None, step: int = 0) -> LossInput:
    return LossInput(render=render, cutouts=cutouts or {}, embeds={}, step=step, total_steps=10)


def _finished(quick: dict, losses: tuple[str, ...]) -> Any:
    """The Run of ``quick`` (pixel drawer, ``STEPS`` steps, fp32 on every CPU) with ``losses``, run once per
    module."""
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    if losses not in _RUNS:
        run = Run(RunConfig.from_dict({**quick, "drawer": "pixel", "iterations": STEPS, "cutn": 2,
                                       "save_every": 0, "precision": "fp32",
                                       "loss": list(losses)}))
        run.run()
        _RUNS[losses] = run
    return _RUNS[losses]


def _image(run: Any) -> torch.Tensor:
    """The run's final image as saved (8-bit), as (1, 3, H, W) in [0, 1]."""
    array = np.asarray(run.image(), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None]


# ---- the measures --------------------------------------------------------------------------------------------

def test_colourfulness_is_zero_for_grey_and_about_one_for_red_and_blue() -> None:
    grey = torch.full((1, 3, 8, 8), 0.4)
    red_blue = torch.zeros(1, 3, 8, 8)
    red_blue[:, 0, :, :4] = 1.0
    red_blue[:, 2, :, 4:] = 1.0
    assert colourfulness(grey).item() == pytest.approx(0, abs=1e-5)
    assert colourfulness(red_blue).item() == pytest.approx(1.076, abs=1e-3)  # Hasler and Süsstrunk, by hand


def test_mirror_mse_is_zero_only_for_images_symmetric_about_that_axis() -> None:
    left_right = torch.rand(1, 3, 6, 4, generator=torch.Generator().manual_seed(0))
    left_right = torch.cat([left_right, left_right.flip(3)], dim=3)  # mirrors left to right
    assert mirror_mse(left_right, "horizontal").item() == 0
    assert mirror_mse(left_right, "vertical").item() > 0.01
    assert mirror_mse(left_right, "both").item() == pytest.approx(mirror_mse(left_right, "vertical").item())
    assert mirror_mse(left_right.transpose(2, 3), "vertical").item() == 0


def test_border_strips_follow_thickness_and_margins() -> None:
    image = torch.rand(1, 3, 40, 60)
    shapes = [tuple(s.shape[-2:]) for s in border_strips(image, (5, 5, 5, 5))]
    assert shapes == [(40, 3), (40, 3), (2, 54), (2, 54)]  # 5 % of 60 and of 40; top/bottom between the sides
    shapes = [tuple(s.shape[-2:]) for s in border_strips(image, (0, 0, 10, 1))]
    assert shapes == [(4, 60), (1, 60)]  # no side strips; 1 % of 40 px is still one row
    assert parse_margins("5, 5 10,0") == (5, 5, 10, 0)


def test_edge_loss_is_zero_at_its_colour_and_pixray_scaled_off_it() -> None:
    loss = LOSSES.get("edge")(edge_color="#ff0000")
    red = torch.zeros(1, 3, 20, 20)
    red[:, 0] = 1.0
    assert loss(_inputs(red)).item() == pytest.approx(0, abs=1e-7)
    black = torch.zeros(1, 3, 20, 20)
    # four strips and the whole image each at MSE 1/3: 0.1 × (4/3 + 0.05/3)
    assert loss(_inputs(black)).item() == pytest.approx(0.1 * (4 / 3 + 0.05 / 3), rel=1e-5)


def test_saturation_reads_every_cutout_batch() -> None:
    loss = LOSSES.get("saturation")()
    red_blue = torch.zeros(2, 3, 8, 8)
    red_blue[:, 0, :, :4] = 1.0
    red_blue[:, 2, :, 4:] = 1.0
    grey = torch.full((1, 3, 8, 8), 0.5)
    value = loss(_inputs(grey, {8: red_blue, 16: red_blue}))
    assert value.item() == pytest.approx(-2 * colourfulness(red_blue).item() / 10)  # cutouts, not the render


@pytest.mark.parametrize(("name", "options", "match"), [
    ("symmetry", {"symmetry_axis": "diagonal"}, "unknown symmetry_axis 'diagonal'; choose one of: horizontal"),
    ("edge", {"edge_margins": "5,5,5"}, "edge_margins '5,5,5' must be four percentages"),
    ("edge", {"edge_margins": "60,60,0,0"}, "left\\+right and top\\+bottom must each be at most 100"),
    ("edge", {"edge_thickness": 80.0}, "edge_thickness must be a percentage 0-50"),
    ("edge", {"edge_color": "blurple"}, "unknown colour 'blurple'"),
    ("edge", {"global_color_weight": float("nan")}, "global_color_weight must be a finite number >= 0"),
    ("style", {}, "the style loss needs a style image: give --style-file"),
    ("style", {"style_file": "missing.png"}, "style_file missing.png does not exist"),
    ("style", {"style_file": STYLE, "styleloss_every": 0}, "styleloss_every must be at least 1"),
])
def test_bad_options_are_one_line_errors(name: str, options: dict, match: str) -> None:
    with pytest.raises(PixgenError, match=match) as info:
        LOSSES.get(name)(**options)
    assert "\n" not in str(info.value)


def test_options_reach_the_losses_by_pixray_names_before_any_model_loads() -> None:
    from pixgen.plan import plan_run

    plan = plan_run({"prompt": "x", "clip": ["nope-not-a-model"], "loss": ["edge@2", "symmetry:vertical"],
                     "edge_color": "black", "edge_margins": "0,0,10,10"})
    options = {p.spec.name: p.options for p in plan.of_kind("loss")}
    assert options == {"edge": {"edge_color": "black", "edge_margins": "0,0,10,10"},
                       "symmetry": {"symmetry_axis": "vertical"}}
    with pytest.raises(PixgenError, match="has no option 'edge_colour'"):
        plan_run({"prompt": "x", "clip": ["nope-not-a-model"], "loss": ["edge"], "edge_colour": "black"})


@pytest.mark.parametrize("axis", ["vertical", "both"])
def test_symmetry_gradient_mirrors_along_its_axis(axis: str) -> None:
    loss = LOSSES.get("symmetry")(symmetry_axis=axis)
    image = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0)).requires_grad_()
    start = mirror_mse(image.detach(), axis).item()
    optimizer = torch.optim.Adam([image], lr=0.05)
    for _ in range(20):
        optimizer.zero_grad()
        loss(_inputs(image)).backward()
        optimizer.step()
    assert mirror_mse(image.detach(), axis).item() < 0.1 * start


def test_style_skip_and_every_turn_it_off_on_those_steps(clip_spec: str) -> None:
    from pixgen.context import SetupContext
    from pixgen.perceptors import load_perceptor, parse_clip_spec

    spec = parse_clip_spec(clip_spec)
    context = SetupContext(device=torch.device("cpu"), perceptors={spec.key: (load_perceptor(spec), 1.0)})
    loss = LOSSES.get("style")(style_file=STYLE, styleloss_skip=3, styleloss_every=2)
    loss.setup(context)
    render = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    values = [loss(_inputs(render, step=step)).item() for step in range(6)]
    assert values[:3] == [0, 0, 0] and values[3] == 0 and values[5] == 0  # skipped, then odd steps off
    assert values[4] > 0


def test_style_leaves_out_a_clip_without_layers_and_needs_one_with_them() -> None:
    from pixgen.context import SetupContext
    from pixgen.perceptors import load_perceptor, parse_clip_spec

    # the shapes wing's CLIPs: a ViT (open_clip layers) and a CNN timm tower without forward_intermediates
    vit, cnn = (parse_clip_spec(name) for name in ("shapes", "shapes_cnn"))
    towers = {spec.key: (load_perceptor(spec), 1.0) for spec in (vit, cnn)}
    render = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    values = []
    for keys in ((vit.key, cnn.key), (vit.key,)):
        loss = LOSSES.get("style")(style_file=STYLE)
        loss.setup(SetupContext(device=torch.device("cpu"), perceptors={k: towers[k] for k in keys}))
        values.append(loss(_inputs(render)).item())
    assert values[0] == values[1] > 0  # the CNN is left out
    loss = LOSSES.get("style")(style_file=STYLE)
    with pytest.raises(PixgenError, match="needs a CLIP whose image tower gives its layers' features"):
        loss.setup(SetupContext(device=torch.device("cpu"), perceptors={cnn.key: towers[cnn.key]}))


def test_the_new_losses_run_under_bf16_autocast(quick: dict) -> None:
    """``--precision bf16`` renders and cuts in bf16: the losses score in fp32 and their gradients reach the
    drawer (interpolation with antialias has no bf16 backward on CPU, so the style loss must not see bf16)."""
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    losses = ["saturation", "symmetry", "edge", f"style:{STYLE}"]
    run = Run(RunConfig.from_dict({**quick, "drawer": "pixel", "iterations": 2, "cutn": 2, "save_every": 0,
                                   "precision": "bf16", "loss": losses}))
    terms = run.loss_terms()
    assert all(terms[name.split(":")[0]].dtype == torch.float32 for name in losses)
    run.run()
    assert len(run.history) == 2 and all(np.isfinite(run.history))


# ---- each loss moves its own measure in a real run ------------------------------------------------------------

def test_symmetry_run_is_more_symmetric(quick: dict) -> None:
    plain = mirror_mse(_image(_finished(quick, ()))).item()
    mirrored = mirror_mse(_image(_finished(quick, ("symmetry",)))).item()
    print(f"mirror MSE: without {plain:.4f}, with --loss symmetry {mirrored:.4f}")
    assert mirrored < 0.5 * plain


def test_saturation_run_is_more_colourful(quick: dict) -> None:
    plain = colourfulness(_image(_finished(quick, ()))).item()
    vivid = colourfulness(_image(_finished(quick, ("saturation",)))).item()
    vivid3 = colourfulness(_image(_finished(quick, ("saturation@3",)))).item()
    print(f"colourfulness: without {plain:.3f}, with --loss saturation {vivid:.3f}, saturation@3 {vivid3:.3f}")
    assert plain < vivid < vivid3 and vivid3 > 1.12 * plain  # more with a larger weight


def test_edge_run_pulls_the_border_to_the_colour(quick: dict) -> None:
    def border_distance(run: Any) -> float:
        strips = border_strips(_image(run), (5, 5, 5, 5))
        return torch.cat([(s - 1).pow(2).flatten() for s in strips]).mean().item()  # to white

    plain = border_distance(_finished(quick, ()))
    edged = border_distance(_finished(quick, ("edge",)))
    print(f"border MSE to white: without {plain:.4f}, with --loss edge {edged:.4f}")
    assert edged < 0.5 * plain


def test_style_run_moves_the_grams_toward_the_style_image(quick: dict) -> None:
    plain_run = _finished(quick, ())
    styled_run = _finished(quick, (f"style:{STYLE}",))
    meter = LOSSES.get("style")(style_file=STYLE)
    meter.setup(plain_run.setup_context())
    plain, styled = (meter(_inputs(_image(run))).item() for run in (plain_run, styled_run))
    print(f"Gram distance to the style image: without {plain:.4f}, with --loss style {styled:.4f}")
    assert styled < 0.5 * plain
