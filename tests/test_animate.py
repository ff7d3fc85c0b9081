"""``pixgen animate``: a loop of runs, each frame from the one before warped by the camera; N frames and an mp4 of
N frames; resumable at frame granularity (the same frames as an uninterrupted animation); the prompt schedule
over frames; camera expressions read safely; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import pixgen
from pixgen.cli import main
from pixgen.errors import PixgenError
from pixgen.motion import Camera, camera_path, parse_expression, warp
from pixgen.video import frame_files


@pytest.fixture
def tiny(quick: dict) -> dict:
    """A fast animation: a 2-step first frame, 1 step a frame after it."""
    return {**quick, "iterations": 2, "cutn": 2, "steps_per_frame": 1, "progress": False}


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_animate_writes_every_frame_and_an_mp4_of_them(tiny: dict) -> None:
    result = pixgen.animate(**tiny, frames=4, zoom="1 + 0.05*t", out="anim")
    assert [f.name for f in result.frames] == ["00001.png", "00002.png", "00003.png", "00004.png"]
    assert result.video == Path("anim/animation.mp4").resolve() or result.video.samefile("anim/animation.mp4")
    reader = imageio.get_reader(result.video)
    assert reader.count_frames() == 4
    reader.close()
    assert not result.interrupted and not Path("anim/.start.png").exists()
    assert all(pixels(f).shape == (32, 48, 3) for f in result.frames)


def test_a_resumed_animation_gives_the_frames_of_an_uninterrupted_one(tiny: dict) -> None:
    whole = pixgen.animate(**tiny, frames=3, zoom=1.1, rotate="2*t", out="whole")
    pixgen.animate(**tiny, frames=2, zoom=1.1, rotate="2*t", out="part")  # as if stopped after frame 2
    resumed = pixgen.animate(frames=3, resume="part", progress=False)
    assert len(resumed.frames) == 3
    for a, b in zip(whole.frames, resumed.frames, strict=True):
        assert np.array_equal(pixels(a), pixels(b)), a.name
    assert imageio.get_reader(resumed.video).count_frames() == 3


def test_resume_refuses_other_settings_and_a_folder_without_an_animation(tiny: dict) -> None:
    pixgen.animate(**tiny, frames=2, zoom=1.1, out="anim")
    before = sorted(p.name for p in Path("anim/frames").iterdir())
    with pytest.raises(PixgenError, match="made with zoom 1.1"):
        pixgen.animate(frames=3, zoom=1.2, resume="anim", progress=False)
    with pytest.raises(PixgenError, match="no animation to resume"):
        pixgen.animate(frames=3, resume=".", progress=False)
    with pytest.raises(PixgenError, match="holds another animation"):
        pixgen.animate(**tiny, frames=2, zoom=1.1, out="anim")
    assert sorted(p.name for p in Path("anim/frames").iterdir()) == before


def test_the_story_runs_over_frames(tiny: dict) -> None:
    result = pixgen.animate(**{**tiny, "prompt": "a red circle ^ a blue square"}, frames=4, zoom=1.0, out="anim")
    told = [Image.open(f).text["Description"] for f in result.frames]
    assert told == ["a red circle", "a red circle", "a blue square", "a blue square"]


def test_a_stop_keeps_the_frames_made_so_far(tiny: dict) -> None:
    class StopAtFrame3:
        def __init__(self) -> None:
            self.frames = 0

        def on_start(self, run) -> None:
            self.frames += 1

        def on_step(self, run, result) -> None:
            if self.frames == 3:
                raise KeyboardInterrupt

        def on_end(self, run, result) -> None:
            pass

    result = pixgen.animate(**tiny, frames=5, out="anim", callbacks=[StopAtFrame3()])
    assert result.interrupted and len(result.frames) == 2 and len(frame_files("anim")) == 2
    assert imageio.get_reader(result.video).count_frames() == 2
    assert len(pixgen.animate(frames=5, resume="anim", progress=False).frames) == 5


@pytest.mark.parametrize("drawer", ["pixel", "line_sketch", pytest.param("vector", marks=pytest.mark.slow)])
def test_every_drawer_with_init_from_image_animates(tiny: dict, drawer: str) -> None:
    result = pixgen.animate(**{**tiny, "drawer": drawer}, frames=2, out="anim")
    assert len(result.frames) == 2


def test_zoom_above_one_enlarges_the_centre() -> None:
    image = torch.zeros(1, 3, 40, 60)
    image[..., 15:25, 25:35] = 1.0  # a 10 x 10 white square in the centre
    zoomed = warp(image, Camera(zoom=2.0))
    assert zoomed[0, 0].sum() == pytest.approx(4 * image[0, 0].sum(), rel=0.1)
    assert zoomed[0, 0, 20, 30] == 1 and zoomed[0, 0, 11, 21] > 0.5  # the square now reaches 10 px from the centre
    shrunk = warp(image, Camera(zoom=0.5))[0, 0, 10:30, 20:40]  # (mirrored copies come in around it)
    assert shrunk.sum() == pytest.approx(image[0, 0].sum() / 4, rel=0.15)
    shifted = warp(image, Camera(shift_x=5, shift_y=-3))
    assert torch.allclose(shifted[..., 12:22, 30:40], image[..., 15:25, 25:35], atol=1e-4)
    turned = warp(image, Camera(rotate=90))
    assert turned[0, 0].sum() == pytest.approx(image[0, 0].sum(), rel=0.05)
    assert torch.equal(warp(image, Camera()), image)


def test_expressions_of_t() -> None:
    assert parse_expression("1 + 0.01*sin(t/5)", "--zoom")(10) == pytest.approx(1 + 0.01 * np.sin(2))
    assert parse_expression(1.02, "--zoom")(7) == 1.02
    assert parse_expression("max(1, min(t, 3)) * pi / sqrt(abs(-4))", "--rotate")(9) == pytest.approx(3 * np.pi / 2)
    path = camera_path({"zoom": "1 + t/100", "rotate": 0, "shift_x": "t", "shift_y": 0}, 3)
    assert [(c.zoom, c.shift_x) for c in path] == [(1.02, 2.0), (1.03, 3.0)]  # frames 2 and 3


@pytest.mark.parametrize(("value", "message"), [
    ("__import__('os').system('x')", "calling"),
    ("t.__class__", "Attribute"),
    ("[t]", "List"),
    ("open", "name 'open'"),
    ("1 +", "not an expression"),
    ("x * 2", "name 'x'"),
    ("1/(t-2)", "frame 2"),
    ("log(t-2)", "frame 2"),
    ("9 ** 9 ** 9", "cannot be computed"),
    ("(-1) ** 0.5", "not a finite number"),
    ("1 - t/2", "finite positive"),
    ("t * 0", "finite positive"),
    ("1" * 300, "at most"),
])
def test_bad_camera_expressions_are_one_line(quick: dict, value: str, message: str) -> None:
    result = CliRunner().invoke(main, ["animate", "--prompt", "x", "--clip", quick["clip"][0], "--frames", "4",
                                       "--zoom", value, "--out", "anim"])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not Path("anim").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--frames", "0"], "frames"),
    (["--steps-per-frame", "-1"], "steps_per_frame"),
    (["--fps", "0"], "fps"),
    (["--video"], "pixgen run"),
    (["--prompt", "a ^ ^ b"], "part 2"),
])
def test_bad_animation_settings_are_one_line(quick: dict, flags: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["animate", "--prompt", "x", "--clip", quick["clip"][0], "--out", "anim",
                                       *flags])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not Path("anim").exists()


def test_the_command_line(quick: dict) -> None:
    args = ["animate", "--prompt", "a red circle", "--clip", quick["clip"][0], "--size", "48x32", "--cutn", "2",
            "--iterations", "2", "--steps-per-frame", "1", "--frames", "3", "--zoom", "1.05", "--device", "cpu",
            "--seed", "3", "--out", "anim", "--video-format", "gif"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(imageio.mimread("anim/animation.gif")) == 3
    result = CliRunner().invoke(main, ["video", "anim"])
    assert result.exit_code == 0 and result.output.strip().endswith("animation.gif")
    result = CliRunner().invoke(main, ["animate", "--resume", "anim", "--frames", "4", "--zoom", "1.05"])
    assert result.exit_code == 0, result.output
    assert len(frame_files("anim")) == 4
