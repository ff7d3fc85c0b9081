from __future__ import annotations

import pytest
import torch

from pixgen.errors import PixgenError
from pixgen.losses.base import LossInput
from pixgen.registry import LOSSES


def inputs(render: torch.Tensor, cutouts: dict | None = None) -> LossInput:
    return LossInput(render=render, cutouts=cutouts or {}, embeds={}, step=0, total_steps=1)


@pytest.mark.parametrize("kind", ["default", "clipped", "log"])
def test_smoothness_prefers_one_blob_to_speckle(kind: str) -> None:
    loss = LOSSES.get("smoothness")(kind=kind)
    flat = torch.full((1, 3, 32, 32), 0.5)
    blob = flat.clone()
    blob[..., 8:24, 8:24] = 1.0
    speckle = flat.clone()
    speckle[..., ::4, ::4] = 1.0  # 64 dots: the same colours, much more outline
    values = [loss(inputs(x)).item() for x in (flat, blob, speckle)]
    assert values[0] == pytest.approx(0, abs=1e-3) and values[0] < values[1] < values[2]


def test_smoothness_reads_the_cutouts_and_its_gradient_flattens_them() -> None:
    loss = LOSSES.get("smoothness")()
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)).requires_grad_()
    opt = torch.optim.Adam([image], lr=0.05)
    first = None
    for _ in range(30):
        value = loss(inputs(image.detach(), {16: image.expand(4, -1, -1, -1)}))
        first = first if first is not None else value.item()
        opt.zero_grad()
        value.backward()
        opt.step()
    assert value.item() < 0.5 * first


def test_smoothness_options_are_checked() -> None:
    with pytest.raises(PixgenError, match="unknown smoothness kind 'wavy'"):
        LOSSES.get("smoothness")(kind="wavy")
    with pytest.raises(PixgenError, match="cap must be > 0"):
        LOSSES.get("smoothness")(cap=0)


def test_loss_spec_errors_come_before_any_model_loads() -> None:
    from pixgen.plan import plan_run

    with pytest.raises(PixgenError, match=r"loss 'smoothness' takes at most 1 ':' argument"):
        plan_run({"prompt": "x", "clip": ["nope-not-a-model"], "loss": ["smoothness:log:3"]})


def test_smoothness_from_a_run_spec(quick: dict) -> None:
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    run = Run(RunConfig.from_dict({**quick, "loss": ["smoothness:log@2.5"]}))
    loss, weight = run.losses["smoothness"]
    assert (loss.kind, weight) == ("log", 2.5)
    assert set(run.loss_terms()) == {"clip", "smoothness"}


def test_palette_loss_is_zero_on_palette_images_and_positive_off_them() -> None:
    loss = LOSSES.get("palette")(palette="[black, white, #f00]")
    on = torch.zeros(4, 3, 8, 8)
    on[:, 0, :4] = 1.0  # red and black
    on[1:, :, 4:] = 1.0  # white
    on.requires_grad_()
    value = loss(inputs(on[:1].detach(), {8: on}))
    value.backward()
    assert value.item() == 0 and torch.isfinite(on.grad).all()
    grey = torch.full((4, 3, 8, 8), 0.25)  # distance sqrt(3) / 4 to black, in every pixel
    assert loss(inputs(grey[:1], {8: grey})).item() == pytest.approx(3**0.5 / 4 * 4 / 10)  # pixray: x cutn / 10
    assert loss(inputs(grey[:1])).item() == pytest.approx(3**0.5 / 4 / 10)  # no cutouts: the render


def test_palette_loss_gradient_moves_pixels_to_the_palette() -> None:
    loss = LOSSES.get("palette")(palette="[black, white]")
    image = torch.full((2, 3, 4, 4), 0.3, requires_grad=True)
    opt = torch.optim.SGD([image], lr=0.5)
    first = loss(inputs(image[:1].detach(), {4: image}))
    for _ in range(5):
        opt.zero_grad()
        loss(inputs(image[:1].detach(), {4: image})).backward()
        opt.step()
    assert loss(inputs(image[:1].detach(), {4: image})).item() < first.item()
