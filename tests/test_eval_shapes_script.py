"""``scripts/eval_shapes.py`` end to end on one tiny run, so the README's measurement command keeps working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "eval_shapes.py"


def test_eval_script_prints_the_table_and_writes_sheet_and_verdicts(tmp_path: Path) -> None:
    sheet, verdicts = tmp_path / "sheet.png", tmp_path / "verdicts.json"
    out = subprocess.run([sys.executable, str(SCRIPT), "--configs", "vqgan,pixel", "--first", "1", "--seeds", "3",
                          "--workers", "1", "--set", "iterations=2", "--sheet", str(sheet), "--json", str(verdicts)],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "| a red circle on a blue background | 0/1 | 0/1 |" in out  # two steps cannot draw the scene
    assert "**pass rate** | **0/1 = 0%** | **0/1 = 0%** |" in out
    rows = json.loads(verdicts.read_text())
    assert [(r["config"], r["seed"], r["passed"]) for r in rows] == [("vqgan", 3, False), ("pixel", 3, False)]
    assert all(r["reasons"] for r in rows)
    assert Image.open(sheet).size == (330 + 2 * 104, 24 + 104)


def test_eval_script_rejects_an_unknown_configuration() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--configs", "vqgan,nope"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "unknown configuration(s) ['nope']" in done.stderr
