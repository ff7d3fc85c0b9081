"""Run: owns one optimization (drawer, perceptors, losses, cutouts, optimizer, RNG). No I/O inside;
callbacks do every side effect."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pixgen.augment import cutouts_for
from pixgen.config import RunConfig, resolve_seed
from pixgen.context import SetupContext
from pixgen.errors import PixgenError
from pixgen.limits import check_memory
from pixgen.parts import (
    build_drawer,
    build_extra_losses,
    build_filters,
    build_losses,
    build_optimizer,
    initialize,
    load_perceptors,
    pick_device,
)
from pixgen.plan import Plan, plan_run
from pixgen.precision import autocast, choose, grad_scaler
from pixgen.stepping import accumulate, is_out_of_memory, loss_terms

log = logging.getLogger("pixgen")


@dataclass
class StepResult:
    """What one ``Run.step()`` did."""

    iteration: int  # 1-based count of completed steps
    loss: float
    terms: dict[str, float]
    lr: float  # the run's learning rate after the schedule (groups may scale it, e.g. vector widths)


@dataclass
class RunResult:
    """The outcome of ``Run.run()``: the final image, where it was saved and the loss history."""

    image: Any  # PIL.Image.Image
    path: Path | None
    losses: list[float]
    seed: int
    iterations: int
    seconds: float
    interrupted: bool = False
    files: dict[str, Path] = field(default_factory=dict)


class Run:
    """One optimization. Everything that can fail on bad input fails here, before any step runs."""

    def __init__(self, config: RunConfig | dict[str, Any] | Plan, callbacks: Sequence[Any] = ()) -> None:
        self.plan = plan_run(config)
        self.config = self.plan.config
        self.callbacks = list(callbacks)
        self.seed = resolve_seed(self.config.seed)
        self.device = pick_device(self.config.device)
        self.precision, self.dtype = choose(self.config.precision, self.device)
        self.scaler = grad_scaler(self.device, self.dtype)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.filters = build_filters(list(self.plan.plugins), self.device)  # cheap: bad palettes fail early
        extra_losses = build_extra_losses(list(self.plan.plugins))
        self.perceptors = load_perceptors(self.plan.clips, self.device, self.dtype, self.config.compile)
        check_memory(self.config, self.perceptors, self.device)  # cutouts that cannot fit: refused before step 1
        with self._rng():
            self.drawer = build_drawer(self.config, self.plan.of_kind("drawer")[0], self.device)
            context = self.setup_context()
            self.drawer.setup(context)
            initialize(self.drawer, self.config, self.generator)
        for filt, _ in self.filters.values():
            filt.setup(context)
        self.losses = build_losses(self.plan, self.perceptors, context, extra_losses)
        self.cutouts = cutouts_for(self.config, self.perceptors, self.config.cutn)
        self.lr = self.config.lr if self.config.lr is not None else type(self.drawer).default_lr
        self.optimizer = build_optimizer(self.config.optimizer, self.drawer.param_groups(self.lr))
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.iteration, self.history = 0, []
        self.stop_requested = False  # set by a Ctrl-C before run(): it ends at once
        self.mid_step = False  # True while a step updates the parameters: a stop then leaves no whole state
        self.chunks = 1  # pieces each step's cutouts are scored in (grows after an out-of-memory error)
        self._schedule_lr()  # sets lr_factor (a warm-up starts below 1)

    def setup_context(self) -> SetupContext:
        """What plug-ins may know of this run when they are set up (never the ``Run`` itself)."""
        return SetupContext(
            device=self.device, prompts=self.plan.prompts, perceptors=self.perceptors,
            make_cutouts=functools.partial(cutouts_for, self.config, self.perceptors), size=self.size,
            iterations=self.span, start="image" if self.config.init_image else self.config.init_noise,
            drawer=self.drawer)

    @property
    def size(self) -> tuple[int, int]:
        """The (width, height) actually rendered (a drawer may trim the requested size)."""
        return self.drawer.width, self.drawer.height

    @property
    def span(self) -> int:
        """The length the schedules follow (lr drops and warm-up, drawer ramps, losses' total steps, a story's
        parts): ``iterations``, or an extended run's first length, ``schedule_iterations`` (``pixgen.resume``)."""
        return self.config.schedule_iterations or self.config.iterations

    def state_dict(self) -> dict[str, Any]:
        """What continues this run exactly: drawer, optimizer and RNG state, iteration, loss history."""
        from pixgen.resume import run_state

        return run_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()`` of a run with the same settings (``pixgen.resume``)."""
        from pixgen.resume import load_run_state

        load_run_state(self, state)

    def step(self) -> StepResult:
        """One optimization step (``batches`` gradient-accumulation passes, each in ``chunks`` pieces of the
        cutouts after an out-of-memory error), then the callbacks."""
        if self.iteration >= self.config.iterations:
            raise PixgenError(f"this run has done all its {self.config.iterations} iterations")
        before = self.generator.get_state()
        try:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
            totals = self._gradients(seed)
            self.mid_step = True
            with seeded_rng(self.device, seed):
                self._update()
        except KeyboardInterrupt:
            if not self.mid_step:  # stopped before the update: as if the step had not begun (pixgen.resume)
                self.generator.set_state(before)
            raise
        self.iteration += 1
        self._schedule_lr()
        result = StepResult(self.iteration, sum(totals.values()), totals, self.lr * self.lr_factor)
        self.history.append(result.loss)
        self.mid_step = False
        for callback in self.callbacks:
            callback.on_step(self, result)
        return result

    def _gradients(self, seed: int) -> dict[str, float]:
        """The step's gradient passes under the step's RNG seed; out of memory, the same passes again with the
        cutouts in twice as many chunks (the same sampled cutouts: the RNG is seeded again)."""
        while True:
            try:
                with seeded_rng(self.device, seed):
                    return self._passes()
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                self._split(exc)

    def _passes(self) -> dict[str, float]:
        batches, totals = self.config.batches, {}
        self.optimizer.zero_grad(set_to_none=True)
        for _ in range(batches):
            for name, value in accumulate(self, self.chunks, 1 / batches, self._backward).items():
                totals[name] = totals.get(name, 0.0) + value / batches
        return totals

    def _split(self, exc: BaseException) -> None:
        """After an out-of-memory error: free what the failed try held and halve the chunks' size, or stop with
        one line when a single cutout does not fit."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.chunks >= self.config.cutn:
            raise PixgenError(f"out of memory even with one cutout at a time on {self.device} "
                              f"({str(exc).splitlines()[0][:120]}); use a smaller --size or CLIP, or --device cpu")
        self.chunks = min(self.config.cutn, self.chunks * 2)
        log.warning("Out of memory on %s: each step now scores its %d cutouts in %d chunks (the same result, "
                    "slower)", self.device, self.config.cutn, self.chunks)

    def _backward(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward(retain_graph=retain_graph)

    def _update(self) -> None:
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.drawer.project_()

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """Render, filter, cut, embed, and evaluate every weighted loss over all the cutouts (differentiable)."""
        return loss_terms(self)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's precision for the render, cutouts and CLIP work (a no-op in fp32)."""
        return autocast(self.device, self.dtype)

    def run(self) -> RunResult:
        """Step until ``iterations`` (Ctrl-C stops early and still ends cleanly); returns the result."""
        start = time.perf_counter()
        log.info("Precision: %s%s", self.precision, " (auto)" if self.config.precision == "auto" else "")
        for callback in self.callbacks:
            callback.on_start(self)
        interrupted = self.stop_requested
        try:
            while not interrupted and self.iteration < self.config.iterations and not self._stalled():
                self.step()
        except KeyboardInterrupt:
            interrupted = True
        except PixgenError:  # a step that cannot go on (out of memory with one cutout): keep the image, then say
            self._end(start, interrupted=True)
            raise
        return self._end(start, interrupted)

    def _end(self, start: float, interrupted: bool) -> RunResult:
        result = RunResult(self.image(), None, list(self.history), self.seed, self.iteration,
                           time.perf_counter() - start, interrupted)
        for callback in self.callbacks:
            callback.on_end(self, result)
        return result

    def _stalled(self) -> bool:
        """``auto_stop`` N: True (and said once) when the loss has not improved for the last N steps."""
        n = self.config.auto_stop
        if not n or len(self.history) <= n:
            return False
        best = min(range(len(self.history)), key=self.history.__getitem__)
        if len(self.history) - 1 - best < n:
            return False
        log.info("Loss has not improved for %d steps (best %.4f at step %d): stopping at step %d of %d", n,
                 self.history[best], best + 1, self.iteration, self.config.iterations)
        return True

    @torch.no_grad()
    def render(self) -> torch.Tensor:
        """The current image as saved and shown, (1, 3, H, W) without gradients: the drawer's render through
        each filter's ``output`` (``lookup`` snaps it to the palette; the rolling filters leave it as it is)."""
        self.drawer.set_progress(min(1.0, self.iteration / self.span))
        image = self.drawer.render()
        for filt, _ in self.filters.values():
            image = filt.output(image)
        return image.detach()

    def image(self) -> Any:
        """The current image as a PIL image."""
        from pixgen.io import to_pil

        return to_pil(self.render())

    def _schedule_lr(self) -> None:
        """The factor for the next step: a linear rise over the first ``lr_warmup`` % of the run (Adam's first
        steps move every parameter by the full lr), then pixray's 10x drops at each ``lr_drops`` percentage."""
        done = sum(self.iteration >= int(p / 100 * (self.span - 1)) for p in self.config.lr_drops)
        warmup = self.config.lr_warmup / 100 * self.span
        self.lr_factor = 0.1**done * min(1.0, (self.iteration + 1) / warmup if warmup > 0 else 1.0)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * self.lr_factor

    def _rng(self) -> contextlib.AbstractContextManager[None]:
        """Run the block with the global torch RNG seeded from this run's generator, restoring it after, so
        kornia's sampling is reproducible and two runs in one process never disturb each other."""
        return seeded_rng(self.device, int(torch.randint(2**62, (1,), generator=self.generator)))


@contextlib.contextmanager
def seeded_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run the block with the global torch RNG (and ``device``'s, if CUDA) seeded with ``seed``, restored after."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
