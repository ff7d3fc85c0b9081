"""Callbacks: every side effect of a run (files, progress bar, notebook display) lives here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pixgen import __version__
from pixgen.config import dump_yaml
from pixgen.io import make_out_dir, save_png, write_text

log = logging.getLogger("pixgen")


class Callback:
    """Hooks called by ``Run``; override the ones you need."""

    def on_start(self, run: Any) -> None:
        """Before the first step."""

    def on_step(self, run: Any, result: Any) -> None:
        """After every step."""

    def on_end(self, run: Any, result: Any) -> None:
        """After the last step (also after Ctrl-C)."""


class SaveImage(Callback):
    """Writes ``output.png`` (with metadata) every ``every`` steps and at the end, plus ``settings.yaml`` and
    the drawer's extra files (e.g. ``output.svg``). The folder is created only when the run starts."""

    def __init__(self, out: str | Path | None = None, every: int = 10) -> None:
        self.out, self.every, self.dir = out, every, None

    def on_start(self, run: Any) -> None:
        """Create the output folder and write ``settings.yaml`` (reproduces the run with ``--config``)."""
        self.dir = make_out_dir(self.out)
        write_text(self.dir / "settings.yaml", dump_yaml(settings_to_save(run)))

    def on_step(self, run: Any, result: Any) -> None:
        """Save every ``every`` steps."""
        if self.every and result.iteration % self.every == 0:
            self.save(run)

    def on_end(self, run: Any, result: Any) -> None:
        """Save the final image and record the paths in the result."""
        result.path = self.save(run, image=result.image)
        result.files.update({p.name: p for p in sorted(self.dir.iterdir()) if not p.name.startswith(".")})

    def save(self, run: Any, image: Any = None) -> Path:
        """Write ``output.png`` (atomic replace) and the drawer's extra outputs."""
        image = run.image() if image is None else image
        path = save_png(image, self.dir / "output.png", png_metadata(run))
        for name, content in run.drawer.extra_outputs().items():
            write_text(self.dir / name, content)
        return path


def settings_to_save(run: Any) -> dict[str, Any]:
    """The non-default settings of a run with the seed actually used, without its output folder."""
    settings = run.config.to_dict(non_default=True)
    settings.pop("out", None)
    settings["seed"] = run.seed
    settings["starts"] = run.config.starts  # always: a preset's starts would otherwise come back
    return settings


def png_metadata(run: Any) -> dict[str, str]:
    """PNG text chunks: software and version, the seed used, the iteration, every non-default setting."""
    meta = {"Software": f"pixgen {__version__}", "pixgen_version": __version__,
            "pixgen_seed_used": str(run.seed), "pixgen_iteration": str(run.iteration)}
    for key, value in run.config.to_dict(non_default=True).items():
        meta[f"pixgen_{key}"] = str(value)
    if run.config.prompt:
        meta["Description"] = str(run.config.prompt)
    return meta


class Progress(Callback):
    """A tqdm progress bar with the current loss, and a one-line summary at the end."""

    def __init__(self, notebook: bool = False) -> None:
        self.notebook, self.bar = notebook, None

    def on_start(self, run: Any) -> None:
        """Open the bar."""
        if self.notebook:
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm
        self.bar = tqdm(total=run.config.iterations, initial=run.iteration, unit="it", dynamic_ncols=True)

    def on_step(self, run: Any, result: Any) -> None:
        """Advance with the loss in the postfix."""
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{result.loss:.4f}", refresh=False)

    def on_end(self, run: Any, result: Any) -> None:
        """Close the bar and print the summary line."""
        self.bar.close()
        log.info(summary(result))


def summary(result: Any) -> str:
    """``Done: 250 iterations in 41.2s (0.165 s/it), loss 1.234 -> 0.987, saved outputs/.../output.png``."""
    rate = result.seconds / max(1, result.iterations)
    losses = f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}" if result.losses else "no steps"
    where = f", saved {result.path}" if result.path else ""
    head = "Interrupted" if result.interrupted else "Done"
    return f"{head}: {result.iterations} iterations in {result.seconds:.1f}s ({rate:.3f} s/it), {losses}{where}"


class NotebookDisplay(Callback):
    """Shows the current image in a Jupyter/Colab output cell every ``every`` steps (replacing the last one)."""

    def __init__(self, every: int = 20) -> None:
        self.every, self.handle = every, None

    def on_start(self, run: Any) -> None:
        """Show the starting image."""
        from IPython.display import display

        self.handle = display(run.image(), display_id=True)

    def on_step(self, run: Any, result: Any) -> None:
        """Update the shown image."""
        if self.every and result.iteration % self.every == 0:
            self.handle.update(run.image())

    def on_end(self, run: Any, result: Any) -> None:
        """Show the final image."""
        self.handle.update(result.image)
