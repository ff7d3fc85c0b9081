"""Steering a run with pictures and with its loss settings: image prompts, target images, init weights, stops that
work for negative prompts, optimizers, auto-stop, --aspect alone. Tiny real open_clip model, CPU."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from pixgen.cli import main
from pixgen.config import OPTIMIZERS, RunConfig
from pixgen.engine import Run
from pixgen.losses.functional import spherical_dist, stopped
from pixgen.perceptors import load_perceptor, parse_clip_spec


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    """A 48x32 picture unlike the pixel drawer's start: a yellow disc on purple, with a green bar."""
    yy, xx = np.mgrid[0:32, 0:48]
    image = np.zeros((32, 48, 3), np.uint8)
    image[:] = (110, 20, 140)
    image[(yy - 16) ** 2 + (xx - 18) ** 2 < 100] = (250, 220, 30)
    image[24:30, 30:46] = (20, 200, 60)
    path = tmp_path / "picture.png"
    Image.fromarray(image).save(path)
    return path


def embedding_distance(run: Run, picture: Path, clip_spec: str) -> float:
    """Distance between the CLIP embeddings of the whole render and the whole picture (tiny CLIP, 32 px)."""
    from pixgen.io import load_image

    perceptor = load_perceptor(parse_clip_spec(clip_spec))
    with torch.no_grad():
        both = torch.cat([run.render(), load_image(picture, run.size)])
        emb = perceptor.encode_image(F.interpolate(both, size=(32, 32), mode="area"))
    return float(spherical_dist(emb[0], emb[1]))


def fall(settings: dict, picture: Path, clip_spec: str, steps: int = 20) -> float:
    """How much the render's embedding moves towards the picture's over ``steps`` steps."""
    run = Run(RunConfig.from_dict({**settings, "iterations": steps}))
    before = embedding_distance(run, picture, clip_spec)
    for _ in range(steps):
        run.step()
    return before - embedding_distance(run, picture, clip_spec)


@pytest.mark.parametrize("option", ["image_prompt", "target_image"])
def test_a_picture_pulls_the_image_towards_itself(option: str, quick: dict, picture: Path, clip_spec: str) -> None:
    """Seed 2 starts far from the picture (distance 0.038 with the tiny CLIP): the picture alone brings it to
    about 0.005 in 20 steps, a text prompt alone to about 0.023 (measured)."""
    base = {**quick, "lr": 0.03, "seed": 2}
    with_picture = fall({**base, "prompt": None, option: [f"{picture}:2"]}, picture, clip_spec)
    without = fall(base, picture, clip_spec)
    assert with_picture > 0 and with_picture > without + 0.005, (with_picture, without)


def test_an_image_prompt_alone_is_enough_and_globs_expand(quick: dict, picture: Path) -> None:
    (picture.parent / "second.png").write_bytes(picture.read_bytes())
    run = Run(RunConfig.from_dict({**quick, "prompt": None, "image_prompt": [str(picture.parent / "*.png")]}))
    assert sorted(run.losses) == ["image_prompt:0", "image_prompt:1"]
    assert np.isfinite(run.step().loss)


def test_init_weight_keeps_the_render_near_the_init_image(quick: dict, picture: Path) -> None:
    def distance(weight: float) -> float:
        run = Run(RunConfig.from_dict({**quick, "init_image": str(picture), "init_weight": weight, "lr": 0.05,
                                       "iterations": 15}))
        target = run.losses["init"][0].original if weight else None
        for _ in range(15):
            run.step()
        from pixgen.io import fit, load_image

        target = fit(load_image(picture), run.size) if target is None else fit(target, run.size)
        return float(F.mse_loss(run.render(), target))

    assert distance(20.0) < 0.5 * distance(0.0)


def test_init_latent_weight_keeps_the_drawer_near_its_start(quick: dict) -> None:
    def moved(weight: float) -> float:
        run = Run(RunConfig.from_dict({**quick, "init_latent_weight": weight, "lr": 0.05, "iterations": 15}))
        start = [p.detach().clone() for p in run.drawer.parameters()]
        for _ in range(15):
            run.step()
        return sum(float((p.detach() - s).pow(2).mean()) for p, s in zip(run.drawer.parameters(), start, strict=True))

    assert moved(1000.0) < 0.5 * moved(0.0)


def test_stops_cut_the_gradient_past_the_stop_for_both_signs() -> None:
    dists = torch.tensor([[0.5, 0.5, 1.2, 1.2]], requires_grad=True)
    weights, stops = torch.tensor([1.0, -1.0, 1.0, -1.0]), torch.tensor([0.9, 0.9, 0.9, -0.9])
    out = stopped(dists, weights, stops)
    out.sum().backward()
    assert out[0].tolist() == pytest.approx([0.5, -0.5, 1.2, -1.2])  # values are the signed distances
    # pulled one is close enough (stops); pushed one is too close (pushes); far pulled one pulls; far pushed stops
    assert dists.grad.tolist() == [[0.0, -1.0, 1.0, 0.0]]
    never = stopped(dists, weights, torch.full((4,), float("-inf")))
    assert torch.equal(never, dists * weights.sign())


def test_a_negative_prompt_with_a_stop_changes_the_image_until_past_the_stop(quick: dict) -> None:
    """pixray's ``blurry:-1:0.9`` never had a gradient; here it pushes while closer than 0.9 and stops after."""

    def final(prompt: str) -> torch.Tensor:
        run = Run(RunConfig.from_dict({**quick, "prompt": prompt}))
        run.run()
        return run.render()

    past = final("a red circle | blurry:-1:0.01")  # farther than 0.01 from the start: never pushes
    assert torch.equal(final("a red circle | blurry:-1:0.02"), past)  # another stop it is past: same image
    pushed = final("a red circle | blurry:-1:9")  # always closer than 9: pushes every step
    assert not torch.equal(pushed, past)
    assert torch.equal(final("a red circle | blurry:-1:-9"), pushed)  # pixray's spelling of the same stop


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_keeps_the_drawers_groups(name: str, quick: dict) -> None:
    run = Run(RunConfig.from_dict({**quick, "drawer": "vector", "optimizer": name, "strokes": 4}))
    assert type(run.optimizer).__name__ == OPTIMIZERS[name]
    assert [g["lr"] for g in run.optimizer.param_groups] == [g["lr"] for g in run.drawer.param_groups(run.lr)]
    assert np.isfinite(run.step().loss)


def test_auto_stop_ends_a_run_that_no_longer_improves(quick: dict, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pixgen")
    run = Run(RunConfig.from_dict({**quick, "lr": 1e-9, "iterations": 60, "auto_stop": 3}))
    result = run.run()
    assert result.iterations < 60 and "has not improved for 3 steps" in caplog.text
    best = int(np.argmin(result.losses))
    assert len(result.losses) - 1 - best == 3  # stopped exactly N steps after the best one


def test_aspect_alone_applies_to_the_default_size() -> None:
    assert RunConfig.from_dict({"aspect": "square"}).dimensions() == (288, 288)
    assert RunConfig.from_dict({"aspect": "portrait"}).dimensions() == (256, 320)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image-prompt", "missing.png"], "image-prompt file missing.png does not exist"),
        (["--target-image", "nothing/*.png"], "--target-image 'nothing/*.png' matches no file"),
        (["--image-prompt", "empty.png"], "empty file"),
        (["--prompt", "a cat:nan"], "finite"),
        (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'; choose one of: adam"),
        (["--init-weight", "1"], "give --init-image too"),
        (["--size", "64x64", "--aspect", "square"], "give --size or --aspect"),
    ],
)
def test_bad_steering_input_is_one_line_before_any_model_loads(args: list[str], message: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    monkeypatch.setattr("pixgen.engine.load_perceptors", lambda *a: pytest.fail("a model was loaded"))
    result = CliRunner().invoke(main, ["run", "--prompt", "x", "--clip", "nope:random", "--out", "o", *args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "o").exists()
