"""The Python API: ``pixgen.run("a red circle", drawer="pixel", iterations=100)``; same names as the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pixgen.config import RunConfig


def run(prompt: str | None = None, *, callbacks: Sequence[Any] | None = None, progress: bool = True,
        save: bool = True, display_every: int = 20, config: RunConfig | dict | None = None,
        **options: Any) -> Any:
    """Build and run one optimization; returns a ``RunResult`` (``.image`` PIL, ``.path``, ``.losses``).

    ``options`` are the CLI flags with underscores (``size="256x256"``, ``pixel_size=8``); ``config`` is a
    ``RunConfig`` or dict (e.g. a loaded settings.yaml) that ``prompt`` and ``options`` override. In a notebook
    the image is shown every ``display_every`` steps.
    """
    from pixgen.callbacks import Callback, NotebookDisplay, Progress, SaveImage
    from pixgen.io import require_utf8
    from pixgen.schema import coerce_settings
    from pixgen.starts import best_start
    from pixgen.video import progress_video

    base = config.to_dict() if isinstance(config, RunConfig) else coerce_settings(RunConfig, config or {})
    if prompt is not None:
        base["prompt"] = prompt
    require_utf8({**base, **options})  # text that could not go into settings.yaml or the PNG: before any work
    cfg = RunConfig.from_dict({**base, **options})
    extra: list[Any] = []
    if save:
        extra.append(SaveImage(cfg.out, cfg.save_every, cfg.overwrite))
        extra[-1].check()  # an --out in use, holding results or read-only: before any model loads
    if progress:
        extra.append(Progress(notebook=_in_notebook()))
    if display_every and _in_notebook():
        extra.append(NotebookDisplay(display_every))
    video = [progress_video(cfg, [*extra, *(callbacks or [])])] if cfg.video else []  # after the SaveImage
    run = best_start(cfg, [*extra, *(callbacks or []), *video], progress=progress)
    try:
        return run.run()
    finally:
        for callback in [*extra, *(callbacks or [])]:
            if isinstance(callback, Callback):
                callback.close()  # the output folder's lock and the bar, also when the run failed


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
