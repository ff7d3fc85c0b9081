"""A batch's gallery, rebuilt from its manifest: ``index.html`` (a static page: thumbnails, prompt, seed, loss
and a link to each job's settings) and ``contact_sheet.png`` (every image with a caption, one PNG)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from pixgen.batching.manifest import MANIFEST, Manifest
from pixgen.errors import PixgenError
from pixgen.io import save_png, write_text

THUMB = 192  # longest side of a thumbnail, pixels
CELL, CAPTION, COLUMNS = 160, 30, 8  # contact sheet: image cell, caption height, most columns


def gallery_rows(folder: str | Path) -> list[dict[str, Any]]:
    """The latest manifest row of every job in ``folder``, in job order."""
    rows = Manifest(folder).latest().values()
    if not rows:
        raise PixgenError(f"{folder} has no {MANIFEST} with jobs in it; give the --out folder of a pixgen batch")
    return sorted(rows, key=lambda row: (row.get("index") if isinstance(row.get("index"), int) else 1 << 30,
                                         row["id"]))


def build_gallery(folder: str | Path) -> tuple[Path, Path]:
    """Write ``thumbs/``, ``index.html`` and ``contact_sheet.png`` in a batch folder; returns (page, sheet)."""
    folder = Path(folder)
    rows = gallery_rows(folder)
    (folder / "thumbs").mkdir(exist_ok=True)
    images: dict[str, Image.Image] = {}
    for row in rows:
        image = _output_image(folder, row)
        if image is not None:
            images[row["id"]] = image
            save_png(thumbnail(image), folder / "thumbs" / f"{row['id']}.png")
    page = write_text(folder / "index.html", page_html(rows, set(images), folder.name))
    sheet = save_png(contact_sheet(rows, images), folder / "contact_sheet.png")
    return page, sheet


def _output_image(folder: Path, row: dict[str, Any]) -> Image.Image | None:
    path = folder / row["id"] / "output.png"
    if row.get("status") != "done" or not path.is_file():
        return None
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError:
        return None


def thumbnail(image: Image.Image, side: int = THUMB) -> Image.Image:
    """Scale to ``side`` on the longest edge: whole-pixel blocks for small images (pixel art stays sharp)."""
    scale = side / max(image.size)
    if scale >= 1:
        scale = max(1, math.floor(scale))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.NEAREST if scale >= 1 else Image.LANCZOS)


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def page_html(rows: list[dict[str, Any]], shown: set[str], title: str) -> str:
    """The gallery page: one card per job (thumbnail linking to the image, prompt, seed, loss, settings)."""
    done = sum(row.get("status") == "done" for row in rows)
    cards = "\n".join(_card(row, row["id"] in shown) for row in rows)
    name = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pixgen batch {name}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; background: #f4f4f4; color: #222; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax({THUMB + 16}px, 1fr)); gap: 12px; }}
.card {{ background: #fff; border-radius: 6px; padding: 8px; box-shadow: 0 1px 3px #0003; }}
.card img {{ width: {THUMB}px; height: {THUMB}px; object-fit: contain; image-rendering: pixelated;
  background: #ddd; display: block; margin: auto; }}
.prompt {{ font-weight: 600; margin: 6px 0 2px; overflow-wrap: anywhere; }}
.meta {{ font-size: 12px; color: #555; }}
.failed {{ background: #fde8e8; }} .error {{ font-size: 12px; color: #a00; overflow-wrap: anywhere; }}
</style></head><body>
<h1>pixgen batch {name}</h1>
<p>{len(rows)} jobs: {done} done, {len(rows) - done} failed. Contact sheet:
<a href="contact_sheet.png">contact_sheet.png</a>; manifest: <a href="{MANIFEST}">{MANIFEST}</a>.</p>
<div class="grid">
{cards}
</div></body></html>
"""


def _card(row: dict[str, Any], shown: bool) -> str:
    job = html.escape(row["id"], quote=True)
    prompt = html.escape(str(row.get("prompt") or "(no prompt)"))
    meta = (f"seed {html.escape(str(row.get('seed')))} &middot; loss {_fmt(row.get('loss'), '.4f')} &middot; "
            f"{_fmt(row.get('seconds'), '.1f')} s")
    image = (f'<a href="{job}/output.png"><img src="thumbs/{job}.png" alt="{prompt}"></a>' if shown
             else '<img alt="no image">')
    error = f'<div class="error">{html.escape(str(row.get("error")))}</div>' if row.get("error") else ""
    settings = f'<a href="{job}/settings.yaml">settings.yaml</a>' if shown else ""
    failed = "" if row.get("status") == "done" else " failed"
    return (f'<div class="card{failed}">{image}<div class="prompt">{prompt}</div>'
            f'<div class="meta">{meta} &middot; {settings} {html.escape(row["id"])}</div>{error}</div>')


def contact_sheet(rows: list[dict[str, Any]], images: dict[str, Image.Image]) -> Image.Image:
    """Every job's image in a grid of ``CELL`` squares with a two-line caption (prompt; seed and loss)."""
    columns = max(1, min(COLUMNS, math.ceil(math.sqrt(len(rows)))))
    lines = math.ceil(len(rows) / columns)
    sheet = Image.new("RGB", (columns * CELL, lines * (CELL + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(11)
    for number, row in enumerate(rows):
        left, top = (number % columns) * CELL, (number // columns) * (CELL + CAPTION)
        image = images.get(row["id"])
        if image is None:
            draw.rectangle((left + 4, top + 4, left + CELL - 5, top + CELL - 5), fill=(250, 220, 220))
            draw.text((left + 10, top + CELL // 2 - 6), str(row.get("status", "failed")), fill=(160, 0, 0), font=font)
        else:
            thumb = thumbnail(image, CELL - 8)
            sheet.paste(thumb, (left + (CELL - thumb.width) // 2, top + (CELL - thumb.height) // 2))
        prompt = str(row.get("prompt") or "")
        prompt = prompt if len(prompt) <= 26 else prompt[:25] + "…"
        caption = f"seed {row.get('seed')}  loss {_fmt(row.get('loss'), '.3f')}"
        draw.text((left + 4, top + CELL), prompt, fill=(0, 0, 0), font=font)
        draw.text((left + 4, top + CELL + 14), caption, fill=(90, 90, 90), font=font)
    return sheet
