"""End-to-end quality of the shapes demo: generate every (caption, seed) pair and let the oracle judge it.

    python scripts/eval_shapes.py                                   # the issue's table: 12 captions x 2 seeds
    python scripts/eval_shapes.py --configs vector --captions single --seeds 0 1
    python scripts/eval_shapes.py --sheet docs/shapes_contact_sheet.png --json docs/shapes_eval.json
    python scripts/eval_shapes.py --configs vqgan --true-start      # does generation keep a true scene?

Each configuration is the ``shapes`` preset plus a few overrides (``CONFIGS``). Runs are spread over
``--workers`` processes with one torch thread each. Prints a markdown table (pass rate per configuration and
per caption); ``--sheet`` writes a contact sheet (rows: captions; columns: configuration x seed; green frame =
the oracle passed, red = failed) and ``--json`` every verdict with the oracle's reasons. ``--true-start`` starts
every run from a true scene of its caption (``--init-image``; the seed also picks the scene): a diagnostic of
whether the optimization keeps what the oracle passes, not a way to generate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from pixgen.shapes.world import DEMO_CAPTIONS as CAPTIONS
from pixgen.shapes.world import PALETTE

#: the shapes world's 8 colours as a ``--palette`` string
SHAPES_PALETTE = "[" + ",".join("#{:02x}{:02x}{:02x}".format(*rgb) for rgb in PALETTE.values()) + "]"

CONFIGS: dict[str, dict] = {
    "vqgan": {},  # the preset as shipped: VQGAN drawer, default augmentations
    "vqgan-noaug": {"augment": False},
    "vqgan-pixray-mix": {"cut_zoom": 0.6},
    "pixel": {"drawer": "pixel", "lr": None},
    # few wide strokes and a background colour of its own, so that strokes can fill a shape on any background
    "vector": {"drawer": "vector", "lr": None, "strokes": 32, "max_width": 30, "allow_paper_color": True},
    # 8 filled blobs whose render is snapped to the shapes palette (a light commitment loss lets colours move)
    "vector-palette": {"drawer": "vector", "lr": 5, "strokes": 8, "fill": True, "max_width": 30,
                       "allow_paper_color": True, "loss": [], "filters": ["lookup"], "palette": SHAPES_PALETTE,
                       "lookup_beta": 0.5},
    # 8 filled paths and the paper, each one opaque palette colour chosen by optimized logits (blended from
    # the softmax mixture over the first half of the run), and the shapes denoiser as a prior from 30 % on
    "vector-choice": {"drawer": "vector", "lr": 2, "strokes": 8, "segments": 4, "fill": True,
                      "allow_paper_color": True, "palette": SHAPES_PALETTE, "palette_ramp": 0.5,
                      "loss": ["denoise:0.3@10"]},
}


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="vqgan,vqgan-noaug,pixel", help=f"comma list of {', '.join(CONFIGS)}")
    p.add_argument("--captions", default="all", help="all, single (one-shape captions) or pair")
    p.add_argument("--first", type=int, help="only the first N of those captions (quick trials)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra setting for every run (e.g. iterations=200); repeatable")
    p.add_argument("--true-start", action="store_true", help="start every run from a true scene of its caption")
    p.add_argument("--sheet", type=Path, help="write the contact sheet PNG here")
    p.add_argument("--json", type=Path, help="write every verdict here")
    return p.parse_args()


def pick_captions(which: str) -> list[str]:
    """The issue's 12 captions, or only the one-shape / two-shape ones."""
    if which == "all":
        return list(CAPTIONS)
    pair = [c for c in CAPTIONS if any(r in c for r in (" above ", " below ", " left of ", " right of "))]
    return pair if which == "pair" else [c for c in CAPTIONS if c not in pair]


def settings_of(config: str, extra: list[str]) -> dict:
    """The run settings of a named configuration plus ``KEY=VALUE`` overrides (values parsed as YAML)."""
    import yaml

    values = {"preset": "shapes", **CONFIGS[config]}
    for item in extra:
        key, _, value = item.partition("=")
        values[key.replace("-", "_")] = yaml.safe_load(value)
    return values


def check_settings(settings: dict, caption: str) -> None:
    """Exit with pixgen's message when ``settings`` cannot make a run (a misspelt option, a bad loss spec)."""
    from pixgen.errors import PixgenError
    from pixgen.plan import plan_run

    try:
        plan_run({**settings, "prompt": caption})
    except PixgenError as err:
        raise SystemExit(f"eval_shapes: {err}") from None


def run_one(job: tuple[str, dict, str, int]) -> dict:
    """Generate one image (one torch thread) and judge it; returns the verdict and the image as uint8."""
    import torch

    import pixgen
    from pixgen.shapes.oracle import check

    torch.set_num_threads(1)
    config, settings, caption, seed = job
    start = time.time()
    settings = dict(settings)
    true_start = settings.pop("true_start", False)
    with tempfile.TemporaryDirectory(prefix="pixgen-eval-") as tmp:
        if true_start:
            settings["init_image"] = write_true_scene(caption, seed, Path(tmp) / "scene.png")
        result = pixgen.run(caption, seed=seed, save=False, progress=False, display_every=0, **settings)
    verdict = check(result.image, caption)
    return {"config": config, "caption": caption, "seed": seed, "passed": verdict.passed,
            "reasons": verdict.reasons, "seconds": round(time.time() - start, 1),
            "image": np.asarray(result.image.convert("RGB"))}


def write_true_scene(caption: str, seed: int, path: Path) -> str:
    """Write a random true scene of ``caption``, drawn with ``seed``, to the PNG ``path``; returns the path."""
    import imageio.v3 as iio
    import torch

    from pixgen.shapes.render import render_caption

    image = render_caption(caption, 64, torch.Generator().manual_seed(seed))[0]
    iio.imwrite(path, image.permute(1, 2, 0).mul(255).round().byte().numpy())
    return str(path)


def table(rows: list[dict], configs: list[str], captions: list[str]) -> str:
    """Markdown: one line per caption (passes out of seeds per configuration) and the overall rate."""
    def passes(config: str, caption: str | None = None) -> tuple[int, int]:
        hits = [r["passed"] for r in rows if r["config"] == config and caption in (None, r["caption"])]
        return sum(hits), len(hits)

    lines = ["| caption | " + " | ".join(configs) + " |", "|---" * (len(configs) + 1) + "|"]
    for caption in captions:
        lines.append(f"| {caption} | " + " | ".join("{}/{}".format(*passes(c, caption)) for c in configs) + " |")
    total = [passes(c) for c in configs]
    lines.append("| **pass rate** | " + " | ".join(f"**{h}/{n} = {h / max(n, 1):.0%}**" for h, n in total) + " |")
    seconds = [np.mean([r["seconds"] for r in rows if r["config"] == c]) for c in configs]
    lines.append("| seconds per run (1 thread) | " + " | ".join(f"{s:.1f}" for s in seconds) + " |")
    return "\n".join(lines)


def contact_sheet(rows: list[dict], configs: list[str], captions: list[str], seeds: list[int], path: Path) -> None:
    """Rows: captions; columns: configuration x seed; each image framed green (passed) or red (failed)."""
    from PIL import Image, ImageDraw

    cell, frame, label_w, head = 96, 4, 330, 24
    cols = [(c, s) for c in configs for s in seeds]
    sheet = Image.new("RGB", (label_w + len(cols) * (cell + 2 * frame), head + len(captions) * (cell + 2 * frame)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for j, (config, seed) in enumerate(cols):
        draw.text((label_w + j * (cell + 2 * frame) + 4, 6), f"{config} s{seed}", fill="black")
    index = {(r["config"], r["caption"], r["seed"]): r for r in rows}
    for i, caption in enumerate(captions):
        y = head + i * (cell + 2 * frame)
        draw.text((6, y + cell // 2), caption, fill="black")
        for j, key in enumerate(cols):
            r = index.get((key[0], caption, key[1]))
            if r is None:
                continue
            x = label_w + j * (cell + 2 * frame)
            draw.rectangle((x, y, x + cell + 2 * frame - 1, y + cell + 2 * frame - 1),
                           fill=(40, 170, 60) if r["passed"] else (210, 40, 40))
            sheet.paste(Image.fromarray(r["image"]).resize((cell, cell), Image.NEAREST), (x + frame, y + frame))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def check_kind(reason: str) -> str:
    """Which of the oracle's checks an oracle reason belongs to (for the failed-checks table)."""
    if "background" in reason:
        return "background"
    if reason.startswith("other colours"):
        return "other colours"
    if "looks like" in reason or "cut off" in reason or reason.startswith("no "):
        return "shape"
    return "size, place, relation"


def failures(rows: list[dict], configs: list[str]) -> str:
    """Markdown: per configuration, in how many runs each kind of check failed (a run may fail several)."""
    kinds = ["background", "other colours", "shape", "size, place, relation"]
    lines = ["| runs failing | " + " | ".join(configs) + " |", "|---" * (len(configs) + 1) + "|"]
    for kind in kinds:
        counts = [(sum(kind in {check_kind(x) for x in r["reasons"]} for r in rows if r["config"] == c),
                   sum(r["config"] == c for r in rows)) for c in configs]
        lines.append(f"| {kind} | " + " | ".join(f"{k}/{n}" for k, n in counts) + " |")
    return "\n".join(lines)


def main() -> None:
    """Run every job, print the table, write the sheet and the JSON."""
    args = parse_args()
    configs = [c.strip() for c in args.configs.split(",")]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    captions = pick_captions(args.captions)[: args.first]
    settings = {c: settings_of(c, args.set) for c in configs}
    for config in configs:  # bad settings fail here, in one line, before any worker starts
        check_settings(settings[config], captions[0])
    start_from = {"true_start": True} if args.true_start else {}
    jobs = [(c, {**settings[c], **start_from}, cap, s) for c in configs for cap in captions for s in args.seeds]
    start = time.time()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        rows = list(pool.map(run_one, jobs))
    print(table(rows, configs, captions))
    print("\n" + failures(rows, configs))
    print(f"\n{len(jobs)} runs in {(time.time() - start) / 60:.1f} min with {args.workers} workers; "
          f"settings: " + "; ".join(f"{c}: {settings[c]}" for c in configs))
    if args.sheet:
        contact_sheet(rows, configs, captions, args.seeds, args.sheet)
        print(f"contact sheet: {args.sheet}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "image"} for r in rows], indent=1))
        print(f"verdicts: {args.json}")


if __name__ == "__main__":
    main()
