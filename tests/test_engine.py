import numpy as np
import pytest
import torch

import pixgen
from pixgen.callbacks import Callback
from pixgen.config import RunConfig, load_yaml
from pixgen.engine import Run
from pixgen.io import read_png_metadata


def test_loss_falls_over_20_cpu_steps(quick: dict) -> None:
    run = Run(RunConfig.from_dict({**quick, "iterations": 20, "cutn": 8, "lr": 0.05}))
    losses = [run.step().loss for _ in range(20)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.01, losses


def test_same_seed_same_image_and_two_runs_do_not_interfere(quick: dict) -> None:
    first = Run(RunConfig.from_dict(quick))
    second = Run(RunConfig.from_dict(quick))
    other = Run(RunConfig.from_dict({**quick, "seed": "another seed"}))
    for _ in range(4):  # interleaved: each run owns its RNG
        first.step()
        other.step()
        second.step()
    assert torch.equal(first.render(), second.render())
    assert not torch.equal(first.render(), other.render())


def test_string_seed_is_reproducible(quick: dict) -> None:
    a = pixgen.run(**{**quick, "seed": "sunrise"}, save=False, progress=False)
    b = pixgen.run(**{**quick, "seed": "sunrise"}, save=False, progress=False)
    assert a.seed == b.seed and np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_outputs_metadata_and_settings_reproduce(quick: dict, tmp_path) -> None:
    result = pixgen.run(**quick, out=str(tmp_path / "out"), progress=False)
    assert result.path == tmp_path / "out" / "output.png"
    assert sorted(result.files) == ["checkpoint.pt", "output.png", "settings.yaml"]
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []
    meta = read_png_metadata(result.path)
    assert meta["pixgen_seed_used"] == "1" and meta["pixgen_version"] == pixgen.__version__
    assert meta["pixgen_prompt"] == "a red circle" and meta["pixgen_iterations"] == "6"
    assert "pixgen_augment" not in meta  # defaults are not repeated
    settings = load_yaml(tmp_path / "out" / "settings.yaml")
    assert settings["seed"] == 1 and "out" not in settings
    again = pixgen.run(config=settings, out=str(tmp_path / "again"), progress=False)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))
    assert len(result.losses) == 6 and result.iterations == 6


def test_default_out_dir_is_dated_and_sequential(quick: dict, tmp_path) -> None:
    first = pixgen.run(**quick, progress=False).path.parent.resolve()
    second = pixgen.run(**quick, progress=False).path.parent.resolve()
    assert first.parent == second.parent == tmp_path / "outputs"
    assert first.name.endswith("_01") and second.name.endswith("_02") and len(first.name) == 11


def test_saves_every_n_steps(quick: dict, tmp_path) -> None:
    seen = []

    class Spy(Callback):
        def on_step(self, run, result):
            seen.append((result.iteration, (tmp_path / "o" / "output.png").exists()))

    pixgen.run(**{**quick, "save_every": 3}, out=str(tmp_path / "o"), callbacks=[Spy()], progress=False)
    assert seen[:4] == [(1, False), (2, False), (3, True), (4, True)]


def test_learning_rate_drops_at_75_percent(quick: dict) -> None:
    run = Run(RunConfig.from_dict({**quick, "iterations": 9, "lr": 0.1}))
    lrs = [run.step().lr for _ in range(9)]
    assert lrs[:5] == [0.1] * 5 and lrs[6:] == pytest.approx([0.01] * 3)


def test_learning_rate_warms_up_from_the_first_step(quick: dict) -> None:
    run = Run(RunConfig.from_dict({**quick, "iterations": 10, "lr": 0.1, "lr_warmup": 40, "lr_drops": [80]}))
    used = []
    for _ in range(10):
        used.append(run.optimizer.param_groups[0]["lr"])  # the lr the coming step will use
        run.step()
    assert used == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01])


def test_batches_accumulate_and_init_image(quick: dict, tmp_path) -> None:
    from pixgen.io import save_png, to_pil

    image = torch.zeros(1, 3, 32, 48)
    image[:, 0] = 1.0
    save_png(to_pil(image), tmp_path / "red.png")
    run = Run(RunConfig.from_dict({**quick, "init_image": str(tmp_path / "red.png"), "batches": 2}))
    assert torch.allclose(run.render(), image, atol=1e-6)
    assert run.step().iteration == 1


def test_interrupt_saves_and_reports(quick: dict, tmp_path) -> None:
    class Stop(Callback):
        def on_step(self, run, result):
            if result.iteration == 2:
                raise KeyboardInterrupt

    result = pixgen.run(**quick, out=str(tmp_path / "o"), callbacks=[Stop()], progress=False)
    assert result.interrupted and result.iterations == 2 and result.path.exists()


def test_several_perceptors_with_weights(quick: dict, tiny_clip) -> None:
    config, weights = tiny_clip
    specs = [f"{config}:{weights}@0.5", f"{config}:random@2"]
    run = Run(RunConfig.from_dict({**quick, "clip": specs}))
    assert [w for _, w in run.perceptors.values()] == [0.5, 2.0]
    assert list(run.cutouts) == [32]  # same input size: one shared cutout batch
    assert run.step().loss > 0


def test_cut_zoom_sets_the_share_of_zoom_cutouts(quick: dict) -> None:
    wide_only = Run(RunConfig.from_dict({**quick, "cutn": 10, "cut_zoom": 0.0}))
    mostly_zoom = Run(RunConfig.from_dict({**quick, "cutn": 10, "cut_zoom": 0.8}))
    assert [c.n_zoom for c in wide_only.cutouts.values()] == [0]
    assert [c.n_zoom for c in mostly_zoom.cutouts.values()] == [8]
    assert wide_only.step().loss > 0
