"""Issue 38: SIGTERM stops a run with the same final save as Ctrl-C (exit 143; Ctrl-C 130), and a signal
while models load is one line, not ``Aborted!``. Real subprocesses and real signals (about 5 s each)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pixgen.io import read_png_metadata


class _Pixgen:
    """``python -m pixgen ARGS`` with its stderr collected by a thread, so a test can wait for a line."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "pixgen", *args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.text = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while chunk := self.proc.stderr.read(1):
            self.text += chunk

    def wait_for(self, pattern: str, timeout: float = 120) -> None:
        """Until stderr matches ``pattern`` (fails if the process ends first)."""
        end = time.monotonic() + timeout
        while not re.search(pattern, self.text):
            assert self.proc.poll() is None, f"pixgen ended early ({self.proc.returncode}):\n{self.text}"
            assert time.monotonic() < end, f"no {pattern!r} in:\n{self.text}"
            time.sleep(0.01)

    def stop(self, number: int) -> tuple[int, str]:
        """Send the signal; the exit code and the whole stderr."""
        self.proc.send_signal(number)
        code = self.proc.wait(timeout=120)
        self.reader.join(timeout=10)
        return code, self.text


def _args(quick: dict, out: Path, *extra: str) -> list[str]:
    return ["run", "--prompt", quick["prompt"], "--clip", quick["clip"][0], "--size", quick["size"], "--cutn", "2",
            "--seed", "3", "--out", str(out), *extra]


def test_sigterm_saves_like_ctrl_c_and_exits_143(quick: dict, tmp_path: Path) -> None:
    out = tmp_path / "o"
    run = _Pixgen(_args(quick, out, "--device", "cpu", "--iterations", "100000", "--save-every", "0"), tmp_path)
    run.wait_for(r"\b([2-9]|\d\d+)/100000")  # two or more steps done, none saved yet (--save-every 0)
    code, stderr = run.stop(signal.SIGTERM)
    assert code == 143, stderr
    assert "Traceback" not in stderr and re.search(rf"Interrupted: \d+ iterations .* saved {out}/output.png", stderr)
    assert int(read_png_metadata(out / "output.png")["pixgen_iteration"]) >= 2  # the final save happened
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "output.png", "settings.yaml"]  # no lock


@pytest.mark.parametrize(("number", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_while_models_load_is_one_line(quick: dict, tmp_path: Path, number: int, code: int,
                                                name: str) -> None:
    out = tmp_path / "o"
    run = _Pixgen(_args(quick, out, "--device", "auto", "--iterations", "5"), tmp_path)
    run.wait_for(r"Using device: \w+\n")  # logged just before the CLIP models load
    returned, stderr = run.stop(number)
    assert returned == code, stderr
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    assert [line for line in stderr.splitlines() if "Interrupted" in line] == [
        f"Interrupted ({name}) before the run began; nothing was written"]
    assert not out.exists()
