"""Issue 38: one --out per run, faults at save time, text that is not UTF-8, file modes and metadata.

The fault tests mount small tmpfs folders of their own (as root; skipped with the reason elsewhere), so a full
disk and a read-only folder are real ones, not patched functions.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from filelock import FileLock
from PIL import Image

import pixgen
from pixgen.callbacks import Callback, SaveImage
from pixgen.cli import main
from pixgen.errors import PixgenError
from pixgen.io import read_png_metadata

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny runs: one thread is faster on a small shared CPU


def _cli(quick: dict, *extra: str) -> list[str]:
    return ["run", "--prompt", quick["prompt"], "--clip", quick["clip"][0], "--size", quick["size"],
            "--iterations", "4", "--cutn", "2", "--seed", "7", "--device", "cpu", "--save-every", "2", *extra]


def _errors(result) -> list[str]:
    """The error lines of a CliRunner result (there must be exactly one, and no traceback)."""
    assert "Traceback" not in result.output, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def _leftovers(folder: Path) -> list[str]:
    """Hidden files (temporary files, a lock) left in a run's folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``mount_tmpfs(name, size, read_only=False)``: a fresh tmpfs folder; skips where mounting is not allowed."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "1m", read_only: bool = False) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a small tmpfs needs root and mount(8); the fault tests run as root in CI")
        folder = tmp_path / name
        folder.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                              text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); needs CAP_SYS_ADMIN")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


class _FillDisk(Callback):
    """Fills the output folder's filesystem after step ``at`` (after that step's save); frees it at ``free``."""

    def __init__(self, folder: Path, at: int, free: int | None = None) -> None:
        self.filler, self.at, self.free = folder / "filler", at, free

    def on_step(self, run, result) -> None:
        if result.iteration == self.at:
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, bytes(1 << 16))
            except OSError:
                pass
            finally:
                os.close(fd)
        if result.iteration == self.free:
            self.filler.unlink()


# --- one --out, two runs -------------------------------------------------------------------------------------

def test_a_second_run_into_a_folder_in_use_is_refused(quick: dict, tmp_path: Path) -> None:
    out, seen = tmp_path / "shared", []

    class SecondRun(Callback):
        def on_step(self, run, result) -> None:
            if result.iteration == 2:
                with pytest.raises(PixgenError) as error:
                    pixgen.run(**{**quick, "iterations": 2}, out=str(out), progress=False)
                seen.append(str(error.value))

    first = pixgen.run(**quick, out=str(out), progress=False, callbacks=[SecondRun()])
    assert seen == [f"folder {out} is in use by another run (pid {os.getpid()}); wait for it to end or choose "
                    "another --out"]
    assert read_png_metadata(first.path)["pixgen_iteration"] == str(quick["iterations"])
    assert _leftovers(out) == []  # the lock goes with the run


def test_cli_in_use_names_the_holder(quick: dict, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    with FileLock(out / ".pixgen.lock", timeout=0):
        (out / ".pixgen.lock").write_text("4242\n")
        result = CliRunner().invoke(main, _cli(quick, "--out", str(out)))
    assert result.exit_code == 1
    assert _errors(result) == [f"Error: folder {out} is in use by another run (pid 4242); wait for it to end or "
                               "choose another --out"]
    assert not (out / "settings.yaml").exists()


def test_a_finished_runs_folder_needs_overwrite(quick: dict, tmp_path: Path) -> None:
    out = tmp_path / "done"
    assert CliRunner().invoke(main, _cli(quick, "--out", str(out))).exit_code == 0
    before = (out / "output.png").read_bytes()
    (out / "output.svg").write_text("<svg/>")  # a vector run's extra file must not survive a new run
    again = CliRunner().invoke(main, _cli(quick, "--out", str(out), "--seed", "8"))
    assert again.exit_code == 1
    assert _errors(again) == [f"Error: folder {out} holds another run's results; pass --overwrite or choose "
                              "another --out"]
    assert (out / "output.png").read_bytes() == before
    forced = CliRunner().invoke(main, _cli(quick, "--out", str(out), "--seed", "8", "--overwrite"))
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "output.png", "settings.yaml"]
    assert read_png_metadata(out / "output.png")["pixgen_seed_used"] == "8"
    assert "overwrite" not in (out / "settings.yaml").read_text()  # a reused settings.yaml overwrites nothing


def test_a_failed_run_lets_its_folder_go(quick: dict, tmp_path: Path) -> None:
    class Boom(Callback):
        def on_step(self, run, result) -> None:
            if result.iteration == 2:
                raise RuntimeError("boom")

    out = tmp_path / "failed"
    with pytest.raises(RuntimeError, match="boom"):
        pixgen.run(**quick, save=False, progress=False, callbacks=[SaveImage(out, every=2), Boom()])
    assert _leftovers(out) == []  # unlocked at once, not when the garbage collector gets to it
    assert read_png_metadata(out / "output.png")["pixgen_iteration"] == "2"


def test_api_overwrite_keyword(quick: dict, tmp_path: Path) -> None:
    out = str(tmp_path / "api")
    pixgen.run(**quick, out=out, progress=False)
    with pytest.raises(PixgenError, match="holds another run's results; pass --overwrite"):
        pixgen.run(**quick, out=out, progress=False)
    assert pixgen.run(**quick, out=out, progress=False, overwrite=True).path is not None


# --- faults at save time --------------------------------------------------------------------------------------

def test_disk_full_keeps_the_last_good_image(quick: dict, mount_tmpfs, caplog) -> None:
    disk = mount_tmpfs("disk", "256k")
    caplog.set_level(logging.WARNING, logger="pixgen")
    with pytest.raises(PixgenError) as error:
        pixgen.run(**{**quick, "iterations": 8}, out=str(disk), progress=False, callbacks=[_FillDisk(disk, at=4)])
    assert str(error.value) == (f"cannot write output.png in {disk} (No space left on device); the final image is "
                                "lost and output.png there is from iteration 4; free some space or choose another "
                                "--out")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"cannot write output.png in {disk} (No space left on device); output.png there is from "
                        "iteration 4; the run goes on and saves again at the end"]
    assert read_png_metadata(disk / "output.png")["pixgen_iteration"] == "4"
    assert Image.open(disk / "output.png").size == (48, 32)
    assert _leftovers(disk) == []  # no temporary file, no lock


def test_disk_full_for_a_while_then_the_final_save_succeeds(quick: dict, mount_tmpfs, caplog) -> None:
    disk = mount_tmpfs("disk", "256k")
    caplog.set_level(logging.WARNING, logger="pixgen")
    result = pixgen.run(**{**quick, "iterations": 8}, out=str(disk), progress=False,
                        callbacks=[_FillDisk(disk, at=2, free=5)])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert read_png_metadata(result.path)["pixgen_iteration"] == "8" and _leftovers(disk) == []


def test_cli_disk_full_from_the_start(quick: dict, mount_tmpfs) -> None:
    disk = mount_tmpfs("tiny", "8k")  # room for settings.yaml, not for a 64x64 PNG
    result = CliRunner().invoke(main, _cli(quick, "--out", str(disk), "--size", "64x64"))
    assert result.exit_code == 1
    assert _errors(result) == [f"Error: cannot write output.png in {disk} (No space left on device); the final "
                               "image is lost and no image was saved; free some space or choose another --out"]
    assert sorted(p.name for p in disk.iterdir()) == ["settings.yaml"]


def test_cli_disk_already_full(quick: dict, mount_tmpfs) -> None:
    disk = mount_tmpfs("full", "64k")
    _FillDisk(disk, at=0).on_step(None, type("Step", (), {"iteration": 0}))
    result = CliRunner().invoke(main, _cli(quick, "--out", str(disk / "run")))
    assert result.exit_code == 1
    assert _errors(result) == [f"Error: cannot write settings.yaml in {disk / 'run'} (No space left on device); "
                               "choose another --out"]
    assert not (disk / "run").exists()  # the folder it made is gone: no empty folder, lock or temporary file


@pytest.mark.parametrize("sub", ["", "new"])
def test_read_only_out_is_one_line_before_any_work(quick: dict, mount_tmpfs, sub: str) -> None:
    folder = mount_tmpfs("ro", read_only=True)
    out = folder / sub if sub else folder
    result = CliRunner().invoke(main, _cli(quick, "--out", str(out)))
    assert result.exit_code == 1
    where = "is not writable" if not sub else f"cannot be created in {folder}"
    message = f"output folder {out} {where} (read-only file system); choose another --out"
    assert _errors(result) == [f"Error: {message}"]
    with pytest.raises(PixgenError) as error:
        pixgen.run(**quick, out=str(out), progress=False)
    assert str(error.value) == message


def test_read_only_working_directory_with_the_default_out(quick: dict, mount_tmpfs, monkeypatch) -> None:
    folder = mount_tmpfs("ro", read_only=True)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, _cli(quick))
    assert result.exit_code == 1
    assert _errors(result) == [f"Error: cannot create the default output folder outputs/ in {folder} (read-only "
                               "file system); pass --out DIR in a writable place"]


# --- text that is not UTF-8 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["--prompt", "--out", "--init-image"])
def test_text_that_is_not_utf8_is_one_line_before_any_work(quick: dict, tmp_path: Path, key: str) -> None:
    bad = str(tmp_path / "caf\udce9.png") if key != "--prompt" else "caf\udce9 au lait"  # b"\xe9" from argv
    args = _cli(quick, "--out", str(tmp_path / "o"))
    args = [*args, key, bad] if key != "--out" else [*args[:-2], "--out", bad]
    if key == "--init-image":
        Image.new("RGB", (4, 4)).save(os.fsencode(bad))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    [line] = _errors(result)
    assert "is not valid UTF-8" in line and "caf\\xe9" in line, line
    assert not (tmp_path / "o").exists() and not os.path.exists(os.fsencode(tmp_path / "o"))


def test_api_rejects_text_that_is_not_utf8(quick: dict) -> None:
    with pytest.raises(PixgenError, match=r"prompt 'a \\xff cat' is not valid UTF-8"):
        pixgen.run(**{**quick, "prompt": "a \udcff cat"}, progress=False)


# --- files: modes and metadata --------------------------------------------------------------------------------

def test_files_follow_the_umask(quick: dict, tmp_path: Path) -> None:
    old = os.umask(0o027)  # neither the usual 022 nor tempfile's 0600
    try:
        result = pixgen.run(**{**quick, "iterations": 2}, out=str(tmp_path / "o"), progress=False)
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in result.files.values()} == {
        "checkpoint.pt": 0o640, "output.png": 0o640, "settings.yaml": 0o640}


def test_png_bytes_do_not_depend_on_the_out_path(quick: dict, tmp_path: Path) -> None:
    settings = {**quick, "iterations": 2}
    short = pixgen.run(**settings, out=str(tmp_path / "a"), progress=False)
    long = pixgen.run(**settings, out=str(tmp_path / "a much" / "longer folder name"), progress=False)
    assert short.path.read_bytes() == long.path.read_bytes()
    assert not any("out" in key or str(tmp_path) in value for key, value in read_png_metadata(short.path).items())
    assert np.asarray(Image.open(short.path)).shape == (32, 48, 3)
