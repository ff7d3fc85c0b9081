"""``scripts/eval_shapes.py`` end to end on one tiny run, so the README's measurement command keeps working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from script_loader import load_script

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "eval_shapes.py"


@pytest.mark.slow  # the script with its worker process and two configurations' models
def test_eval_script_prints_the_table_and_writes_sheet_and_verdicts(tmp_path: Path) -> None:
    sheet, verdicts = tmp_path / "sheet.png", tmp_path / "verdicts.json"
    out = subprocess.run([sys.executable, str(SCRIPT), "--configs", "vqgan,pixel", "--first", "1", "--seeds", "3",
                          "--workers", "1", "--set", "iterations=2", "--sheet", str(sheet), "--json", str(verdicts)],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "| a red circle on a blue background | 0/1 | 0/1 |" in out  # two steps cannot draw the scene
    assert "**pass rate** | **0/1 = 0%** | **0/1 = 0%** |" in out
    assert "| runs failing | vqgan | pixel |" in out and "| shape | " in out and "| other colours | " in out
    rows = json.loads(verdicts.read_text())
    assert [(r["config"], r["seed"], r["passed"]) for r in rows] == [("vqgan", 3, False), ("pixel", 3, False)]
    assert all(r["reasons"] for r in rows)
    assert Image.open(sheet).size == (330 + 2 * 104, 24 + 104)


def test_vector_palette_configuration_renders_only_shapes_palette_colours() -> None:
    import numpy as np

    import pixgen
    from pixgen.shapes.world import PALETTE

    settings = load_script("eval_shapes").settings_of("vector-palette", ["iterations=2"])
    result = pixgen.run("a red circle", seed=0, save=False, progress=False, display_every=0, **settings)
    colours = {tuple(int(v) for v in px) for px in np.asarray(result.image).reshape(-1, 3)}
    assert colours <= set(PALETTE.values())



def test_vector_choice_configuration_draws_opaque_palette_paths() -> None:
    import numpy as np

    import pixgen
    from pixgen.shapes.world import PALETTE

    settings = load_script("eval_shapes").settings_of("vector-choice", ["iterations=2"])
    result = pixgen.run("a red circle on a blue background", seed=0, save=False, progress=False, display_every=0,
                        **settings)
    pixels = np.asarray(result.image.convert("RGB")).reshape(-1, 1, 3).astype(int)
    on_palette = (np.abs(pixels - np.array(list(PALETTE.values()))).max(axis=2) <= 1).any(axis=1)
    assert on_palette.mean() > 0.9  # only anti-aliased path edges mix two palette colours
    assert len(result.losses) == 2 and np.isfinite(result.losses).all()

def test_failed_checks_are_sorted_by_the_oracles_reasons() -> None:
    import torch

    from pixgen.shapes import check, render_caption

    module = load_script("eval_shapes")
    scene = render_caption("a red circle on a blue background", size=64, generator=torch.Generator().manual_seed(0))
    kinds = {module.check_kind(r) for r in check(scene, "a green circle on a white background").reasons}
    assert kinds == {"background", "shape"}
    rows = [{"config": "c", "reasons": ["background is blue, not white", "no green shape: green covers 0.00%"]},
            {"config": "c", "reasons": []}]
    table = module.failures(rows, ["c"])
    assert "| background | 1/2 |" in table and "| shape | 1/2 |" in table and "| other colours | 0/2 |" in table


def test_eval_script_rejects_an_unknown_configuration() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--configs", "vqgan,nope"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "unknown configuration(s) ['nope']" in done.stderr


def test_true_start_begins_from_a_scene_that_the_oracle_passes() -> None:
    module = load_script("eval_shapes")
    still = {**module.settings_of("vqgan", ["iterations=1", "lr=1e-9"])}  # one step that moves nothing
    caption = "a red circle on a blue background"
    kept = module.run_one(("vqgan", {**still, "true_start": True}, caption, 0))
    noise = module.run_one(("vqgan", still, caption, 0))
    assert kept["passed"] and not noise["passed"], (kept["reasons"], noise["reasons"])


def test_bad_settings_stop_the_script_with_one_line_before_any_run() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--configs", "vqgan", "--first", "1",
                           "--set", "loss=['layout:1:2:3']"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("eval_shapes: loss 'layout' takes at most 2 ':' argument(s) "
                                   "(layout_cutn, layout_clear), got '1:2:3'")
