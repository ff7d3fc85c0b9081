"""The shapes scene denoiser, its corruptions, its training script and ``--loss denoise``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pixgen.context import SetupContext
from pixgen.errors import PixgenError
from pixgen.losses.base import LossInput
from pixgen.registry import LOSSES
from pixgen.shapes.denoiser import ShapesDenoiser, caption_tokens, corrupt, load_denoiser, round_corners
from pixgen.shapes.render import random_batch, render_scenes
from pixgen.shapes.world import Scene, Shape

CPU = SetupContext(torch.device("cpu"))

ROOT = Path(__file__).resolve().parent.parent


def scenes(n: int, seed: int) -> torch.Tensor:
    return random_batch(n, 64, torch.Generator().manual_seed(seed))[0]


def test_corrupt_is_seeded_in_range_and_leaves_some_scenes_clean() -> None:
    clean = scenes(32, 0)
    a, b = corrupt(clean, torch.Generator().manual_seed(1)), corrupt(clean, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == clean.shape and 0 <= a.min() and a.max() <= 1
    changed = (a - clean).abs().flatten(1).amax(dim=1) > 0
    assert 0 < changed.sum() < 32  # about a fifth stay as they are


def test_round_corners_cuts_corners_and_keeps_edges_and_circles() -> None:
    square, circle = (Scene("black", (Shape(kind, "yellow", 0.5, 0.5, 0.25),)) for kind in ("square", "circle"))
    images = render_scenes([square, circle], 64)
    rounded = round_corners(images, torch.tensor([2.0, 2.0]))
    yellow = ((rounded - images[0, :, 32, 32].view(1, 3, 1, 1)).abs().sum(1) < 0.3).float()  # (2, 64, 64)
    assert yellow[0, 16, 16] == 0 and yellow[0, 16, 32] == 1 and yellow[0, 32, 32] == 1  # corner gone, edge kept
    inside = ((images - images[0, :, 32, 32].view(1, 3, 1, 1)).abs().sum(1) < 0.3).float()
    iou = (yellow[1] * inside[1]).sum() / torch.maximum(yellow[1], inside[1]).sum()
    assert iou > 0.9 and 0 <= rounded.min() and rounded.max() <= 1


def test_denoiser_keeps_the_shape_and_range_of_its_input() -> None:
    out = ShapesDenoiser()(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 3, 64, 64) and 0 <= out.min() and out.max() <= 1


def test_the_built_in_denoiser_repairs_damaged_scenes_and_keeps_clean_ones() -> None:
    from pixgen.shapes.models import denoiser_path

    model = load_denoiser(denoiser_path())
    clean = scenes(32, 123)
    damaged = corrupt(clean, torch.Generator().manual_seed(5))
    with torch.no_grad():
        repaired, kept = model(damaged), model(clean)
    assert (repaired - clean).abs().mean() < 0.6 * (damaged - clean).abs().mean()
    assert (kept - clean).abs().mean() < 0.02


def weights_file(tmp_path: Path, conditioned: bool = False) -> Path:
    path = tmp_path / ("cdn.pt" if conditioned else "dn.pt")
    torch.manual_seed(0)
    model = ShapesDenoiser(conditioned=conditioned)
    if conditioned:  # FiLM starts at the identity; give it weights so that captions matter
        for layer in model.film:
            torch.nn.init.normal_(layer.weight, std=0.05)
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    return path


def test_a_conditioned_denoiser_reads_the_caption_and_needs_it(tmp_path) -> None:
    model = load_denoiser(weights_file(tmp_path, conditioned=True))
    x = scenes(2, 0)
    tokens = caption_tokens(["a red circle", "a red square"])
    with torch.no_grad():
        both, one = model(x, tokens), model(x, tokens[:1])
        assert both.shape == x.shape and not torch.allclose(both[0], both[1])  # same image, other caption
        assert torch.allclose(one[0], both[0], atol=1e-6)  # one caption serves the whole batch
    with pytest.raises(PixgenError, match="conditioned on a caption"):
        model(x)
    assert not load_denoiser(weights_file(tmp_path)).conditioned


def test_denoise_loss_pulls_the_render_to_the_denoised_render(tmp_path) -> None:
    loss = LOSSES.get("denoise")(denoiser=str(weights_file(tmp_path)))
    loss.setup(CPU)
    render = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    value = loss(LossInput(render, {}, {}, step=0, total_steps=10))
    value.backward()
    with torch.no_grad():
        target = loss.model(render)
        assert value.item() == pytest.approx(((render - target) ** 2).mean().item(), rel=1e-5)
        assert torch.allclose(render.grad, 2 * (render - target) / render.numel(), atol=1e-7)


def test_denoise_loss_waits_for_its_start_and_takes_any_size(tmp_path) -> None:
    loss = LOSSES.get("denoise")(denoiser=str(weights_file(tmp_path)), denoise_start=0.5)
    render = torch.rand(1, 3, 32, 48).requires_grad_()
    assert loss(LossInput(render, {}, {}, step=4, total_steps=10)).item() == 0.0
    late = loss(LossInput(render, {}, {}, step=5, total_steps=10))
    late.backward()
    assert late.item() > 0 and render.grad.abs().sum() > 0


def test_denoise_loss_errors_are_clear(tmp_path) -> None:
    with pytest.raises(PixgenError, match=r"denoise_start must be in \[0, 1\)"):
        LOSSES.get("denoise")(denoise_start=1.0)
    with pytest.raises(PixgenError, match="no denoiser weights at .*missing.pt"):
        LOSSES.get("denoise")(denoiser=str(tmp_path / "missing.pt")).setup(CPU)
    torn = tmp_path / "torn.pt"
    torn.write_bytes(b"not a checkpoint")
    with pytest.raises(PixgenError, match="is not a shapes denoiser checkpoint.*train_shapes_denoiser.py"):
        LOSSES.get("denoise")(denoiser=str(torn)).setup(CPU)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)  # a readable state dict of some other model
    with pytest.raises(PixgenError, match="is not a shapes denoiser checkpoint.*train_shapes_denoiser.py"):
        LOSSES.get("denoise")(denoiser=str(foreign)).setup(CPU)


def test_denoise_loss_reads_the_main_positive_prompt(quick: dict, tmp_path) -> None:
    from pixgen.config import RunConfig
    from pixgen.engine import Run
    from pixgen.prompts import main_text, parse_prompts

    def main_prompt(text: str | None) -> str:
        return main_text(parse_prompts(text))

    assert main_prompt("a red circle | a blue square:2 | a green square:-3") == "a blue square"
    assert main_prompt(None) == "" and main_prompt("a red circle:-1") == ""
    settings = {**quick, "prompt": "a red circle:0.5 | a blue square", "loss": ["denoise"],
                "denoiser": str(weights_file(tmp_path, conditioned=True))}
    loss = Run(RunConfig.from_dict(settings)).losses["denoise"][0]
    assert torch.equal(loss.tokens, caption_tokens(["a blue square"]))
    assert Run(RunConfig.from_dict({**settings, "denoiser": str(weights_file(tmp_path))})).losses[
        "denoise"][0].tokens is None


def test_denoise_loss_in_a_run(quick: dict, tmp_path) -> None:
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    run = Run(RunConfig.from_dict({**quick, "loss": ["denoise:0.5@50"], "denoiser": str(weights_file(tmp_path))}))
    assert run.losses["denoise"][1] == 50 and run.losses["denoise"][0].start == 0.5
    terms = [run.step().terms["denoise"] for _ in range(4)]  # 6 iterations: waits for steps 0-2
    assert terms[:3] == [0.0, 0.0, 0.0] and terms[3] > 0


@pytest.mark.slow  # training-script runs
@pytest.mark.parametrize("conditioned", [False, True])
def test_training_script_writes_weights_the_loss_loads(tmp_path, conditioned: bool) -> None:
    start = (["--conditioned", "--init-weights", str(weights_file(tmp_path))] if conditioned
             else ["--clean-share", "0.5", "--vqgan-share", "0.5", "--round-share", "1", "--self-weight", "1",
                   "--fixed-point-after", "0.5"])  # step 0 plain, step 1 with the fixed-point terms
    cmd = [sys.executable, str(ROOT / "scripts" / "train_shapes_denoiser.py"), "--steps", "2", "--minutes", "0",
           "--batch", "4", "--out", str(tmp_path), *start]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["steps"] == 2 and report["mae_input"] > 0 and report["mae_output"] > 0
    kept, total = map(int, report["true_scenes_kept_3x"].split("/"))
    assert total == 48 and 0 <= kept <= total
    loss = LOSSES.get("denoise")(denoiser=str(tmp_path / "shapes_denoiser.pt"))
    loss.setup(CPU)
    assert loss.model.conditioned == conditioned


def test_training_script_refuses_a_foreign_start(tmp_path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    cmd = [sys.executable, str(ROOT / "scripts" / "train_shapes_denoiser.py"), "--steps", "1", "--minutes", "0",
           "--batch", "2", "--out", str(tmp_path), "--init-weights", str(foreign)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "not a shapes denoiser checkpoint" in done.stderr
