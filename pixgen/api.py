"""The Python API: ``pixgen.run("a red circle", drawer="pixel", iterations=100)``; same names as the CLI."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixgen.config import RunConfig

log = logging.getLogger("pixgen")


def run(prompt: str | None = None, *, callbacks: Sequence[Any] | None = None, progress: bool = True,
        save: bool = True, display_every: int = 20, config: RunConfig | dict | None = None,
        resume: str | Path | None = None, **options: Any) -> Any:
    """Build and run one optimization; returns a ``RunResult`` (``.image`` PIL, ``.path``, ``.losses``).

    ``options`` are the CLI flags with underscores (``size="256x256"``, ``pixel_size=8``); ``config`` is a
    ``RunConfig`` or dict (e.g. a loaded settings.yaml) that ``prompt`` and ``options`` override. In a notebook
    the image is shown every ``display_every`` steps. ``resume=DIR`` continues the run in DIR from its
    ``checkpoint.pt`` (only ``iterations``, ``save_every`` and ``device`` may be given with it).
    """
    from pixgen.callbacks import Callback, NotebookDisplay, Progress, SaveImage
    from pixgen.io import require_utf8
    from pixgen.schema import coerce_settings
    from pixgen.video import progress_video

    state = None
    if resume is not None:
        from pixgen.resume import resume_config

        cfg, state = resume_config(resume, {**options, "prompt": prompt, "config": config})
    else:
        base = config.to_dict() if isinstance(config, RunConfig) else coerce_settings(RunConfig, config or {})
        if prompt is not None:
            base["prompt"] = prompt
        require_utf8({**base, **options})  # text that could not go into settings.yaml or the PNG: before any work
        cfg = RunConfig.from_dict({**base, **options})
    extra: list[Any] = []
    if save:
        from pixgen.resume import Checkpoint

        extra.append(SaveImage(cfg.out, cfg.save_every, cfg.overwrite, resume=state is not None))
        extra[-1].check()  # an --out in use, holding results or read-only: before any model loads
        Checkpoint(extra[-1])  # checkpoint.pt after each good save of output.png
    if progress:
        extra.append(Progress(notebook=_in_notebook() and _have_widgets()))
    if display_every and _in_notebook():
        extra.append(NotebookDisplay(display_every))
    video = [progress_video(cfg, [*extra, *(callbacks or [])])] if cfg.video else []  # after the SaveImage
    run = _start(cfg, state, [*extra, *(callbacks or []), *video], progress)
    try:
        return run.run()
    finally:
        for callback in [*extra, *(callbacks or [])]:
            if isinstance(callback, Callback):
                callback.close()  # the output folder's lock and the bar, also when the run failed


def _start(cfg: RunConfig, state: dict | None, callbacks: list[Any], progress: bool) -> Any:
    """The run to go on with: the best start, or the run continued from a checkpoint's ``state``."""
    from pixgen.starts import best_start

    if state is None:
        return best_start(cfg, callbacks, progress=progress)
    from pixgen.engine import Run

    run = Run(cfg, callbacks)
    run.load_state_dict(state)
    log.info("Resuming %s at iteration %d of %d", cfg.out, run.iteration, cfg.iterations)
    return run


@functools.lru_cache(maxsize=1)
def _have_widgets() -> bool:
    """Whether ipywidgets (the notebook progress bar) is installed; if not, says so once."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        log.warning("ipywidgets is not installed: a text progress bar instead of the notebook widget "
                    "(pip install 'pixgen[notebook]')")
        return False
    return True


def list_drawers() -> list[str]:
    """Names of the registered drawers."""
    from pixgen.registry import DRAWERS

    return DRAWERS.names()


def list_filters() -> list[str]:
    """Names of the registered filters."""
    from pixgen.registry import FILTERS

    return FILTERS.names()


def list_losses() -> list[str]:
    """Names of the registered losses."""
    from pixgen.registry import LOSSES

    return LOSSES.names()


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
