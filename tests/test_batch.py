"""``pixgen batch``: jobs files, the local and Ray executors, resuming, failures, bad input (tiny real CLIP)."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

import pixgen
from pixgen.batching.jobs import expand, plan_jobs
from pixgen.batching.manifest import MANIFEST, Manifest
from pixgen.batching.worker import NanGuard
from pixgen.cli import main
from pixgen.engine import StepResult
from pixgen.errors import PixgenError

PROMPTS = ["a red circle", "a blue square"]


def spec_for(clip_spec: str, **more: object) -> dict:
    """A jobs mapping of quick CPU runs: 2 prompts x 3 seeds = 6 jobs."""
    return {"clip": [clip_spec], "size": "32x32", "iterations": 4, "cutn": 4, "device": "cpu", "save_every": 0,
            "prompts": PROMPTS, "seeds": 3, **more}


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory, clip_spec: str) -> tuple[Path, list[dict], dict]:
    """One 6-job grid run locally (shared by the tests that read it): (folder, rows, spec)."""
    root = tmp_path_factory.mktemp("grid")
    spec = spec_for(clip_spec)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXGEN_CACHE", str(root / "cache"))
        mp.setenv("PIXGEN_OFFLINE", "1")
        rows = pixgen.batch(spec, out=root / "local", threads=1, progress=False)
    return root / "local", rows, spec


def done_lines(folder: Path) -> list[dict]:
    return [row for row in Manifest(folder).rows() if row["status"] == "done"]


def test_a_six_job_grid_runs_locally_in_one_worker_that_loads_the_model_once(grid) -> None:
    folder, rows, _ = grid
    assert [row["status"] for row in rows] == ["done"] * 6
    assert [(row["prompt"], row["seed"]) for row in rows] == [(p, s) for p in PROMPTS for s in range(3)]
    assert len({row["worker"] for row in rows}) == 1 and {row["loads"] for row in rows} == {1}
    assert all(math.isfinite(row["loss"]) and row["seconds"] > 0 for row in rows)
    images = {(folder / row["id"] / "output.png").read_bytes() for row in rows}
    assert len(images) == 6  # every prompt and seed gave its own image
    for row in rows:
        settings = yaml.safe_load((folder / row["id"] / "settings.yaml").read_text())
        assert settings["prompt"] == row["prompt"] and settings["seed"] == row["seed"]
    assert len(Manifest(folder).rows()) == 6


def test_a_job_folder_is_an_ordinary_run_that_its_settings_reproduce(grid) -> None:
    folder, rows, _ = grid
    job = folder / rows[4]["id"]
    result = pixgen.run(config=yaml.safe_load((job / "settings.yaml").read_text()), save=False, progress=False)
    with Image.open(job / "output.png") as saved:
        assert result.image.tobytes() == saved.convert("RGB").tobytes()


def test_a_rerun_skips_the_finished_jobs(grid) -> None:
    folder, rows, spec = grid
    again = pixgen.batch(spec, out=folder, progress=False)  # nothing to do: no worker starts
    assert again == rows
    assert len(Manifest(folder).rows()) == 6


def test_the_ray_executor_gives_the_same_bytes_as_the_local_one(grid, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    folder, rows, spec = grid
    ray_rows = pixgen.batch(spec, executor="ray", out=tmp_path / "ray", threads=1, progress=False)
    assert [row["id"] for row in ray_rows] == [row["id"] for row in rows]
    assert [row["status"] for row in ray_rows] == ["done"] * 6
    assert len({row["worker"] for row in ray_rows} | {rows[0]["worker"]}) == 2  # a Ray actor, not the local one
    for row in rows:
        local = (folder / row["id"] / "output.png").read_bytes()
        assert (tmp_path / "ray" / row["id"] / "output.png").read_bytes() == local, row["id"]


def test_a_killed_batch_finishes_on_the_rerun_without_redoing_any_job(clip_spec: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump(spec_for(clip_spec, iterations=12)))
    folder = tmp_path / "outputs" / "jobs"
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "pixgen", "batch", str(jobs), "--threads", "1"],
                               cwd=tmp_path, start_new_session=True, stdout=log, stderr=log)
    deadline = time.monotonic() + 600
    while len(done_lines(folder)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its worker, mid-batch
    process.wait()
    log.close()
    first = done_lines(folder)
    assert alive and 2 <= len(first) < 6, (tmp_path / "first.log").read_text()[-2000:]
    stamps = {row["id"]: (folder / row["id"] / "output.png").stat().st_mtime_ns for row in first}

    result = CliRunner().invoke(main, ["batch", str(jobs), "--threads", "1"])
    assert result.exit_code == 0, result.output
    lines = done_lines(folder)
    assert len(lines) == 6 and len({row["id"] for row in lines}) == 6  # each job done exactly once
    assert {row["id"]: (folder / row["id"] / "output.png").stat().st_mtime_ns for row in first} == stamps
    assert not list(folder.glob(".*.partial"))


def test_a_failing_job_is_recorded_and_the_others_finish(clip_spec: str, tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_text("not a picture")
    jobs = tmp_path / "jobs.yaml"
    shared = {k: v for k, v in spec_for(clip_spec, seeds=[1]).items() if k != "prompts"}
    jobs.write_text(yaml.safe_dump({**shared, "jobs": [
        {"prompt": "a red circle"}, {"prompt": "a broken start", "init_image": "broken.png"},
        {"prompt": "a blue square"}]}))
    result = CliRunner().invoke(main, ["batch", str(jobs), "--out", "out", "--threads", "1"])
    assert result.exit_code == 1, result.output
    rows = {row["prompt"]: row for row in Manifest(tmp_path / "out").rows()}
    assert [rows[p]["status"] for p in ("a red circle", "a broken start", "a blue square")] == \
        ["done", "failed", "done"]
    assert "broken.png" in rows["a broken start"]["error"]  # the loader's own one-line message
    assert not (tmp_path / "out" / rows["a broken start"]["id"]).exists()
    assert "2 done, 1 failed" in result.output and "a-broken-start" in result.output
    assert "a broken start" in (tmp_path / "out" / "index.html").read_text()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BAD_INPUTS = {
    "not yaml": ("prompts: [a red circle\nseeds: 2\n", [], ["not valid YAML", "line"]),
    "unknown key": ("prompts: [a]\niteratons: 3\n", [], ["unknown key 'iteratons'", "did you mean iterations"]),
    "empty grid": ("prompts: [a]\ndrawer: []\n", [], ["drawer is an empty list", "at least one value"]),
    "no seeds": ("prompts: [a]\nseeds: 0\n", [], ["seeds: 0 gives no seeds"]),
    "bad job": ("seeds: [1]\njobs:\n- {prompt: a}\n- {prompt: b, cut_zoom: 7}\n", [],
                ["job 2 (prompt 'b', seed 1, cut_zoom 7)", "cut_zoom must be"]),
    "unreachable ray": ("prompts: [a]\n", ["--executor", "ray", "--address", f"127.0.0.1:{_closed_port()}"],
                        ["unreachable", "ray start --head"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_nothing_is_written(case: str, clip_spec: str, tmp_path: Path) -> None:
    text, flags, words = BAD_INPUTS[case]
    if case == "unreachable ray":
        pytest.importorskip("ray")
    shared = f"clip: ['{clip_spec}']\niterations: 2\nsize: 32x32\ndevice: cpu\n"
    (tmp_path / "jobs.yaml").write_text(shared + text)
    result = CliRunner().invoke(main, ["batch", "jobs.yaml", "--out", "out", *flags])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert all(word in lines[0] for word in words), lines[0]
    assert not (tmp_path / "out").exists()


def test_expansion_prompts_seeds_sweeps_grid_and_jobs() -> None:
    spec = {"size": "32x32", "clip": ["a", "b"], "prompts": ["p", "q"], "seeds": 2, "cutn": [4, 8],
            "grid": {"loss": [["smoothness"], []]}}
    jobs = expand(spec)
    assert len(jobs) == 2 * 2 * 2 * 2 and all(job["clip"] == ["a", "b"] for job in jobs)  # clip: a value
    assert [(j["prompt"], j["cutn"], j["loss"], j["seed"]) for j in jobs[:3]] == \
        [("p", 4, ["smoothness"], 0), ("p", 4, ["smoothness"], 1), ("p", 4, [], 0)]
    crossed = expand({"seeds": [5], "jobs": [{"prompt": "x"}, {"prompt": "y", "seed": 9}]}, ["from file"])
    assert crossed == [{"prompt": "x", "seed": 5}, {"prompt": "y", "seed": 9}]  # a job's own settings win


def test_planned_jobs_drop_duplicates_and_name_their_folders(clip_spec: str) -> None:
    jobs = plan_jobs(expand({"clip": [clip_spec], "prompts": ["A red circle!", "A red circle!"], "seeds": [3]}))
    assert len(jobs) == 1 and jobs[0].id.startswith("a-red-circle-s3-")
    with pytest.raises(PixgenError, match=r"^batch, job 1 \(prompt 'x'\): size"):
        plan_jobs([{"clip": [clip_spec], "prompt": "x", "size": "0x5"}])


def test_the_manifest_skips_a_torn_line_and_the_next_row_survives(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    manifest.append({"id": "a", "status": "done"})
    with open(tmp_path / MANIFEST, "a") as handle:
        handle.write('{"id": "b", "sta')  # a crash mid-write
    manifest.append({"id": "c", "status": "failed"})
    assert [row["id"] for row in manifest.rows()] == ["a", "c"]
    assert json.loads((tmp_path / MANIFEST).read_text().splitlines()[0])["status"] == "done"


def test_a_nan_loss_stops_the_job() -> None:
    with pytest.raises(PixgenError, match="loss became nan at iteration 3; try a lower lr"):
        NanGuard().on_step(None, StepResult(3, float("nan"), {}, 0.1))
