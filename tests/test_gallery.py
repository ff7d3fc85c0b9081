"""The batch gallery: index.html and the contact sheet, rebuilt from batch.jsonl; seen in a real headless browser."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pixgen.batching.gallery import CELL, build_gallery
from pixgen.batching.manifest import Manifest
from pixgen.cli import main

COLOURS = [(230, 30, 30), (30, 180, 40), (40, 60, 220), (240, 200, 20), (200, 40, 200)]


def make_batch(folder: Path, failed: int | None = None) -> list[dict]:
    """A batch folder as ``pixgen batch`` leaves it: one folder per job (a solid-colour 48x32 image and its
    settings) and a manifest row per job; job ``failed`` has only its row."""
    manifest, rows = Manifest(folder), []
    folder.mkdir(parents=True, exist_ok=True)
    for index, colour in enumerate(COLOURS):
        row = {"id": f"job-{index}", "hash": f"h{index}", "status": "done", "seconds": 1.5, "loss": 0.5 + index,
               "error": None, "prompt": f"prompt <{index}>", "seed": index, "index": index}
        if index == failed:
            row.update(status="failed", loss=None, error="image broken.png is not an image file")
        else:
            (folder / row["id"]).mkdir()
            Image.new("RGB", (48, 32), colour).save(folder / row["id"] / "output.png")
            (folder / row["id"] / "settings.yaml").write_text(f"prompt: prompt {index}\nseed: {index}\n")
        manifest.append(row)
        rows.append(row)
    return rows


def test_the_page_has_a_card_per_job_with_its_thumbnail_prompt_seed_loss_and_settings(tmp_path: Path) -> None:
    make_batch(tmp_path / "b")
    page, sheet = build_gallery(tmp_path / "b")
    text = page.read_text()
    for index in range(len(COLOURS)):
        assert f'<a href="job-{index}/output.png"><img src="thumbs/job-{index}.png"' in text
        assert f'<a href="job-{index}/settings.yaml">settings.yaml</a>' in text
        assert f"prompt &lt;{index}&gt;" in text and f"seed {index} &middot; loss {0.5 + index:.4f}" in text
        with Image.open(tmp_path / "b" / "thumbs" / f"job-{index}.png") as thumb:
            assert thumb.size == (192, 128)  # 48x32 in whole 4x4 blocks
    assert "5 jobs: 5 done, 0 failed" in text


def test_a_failed_job_shows_its_error_and_no_image(tmp_path: Path) -> None:
    make_batch(tmp_path / "b", failed=2)
    page, _ = build_gallery(tmp_path / "b")
    text = page.read_text()
    assert '<div class="card failed"><img alt="no image">' in text and "image broken.png is not an image" in text
    assert "thumbs/job-2.png" not in text and not (tmp_path / "b" / "thumbs" / "job-2.png").exists()
    assert "5 jobs: 4 done, 1 failed" in text


def test_the_contact_sheet_holds_every_image_in_order(tmp_path: Path) -> None:
    make_batch(tmp_path / "b", failed=4)
    _, sheet = build_gallery(tmp_path / "b")
    with Image.open(sheet) as image:
        assert image.size == (3 * CELL, 2 * (CELL + 30))  # 5 jobs: 3 columns, 2 rows
        centres = [image.getpixel(((i % 3) * CELL + CELL // 2, (i // 3) * (CELL + 30) + CELL // 2))
                   for i in range(4)]
    assert centres == COLOURS[:4]


def test_pixgen_gallery_rebuilds_the_page_and_sheet(tmp_path: Path) -> None:
    make_batch(tmp_path / "b")
    result = CliRunner().invoke(main, ["gallery", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "index.html").is_file() and (tmp_path / "b" / "contact_sheet.png").is_file()


def test_a_folder_without_a_manifest_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["gallery", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path} has no batch.jsonl with jobs in it; give the --out " \
                                    "folder of a pixgen batch"


def chromium_screenshot(page: Path, png: Path, size: str = "1200,900") -> None:
    """A screenshot of ``page`` by the system's headless Chromium (no network, a throwaway profile)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                        f"--screenshot={png}", f"--window-size={size}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=300)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the system's chromium (apt install chromium)")
def test_a_headless_browser_shows_every_thumbnail(tmp_path: Path) -> None:
    make_batch(tmp_path / "b")
    page, _ = build_gallery(tmp_path / "b")
    chromium_screenshot(page, tmp_path / "shot.png")
    with Image.open(tmp_path / "shot.png") as shot:
        counts = {colour: count for count, colour in shot.convert("RGB").getcolors(1 << 20)}
    for colour in COLOURS:
        assert counts.get(colour, 0) >= 150 * 100, colour  # a 192x128 thumbnail, drawn (not a broken image)
