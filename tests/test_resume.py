"""Issue 35, resume: a run stopped by Ctrl-C, killed with ``kill -9`` or stopped at any point inside a step,
then resumed, gives the uninterrupted run's image bit for bit (CPU, one thread everywhere); an extension keeps
the first length's schedules; a missing, truncated or foreign checkpoint is one line and changes nothing."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import pixgen
from pixgen.callbacks import Callback
from pixgen.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")  # the subprocesses run with one thread too: same floats


def _pixels(folder: Path) -> np.ndarray:
    with Image.open(folder / "output.png") as image:
        return np.asarray(image.convert("RGB"))


def _state(folder: Path) -> dict:
    return torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)


def assert_same_run(folder: Path, reference: Path) -> None:
    """The same final image, drawer parameters, optimizer moments and loss history."""
    assert np.array_equal(_pixels(folder), _pixels(reference))
    got, want = _state(folder), _state(reference)
    assert got["iteration"] == want["iteration"] and got["history"] == want["history"]
    assert got["drawer"].keys() == want["drawer"].keys()
    assert all(torch.equal(got["drawer"][k], want["drawer"][k]) for k in want["drawer"])
    for key, moments in want["optimizer"]["state"].items():
        assert all(torch.equal(got["optimizer"]["state"][key][m], moments[m]) for m in moments)


def _settings(quick: dict, **changes) -> dict:
    return {**quick, "seed": 3, "iterations": 30, **changes}


def _cli_args(settings: dict, out: Path) -> list[str]:
    return ["run", "--prompt", settings["prompt"], "--clip", settings["clip"][0], "--size", settings["size"],
            "--cutn", str(settings["cutn"]), "--seed", str(settings["seed"]), "--iterations",
            str(settings["iterations"]), "--save-every", str(settings["save_every"]), "--device", "cpu",
            "--out", str(out)]


class _Child:
    """``python -m pixgen ARGS`` (one thread) with its stderr collected by a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "pixgen", *args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.text = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while chunk := self.proc.stderr.read(1):
            self.text += chunk

    def wait_until(self, done, what: str, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while not done():
            assert self.proc.poll() is None, f"pixgen ended before {what} ({self.proc.returncode}):\n{self.text}"
            assert time.monotonic() < end, f"no {what} in:\n{self.text}"
            time.sleep(0.005)


def test_ctrl_c_then_resume_gives_the_uninterrupted_image(quick: dict, tmp_path: Path) -> None:
    settings = _settings(quick)
    pixgen.run(**settings, out=str(tmp_path / "ref"), progress=False)
    out = tmp_path / "stopped"
    child = _Child(_cli_args(settings, out), tmp_path)
    child.wait_until(lambda: re.search(r"\b([3-9]|\d\d+)/30\b", child.text), "three steps")
    child.proc.send_signal(signal.SIGINT)
    assert child.proc.wait(timeout=120) == 130, child.text
    stopped_at = _state(out)["iteration"]
    assert 0 < stopped_at < 30, child.text
    resumed = CliRunner().invoke(main, ["run", "--resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert f"Resuming {out} at iteration {stopped_at} of 30" in resumed.stderr
    assert_same_run(out, tmp_path / "ref")


def test_kill_9_then_resume_gives_the_uninterrupted_image(quick: dict, tmp_path: Path) -> None:
    settings = _settings(quick)
    pixgen.run(**settings, out=str(tmp_path / "ref"), progress=False)
    out = tmp_path / "killed"
    child = _Child(_cli_args(settings, out), tmp_path)
    child.wait_until(lambda: (out / "checkpoint.pt").exists(), "checkpoint.pt")
    child.proc.kill()  # SIGKILL: no handler runs, the lock file and perhaps a temporary file stay behind
    child.proc.wait(timeout=60)
    assert (out / ".pixgen.lock").exists() and 0 < _state(out)["iteration"] < 30
    result = pixgen.run(resume=out, progress=False)
    assert result.iterations == 30 and not result.interrupted
    assert_same_run(out, tmp_path / "ref")
    assert not (out / ".pixgen.lock").exists()


class _StopInside(Callback):
    """Raises KeyboardInterrupt (what Ctrl-C raises) inside step ``step``: in its render (before the update)
    or in the drawer's ``project_`` (inside the update)."""

    def __init__(self, step: int, where: str) -> None:
        self.step, self.where, self.fired = step, where, False

    def on_start(self, run) -> None:
        name = "render" if self.where == "render" else "project_"
        original = getattr(run.drawer, name)

        def trap(*args, **kwargs):
            if run.iteration + 1 == self.step and torch.is_grad_enabled() and not self.fired:
                self.fired = True
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        setattr(run.drawer, name, trap)


@pytest.mark.parametrize("where", ["render", "update"])
def test_a_stop_anywhere_inside_a_step_resumes_exactly(quick: dict, tmp_path: Path, where: str) -> None:
    pixgen.run(**quick, out=str(tmp_path / "ref"), progress=False)
    stopped = pixgen.run(**quick, out=str(tmp_path / "run"), progress=False, callbacks=[_StopInside(5, where)])
    assert stopped.interrupted
    # before the update the step never happened (checkpoint at 4); inside it, the last whole one (also 4)
    assert _state(tmp_path / "run")["iteration"] == 4
    pixgen.run(resume=tmp_path / "run", progress=False)
    assert_same_run(tmp_path / "run", tmp_path / "ref")


def test_resume_continues_the_start_kept_from_several(quick: dict, tmp_path: Path) -> None:
    settings = {**quick, "iterations": 8, "starts": 2, "start_trial": 25}
    reference = pixgen.run(**settings, out=str(tmp_path / "ref"), progress=False)
    pixgen.run(**settings, out=str(tmp_path / "run"), progress=False, callbacks=[_StopInside(5, "render")])
    assert _state(tmp_path / "run")["settings"]["starts"] == 1  # the kept start is a plain run of its own seed
    result = pixgen.run(resume=tmp_path / "run", progress=False)
    assert result.seed == reference.seed
    assert_same_run(tmp_path / "run", tmp_path / "ref")


class _Lrs(Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_step(self, run, result) -> None:
        self.lrs.append(result.lr)


def test_extending_a_finished_run_keeps_its_schedule(quick: dict, tmp_path: Path) -> None:
    first, more = _Lrs(), _Lrs()
    pixgen.run(**quick, lr_drops=[50], out=str(tmp_path / "run"), progress=False, callbacks=[first])
    state = _state(tmp_path / "run")
    assert state["format"] == 1 and state["iteration"] == 6 and "out" not in state["settings"]
    assert set(state["drawer"]) == {"colors"}  # the drawer's own parameters only, never a frozen model
    size = state["drawer"]["colors"].numel() * 4  # float32: the parameters, Adam's two moments, the RNG's state
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_size < 3 * size + 12_000
    result = pixgen.run(resume=tmp_path / "run", iterations=9, progress=False, callbacks=[more])
    assert result.iterations == 9 and len(result.losses) == 9
    assert first.lrs[-1] < first.lrs[0] and more.lrs == [first.lrs[-1]] * 3  # the drop at 50 % of 6 stays
    assert "schedule_iterations: 6" in (tmp_path / "run" / "settings.yaml").read_text()
    # the settings.yaml it writes makes the same image from scratch
    again = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "run" / "settings.yaml"), "--out",
                                      str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert_same_run(tmp_path / "run", tmp_path / "again")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_refusals_are_one_line_and_change_nothing(quick: dict, tmp_path: Path) -> None:
    done, other = tmp_path / "done", tmp_path / "other"
    pixgen.run(**quick, out=str(done), progress=False)
    pixgen.run(**{**quick, "prompt": "a blue square"}, out=str(other), progress=False)
    truncated, foreign, bare = tmp_path / "truncated", tmp_path / "foreign", tmp_path / "bare"
    for folder in (truncated, foreign, bare):
        shutil.copytree(done, folder)
    data = (done / "checkpoint.pt").read_bytes()
    (truncated / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    shutil.copy(other / "checkpoint.pt", foreign / "checkpoint.pt")
    (bare / "checkpoint.pt").unlink()
    cases = {
        (str(tmp_path / "nowhere"),): f"cannot resume {tmp_path / 'nowhere'}: no such folder",
        (str(bare),): f"cannot resume {bare}: it holds no checkpoint.pt",
        (str(truncated),): f"cannot resume {truncated}: {truncated / 'checkpoint.pt'} is truncated or corrupt",
        (str(foreign),): f"cannot resume {foreign}: its checkpoint.pt was written by a run with other settings "
                         "than its settings.yaml (prompt differ)",
        (str(done), "--prompt", "x"): f"resume continues the run in {done} with its own settings; only "
                                      "iterations, save_every, device may be given with it (got prompt)",
        (str(done),): f"the run in {done} is finished (6 of 6 iterations); give --iterations above 6",
        (str(done), "--iterations", "4"): f"the run in {done} has done 6 iterations; give --iterations above 6",
    }
    before = {folder: _files(folder) for folder in (done, truncated, foreign, bare)}
    for args, message in cases.items():
        result = CliRunner().invoke(main, ["run", "--resume", *args])
        assert result.exit_code == 1, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and errors[0].startswith(f"Error: {message}"), result.stderr
        assert "Traceback" not in result.output
    assert {folder: _files(folder) for folder in before} == before


@pytest.fixture(scope="module")
def tiny_vqgan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from vqgan_fixtures import write_tiny_vqgan

    config, checkpoint = write_tiny_vqgan(tmp_path_factory.mktemp("vqgan"))
    return {"drawer": "vqgan", "vqgan_config": str(config), "vqgan_checkpoint": str(checkpoint)}


@pytest.mark.parametrize("drawer", [{"drawer": "pixel:hex"}, {"drawer": "vector", "strokes": 12},
                                    {"drawer": "line_sketch", "strokes": 12}, "vqgan"],
                         ids=["pixel_hex", "vector", "line_sketch", "vqgan"])
def test_every_drawer_continues_exactly_from_its_state(drawer, quick: dict, tiny_vqgan: dict) -> None:
    """Run.state_dict() through torch.save and torch.load(weights_only=True) into a fresh Run: the next steps
    are the uninterrupted run's (init_latent_weight: the losses keep their references to the parameters)."""
    import io

    from pixgen import Run, RunConfig

    settings = {**quick, **(tiny_vqgan if drawer == "vqgan" else drawer), "size": "32x32", "init_latent_weight": 0.5}
    config = RunConfig.from_dict(settings)
    reference, first = Run(config), Run(config)
    for _ in range(6):
        reference.step()
    for _ in range(3):
        first.step()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    second = Run(config)
    second.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    for _ in range(3):
        second.step()
    assert torch.equal(second.render(), reference.render()) and second.history == reference.history
    want = reference.drawer.trainable_state()
    assert all(torch.equal(second.drawer.trainable_state()[k], want[k]) for k in want)
