"""Several starts, one run: ``starts`` runs (the run's seed and seeds derived from it) each take the first
``start_trial`` % of their steps; the one the losses score best goes on with the callbacks, the others are
dropped. The kept run is exactly the plain run of its own seed, which its ``settings.yaml`` records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import torch

from pixgen.config import RunConfig, resolve_seed
from pixgen.engine import Run, seeded_rng
from pixgen.plan import Plan, plan_run

log = logging.getLogger("pixgen")

#: loss evaluations (each with ``cutn`` cutouts) that score a start at the end of its trial
SCORE_PASSES = 4
_SEED_STRIDE = 0x9E3779B97F4A7C15  # odd, so the derived seeds of one seed never repeat


def candidate_seeds(seed: int, starts: int) -> list[int]:
    """The seeds of the starts: ``seed`` itself first (one start is the plain run), then derived ones."""
    return [(seed + i * _SEED_STRIDE) % 2**63 for i in range(starts)]


def trial_steps(config: RunConfig) -> int:
    """Steps each start takes before the choice: ``start_trial`` % of the run, at least one, never all."""
    return min(config.iterations - 1, max(1, round(config.start_trial / 100 * config.iterations)))


@torch.no_grad()
def score(run: Run, seed: int) -> float:
    """The run's summed loss averaged over ``SCORE_PASSES`` evaluations whose random cutouts come from
    ``seed``: every start is scored on the same cutouts, so the comparison is not the augmentation's luck."""
    with seeded_rng(run.device, seed):
        return sum(float(sum(run.loss_terms().values())) for _ in range(SCORE_PASSES)) / SCORE_PASSES


def best_start(config: RunConfig | Plan, callbacks: Sequence[Any] = (), progress: bool = False) -> Run:
    """A run ready to go on: with ``config.starts`` 1 the plain ``Run``; else the best of the starts after
    their trial steps, with ``callbacks`` attached (Ctrl-C during the trial keeps the best start so far)."""
    plan = plan_run(config)  # bad settings fail here, before any start is built; resolved once for all starts
    config = plan.config
    if config.starts <= 1:
        return Run(plan, callbacks)
    seed = resolve_seed(config.seed)
    steps, began = trial_steps(config), time.perf_counter()
    bar = _trial_bar(config.starts * steps, progress)
    scores: list[float] = []
    kept: Run | None = None  # the best start so far; the others are dropped as soon as they lose
    interrupted = False
    try:
        for candidate in candidate_seeds(seed, config.starts):
            run = Run(plan.with_settings(seed=candidate, starts=1))
            for _ in range(steps):
                result = run.step()
                bar.update(1)
                bar.set_postfix(start=len(scores) + 1, loss=f"{result.loss:.4f}", refresh=False)
            scores.append(score(run, seed))
            if kept is None or scores[-1] < min(scores[:-1]):
                kept = run
    except KeyboardInterrupt:
        if kept is None:
            raise
        interrupted = True
        log.info("Interrupted while trying starts: keeping the best start so far")
    finally:
        bar.close()
    log.info("Tried %d starts for %d steps each in %.1fs; kept start %d (seed %d; scores %s)", len(scores), steps,
             time.perf_counter() - began, scores.index(min(scores)) + 1, kept.seed,
             ", ".join(f"{s:.4f}" for s in scores))
    kept.stop_requested = interrupted
    kept.callbacks = list(callbacks)
    return kept


def _trial_bar(total: int, progress: bool) -> Any:
    """A tqdm bar over every trial step (a notebook widget in Jupyter; disabled without ``progress``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="trying starts", unit="it", dynamic_ncols=True, disable=not progress)
