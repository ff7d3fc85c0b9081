"""Progress videos: ``--video`` keeps frames as the run goes and writes progress.mp4 (or .gif) with exactly those
frames; ``pixgen video DIR`` assembles the frames a killed run left; bad video settings are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import pixgen
from pixgen.cli import main
from pixgen.errors import PixgenError
from pixgen.video import frame_files, write_video


def mp4_frames(path: Path) -> int:
    reader = imageio.get_reader(path)
    try:
        return reader.count_frames()
    finally:
        reader.close()


def test_a_run_keeps_its_frames_and_writes_an_mp4_of_them(quick: dict) -> None:
    result = pixgen.run(**{**quick, "iterations": 12}, video=True, video_every=5, out="run", progress=False)
    frames = frame_files("run")
    assert [f.name for f in frames] == ["00001.png", "00002.png", "00003.png", "00004.png"]  # steps 0, 5, 10, 12
    assert [Image.open(f).text["pixgen_iteration"] for f in frames] == ["0", "5", "10", "12"]
    assert np.array_equal(np.asarray(Image.open(frames[-1])), np.asarray(result.image))
    assert result.files["progress.mp4"].samefile("run/progress.mp4")
    assert mp4_frames(Path("run/progress.mp4")) == 4


def test_odd_sides_are_padded_and_the_frame_count_kept(tmp_path: Path) -> None:
    frames = []
    for i in range(7):
        image = Image.new("RGB", (33, 21), (30 * i, 0, 255 - 30 * i))
        frames.append(tmp_path / f"{i + 1:05d}.png")
        image.save(frames[-1])
    video = write_video(frames, tmp_path / "out.mp4", fps=8)
    reader = imageio.get_reader(video)
    assert reader.get_meta_data()["size"] == (34, 22)  # one edge column and row added, never scaled
    first = reader.get_data(0)
    reader.close()
    assert mp4_frames(video) == 7
    assert abs(int(first[10, 10, 2]) - 255) < 8  # the colours survive the encoding
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_gif_instead(quick: dict) -> None:
    pixgen.run(**{**quick, "iterations": 6}, video=True, video_every=2, video_format="gif", fps=5, out="run",
               progress=False)
    assert not Path("run/progress.mp4").exists()
    assert len(imageio.mimread("run/progress.gif")) == len(frame_files("run")) == 4
    assert Image.open("run/progress.gif").info["duration"] == 200


def test_a_second_run_in_the_folder_replaces_the_frames(quick: dict) -> None:
    pixgen.run(**{**quick, "iterations": 6}, video=True, video_every=1, out="run", progress=False)
    pixgen.run(**{**quick, "iterations": 2}, video=True, video_every=1, out="run", overwrite=True, progress=False)
    assert len(frame_files("run")) == 3
    assert mp4_frames(Path("run/progress.mp4")) == 3


def test_pixgen_video_assembles_what_a_killed_run_left(quick: dict, tmp_path: Path) -> None:
    """A run killed with SIGKILL (no final save) leaves whole frames; ``pixgen video`` makes the video later."""
    command = [sys.executable, "-m", "pixgen", "run", "--prompt", "a red circle", "--clip", quick["clip"][0],
               "--size", "48x32", "--cutn", "2", "--iterations", "100000", "--device", "cpu", "--video",
               "--video-every", "1", "--fps", "6", "--out", "run"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "run/frames/00004.png").exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "run/progress.mp4").exists()
    kept = len(frame_files(tmp_path / "run"))
    assert kept >= 4
    result = CliRunner().invoke(main, ["video", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("progress.mp4")
    assert mp4_frames(tmp_path / "run/progress.mp4") == kept
    assert imageio.get_reader(tmp_path / "run/progress.mp4").get_meta_data()["fps"] == 6  # from settings.yaml
    result = CliRunner().invoke(main, ["video", str(tmp_path / "run"), "--format", "gif", "--fps", "10"])
    assert result.exit_code == 0 and len(imageio.mimread(tmp_path / "run/progress.gif")) <= kept


@pytest.mark.parametrize(("flags", "message"), [
    (["--fps", "0"], "fps"),
    (["--fps", "-2"], "fps"),
    (["--fps", "inf"], "fps"),
    (["--video-format", "avi"], "video format"),
    (["--video-every", "0"], "video_every"),
])
def test_bad_video_settings_are_one_line(quick: dict, flags: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["run", "--prompt", "x", "--clip", quick["clip"][0], "--video", "--out", "out",
                                       *flags])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not Path("out").exists()


def test_pixgen_video_without_frames_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder in ("empty", "missing"):
        result = CliRunner().invoke(main, ["video", folder])
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    with pytest.raises(PixgenError, match="fps"):
        write_video([tmp_path / "x.png"], tmp_path / "v.mp4", fps=0)
