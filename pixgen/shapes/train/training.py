"""Pieces shared by the shapes training scripts: common options and a step- or time-bounded lr schedule."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def base_parser(doc: str | None, *, steps: int, batch: int, lr: float, out: Path) -> argparse.ArgumentParser:
    """The options every training script takes: seed, steps, a time budget, batch, lr, threads, out."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=steps, help="optimizer steps (the lr schedule's length)")
    p.add_argument("--minutes", type=float, default=28.0,
                   help="stop after this many minutes; the lr schedule then follows time (0: no limit)")
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=out)
    return p


def progress(step: int, steps: int, start: float, minutes: float) -> float:
    """Schedule position in [0, 1]: by steps (reproducible), or by time if the time budget runs out first."""
    return min(1.0, max(step / steps, (time.time() - start) / (minutes * 60) if minutes > 0 else 0.0))


def lr_at(t: float, base: float, warmup: float = 0.05) -> float:
    """Linear warm-up over the first 5% of the run, then cosine decay to 5% of ``base``."""
    if t < warmup:
        return base * (t + 1e-3) / warmup
    t = (t - warmup) / (1 - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def scheduled_steps(opt: Any, args: argparse.Namespace, desc: str) -> Iterator[tuple[int, float, Any]]:
    """The steps of a step- and time-bounded run with a tqdm bar: sets each step's lr on ``opt`` (``lr_at``)
    and yields ``(step, schedule position, bar)``; stops early when ``args.minutes`` run out."""
    from tqdm import tqdm

    start = time.time()
    bar = tqdm(range(args.steps), desc=desc, unit="step")
    for step in bar:
        if args.minutes > 0 and time.time() - start > args.minutes * 60:
            bar.write(f"time budget reached after {step} steps")
            return
        t = progress(step, args.steps, start, args.minutes)
        for group in opt.param_groups:
            group["lr"] = lr_at(t, args.lr)
        yield step, t, bar
