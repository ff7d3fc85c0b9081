"""Resume: a run writes ``checkpoint.pt`` beside its image, and ``pixgen run --resume DIR`` continues it.

The checkpoint holds all that the next steps depend on: the drawer's trainable state, the optimizer's state,
the run's RNG state (each step's randomness, kornia's sampling included, is drawn from it), the iteration, the
loss history and the resolved settings; never a frozen model. It holds tensors and plain types only and is read
back with ``torch.load(weights_only=True)``. It is written right after each good save of ``output.png`` (every
``save_every`` steps, at the end, on Ctrl-C or SIGTERM), atomically, so the two always show the same step. A run
continued from it gives, on the CPU, the image the uninterrupted run would have given, bit for bit.

An extension (``iterations`` above the first run's) keeps the schedules of the first length, recorded as
``schedule_iterations``: lr drops and warm-up, the drawers' ramps and a story's parts stay where they were, and
the extra steps go on with the lr and the prompt the run ended with.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from pixgen.config import RunConfig, load_yaml
from pixgen.errors import PixgenError
from pixgen.io import atomic_write, os_cause
from pixgen.outdir import CHECKPOINT_NAME

log = logging.getLogger("pixgen")

NAME = CHECKPOINT_NAME
FORMAT = 1
#: settings that may be given with ``resume``: how long a run goes on, how often it saves, where it computes
RESUME_OPTIONS = ("iterations", "save_every", "device")
#: settings not compared with the folder's settings.yaml (an extension rewrites it before its first save)
_UNCOMPARED = ("out", "overwrite", "schedule_iterations", *RESUME_OPTIONS)


def run_state(run: Any) -> dict[str, Any]:
    """``Run.state_dict()``: the state that continues ``run`` exactly (tensors and plain types only)."""
    if run.mid_step:
        raise PixgenError("the run was stopped inside a step; its state is only whole between steps")
    state = {"iteration": run.iteration, "history": [float(v) for v in run.history],
             "drawer": run.drawer.trainable_state(), "optimizer": run.optimizer.state_dict(),
             "generator": run.generator.get_state(), "chunks": int(getattr(run, "chunks", 1))}
    scaler = getattr(run, "scaler", None)
    if scaler:
        state["scaler"] = scaler.state_dict()
    return state


def load_run_state(run: Any, state: dict[str, Any]) -> None:
    """``Run.load_state_dict()``: continue from ``run_state`` of a run with the same settings. The drawer's
    tensors are copied in place, so the optimizer and the losses keep their references to them."""
    saved, own = state["drawer"], run.drawer.trainable_state()
    wrong = sorted(set(own) ^ set(saved)) or [k for k in own if own[k].shape != saved[k].shape]
    if wrong:
        raise PixgenError(f"the checkpoint's drawer state does not fit the drawer its settings build ({wrong[0]}); "
                          "was it written by another pixgen version? Start the run again")
    live = run.drawer.state_dict(keep_vars=True)
    with torch.no_grad():
        for key, value in saved.items():
            live[key].copy_(value)
    try:
        run.optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, RuntimeError) as exc:
        raise PixgenError(f"the checkpoint's optimizer state does not fit this run ({exc}); start the run "
                          "again") from None
    run.generator.set_state(state["generator"])
    if getattr(run, "scaler", None) and "scaler" in state:
        run.scaler.load_state_dict(state["scaler"])
    run.chunks = int(state.get("chunks", 1))
    run.iteration, run.history = int(state["iteration"]), [float(v) for v in state["history"]]
    run._schedule_lr()


def saved_settings(run: Any) -> dict[str, Any]:
    """The resolved settings of ``run`` as plain values, with the seed actually used, without its folder."""
    settings = {k: _plain(v) for k, v in run.config.to_dict().items() if k not in ("out", "overwrite")}
    settings["seed"] = run.seed
    return settings


def _plain(value: Any) -> Any:
    """A setting as plain types (paths as text, tuples as lists), so ``weights_only`` loading accepts it."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class Checkpoint:
    """Writes ``checkpoint.pt`` into a ``SaveImage``'s folder right after each of its good saves (while the run
    owns the folder). A failed write warns once and the run goes on; a run stopped inside a step keeps the last
    checkpoint."""

    def __init__(self, saver: Any) -> None:
        self.failed, self.written_at = False, None
        saver.after_save.append(self.write)

    def write(self, run: Any, folder: Path) -> None:
        """Write the checkpoint of ``run`` (skipped, with a line, if it was stopped inside a step)."""
        if run.mid_step:
            kept = f"step {self.written_at}" if self.written_at is not None else "no step: there is none"
            log.info("Stopped inside step %d: %s keeps %s", run.iteration + 1, NAME, kept)
            return
        state = {"format": FORMAT, "settings": saved_settings(run), **run.state_dict()}
        try:
            atomic_write(folder / NAME, lambda file: torch.save(state, file))
        except OSError as exc:
            if not self.failed:
                log.warning("cannot write %s in %s (%s); the run goes on without it", NAME, folder, os_cause(exc))
            self.failed = True
            return
        self.written_at = run.iteration


def read_checkpoint(folder: str | Path) -> dict[str, Any]:
    """The checkpoint in ``folder``, checked; a missing, truncated, corrupt or foreign file is one line."""
    folder = Path(folder)
    path = folder / NAME
    if not folder.is_dir():
        raise PixgenError(f"cannot resume {folder}: no such folder; give the --out folder of the run to continue")
    if not path.is_file():
        raise PixgenError(f"cannot resume {folder}: it holds no {NAME} (runs write one every --save-every steps "
                          f"and at the end); start the run again with --config {folder / 'settings.yaml'}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise PixgenError(f"cannot resume {folder}: {path} is truncated or corrupt ({cause}); start the run "
                          f"again with --config {folder / 'settings.yaml'}") from None
    keys = ("settings", "iteration", "history", "drawer", "optimizer", "generator")
    if not isinstance(state, dict) or state.get("format") != FORMAT or any(k not in state for k in keys):
        found = state.get("format") if isinstance(state, dict) else None
        raise PixgenError(f"cannot resume {folder}: {path} is not a pixgen checkpoint of format {FORMAT} "
                          f"(format {found!r}); start the run again with --config {folder / 'settings.yaml'}")
    return state


def resume_config(folder: str | Path, options: dict[str, Any]) -> tuple[RunConfig, dict[str, Any]]:
    """The settings that continue the run in ``folder`` (its checkpoint's, with the ``RESUME_OPTIONS`` given)
    and its checkpoint; anything that does not fit is one line, before any model loads."""
    folder = Path(folder)
    given = sorted(k for k, v in options.items() if v is not None and k not in RESUME_OPTIONS)
    if given:
        raise PixgenError(f"resume continues the run in {folder} with its own settings; only "
                          f"{', '.join(RESUME_OPTIONS)} may be given with it (got {', '.join(given)})")
    state = read_checkpoint(folder)
    settings = dict(state["settings"])
    _compare_settings(folder, settings)
    done, planned = int(state["iteration"]), int(settings["iterations"])
    if options.get("iterations") is not None:
        wanted = _iterations(options["iterations"])
        if wanted <= done:
            raise PixgenError(f"the run in {folder} has done {done} iterations; give --iterations above {done} "
                              "to extend it")
        if wanted != planned:
            settings["schedule_iterations"] = settings.get("schedule_iterations") or planned
            settings["iterations"] = wanted
    elif done >= planned:
        raise PixgenError(f"the run in {folder} is finished ({done} of {planned} iterations); give --iterations "
                          f"above {done} to extend it")
    settings.update({k: options[k] for k in ("save_every", "device") if options.get(k) is not None})
    return config_from_settings({**settings, "out": str(folder)}), state


def config_from_settings(settings: dict[str, Any]) -> RunConfig:
    """A ``RunConfig`` of resolved settings as they are (presets are not expanded again)."""
    names = {f.name for f in dataclasses.fields(RunConfig)}
    known = {k: v for k, v in settings.items() if k in names and k != "plugin_options"}
    extra = {k: v for k, v in settings.items() if k not in names}
    return RunConfig(**known, plugin_options=extra)


def _iterations(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PixgenError(f"iterations must be a whole number, got {value!r}") from None
    return number


def _compare_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Refuse a checkpoint whose settings differ from the folder's settings.yaml (one from another run)."""
    path = folder / "settings.yaml"
    if not path.is_file():
        return
    written = load_yaml(path)
    differ = sorted(k for k, v in written.items() if k not in _UNCOMPARED and settings.get(k, _MISSING) != v)
    if differ:
        raise PixgenError(f"cannot resume {folder}: its {NAME} was written by a run with other settings than its "
                          f"settings.yaml ({', '.join(differ[:5])} differ); resume the folder the checkpoint "
                          "came from, or start again with --config")


_MISSING = object()
