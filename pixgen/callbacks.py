"""Callbacks: every side effect of a run (files, progress bar, notebook display) lives here."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from pixgen import __version__
from pixgen.config import dump_yaml
from pixgen.errors import PixgenError
from pixgen.io import os_cause, save_png, write_text
from pixgen.outdir import OutDir, check_out_dir

log = logging.getLogger("pixgen")


class Callback:
    """Hooks called by ``Run``; override the ones you need."""

    def on_start(self, run: Any) -> None:
        """Before the first step."""

    def on_step(self, run: Any, result: Any) -> None:
        """After every step."""

    def on_end(self, run: Any, result: Any) -> None:
        """After the last step (also after Ctrl-C)."""

    def close(self) -> None:
        """After the run, whether it ended or failed (``pixgen.run`` calls it): let go of files, bars."""


class SaveImage(Callback):
    """Writes ``output.png`` (with metadata) every ``every`` steps and at the end, plus ``settings.yaml`` and
    the drawer's extra files (e.g. ``output.svg``). The folder is created only when the run starts, and the run
    owns it until it ends (``pixgen.outdir``): another run's results there are refused unless ``overwrite``.

    A save that fails during the run (a full disk) warns once and leaves the last good image in place; the run
    goes on, and the final save tries twice before it stops with one line naming the folder and the cause."""

    def __init__(self, out: str | Path | None = None, every: int = 10, overwrite: bool = False,
                 resume: bool = False) -> None:
        self.out, self.every, self.overwrite, self.resume = out, every, overwrite, resume  # resume: keep its files
        self.after_save: list[Any] = []  # hook(run, folder) after each good save (pixgen.resume.Checkpoint)
        self.dir: Path | None = None
        self.folder: OutDir | None = None
        self.saved_at: int | None = None  # the iteration of the last good output.png
        self.failed = False  # a save has failed (warned once)

    def check(self) -> None:
        """Cheap checks before the run is built: the folder is writable, not in use, and free of results."""
        check_out_dir(self.out, self.overwrite, resume=self.resume)

    def on_start(self, run: Any) -> None:
        """Claim the output folder and write ``settings.yaml`` (reproduces the run with ``--config``)."""
        self.folder = OutDir.claim(self.out, self.overwrite, resume=self.resume)
        self.dir = self.folder.path
        try:
            write_text(self.dir / "settings.yaml", dump_yaml(settings_to_save(run)))
        except OSError as exc:
            self.folder.abandon()
            self.folder = None
            raise PixgenError(f"cannot write settings.yaml in {self.dir} ({os_cause(exc)}); "
                              "choose another --out") from None

    def on_step(self, run: Any, result: Any) -> None:
        """Save every ``every`` steps."""
        if self.every and result.iteration % self.every == 0:
            self.save(run)

    def on_end(self, run: Any, result: Any) -> None:
        """Save the final image (a second try if the first fails), record the paths, let the folder go."""
        try:
            result.path = self.save(run, image=result.image, tries=2)
            result.files.update({p.name: p for p in sorted(self.dir.iterdir()) if not p.name.startswith(".")})
        finally:
            self.close()

    def close(self) -> None:
        """Release the output folder (also when the run failed)."""
        if self.folder is not None:
            self.folder.release()
            self.folder = None

    def save(self, run: Any, image: Any = None, tries: int = 0) -> Path | None:
        """Write ``output.png`` (atomic replace) and the drawer's extra outputs. A failure warns once and
        returns None; with ``tries`` (the final save) it tries that often, then raises a PixgenError."""
        image = run.image() if image is None else image
        files = {"output.png": lambda path: save_png(image, path, png_metadata(run)),
                 **{name: partial(write_text, text=content) for name, content in run.drawer.extra_outputs().items()}}
        for attempt in range(1, max(1, tries) + 1):
            try:
                for name, write in files.items():
                    failing = name
                    write(self.dir / name)
            except OSError as exc:
                if attempt < tries:
                    continue
                self._failed(failing, os_cause(exc), final=bool(tries))
                return None
            self.saved_at = run.iteration
            for hook in self.after_save:
                hook(run, self.dir)
            return self.dir / "output.png"
        return None

    def _failed(self, name: str, cause: str, final: bool) -> None:
        """The one line for a failed save: a warning during the run, the error at its end."""
        kept = f"output.png there is from iteration {self.saved_at}" if self.saved_at else "no image was saved"
        if final:
            raise PixgenError(f"cannot write {name} in {self.dir} ({cause}); the final image is lost and {kept}; "
                              "free some space or choose another --out")
        if not self.failed:
            log.warning("cannot write %s in %s (%s); %s; the run goes on and saves again at the end", name,
                        self.dir, cause, kept)
        self.failed = True


#: settings about where a run writes, not what it makes: kept out of settings.yaml and the PNG, so the image's
#: bytes do not depend on the folder and a reused settings.yaml never overwrites a folder by itself
_FOLDER_SETTINGS = ("out", "overwrite")


def settings_to_save(run: Any) -> dict[str, Any]:
    """The non-default settings of a run with the seed actually used, without its output folder."""
    settings = {k: v for k, v in run.config.to_dict(non_default=True).items() if k not in _FOLDER_SETTINGS}
    settings["seed"] = run.seed
    settings["starts"] = run.config.starts  # always: a preset's starts would otherwise come back
    return settings


def png_metadata(run: Any) -> dict[str, str]:
    """PNG text chunks: software and version, the seed used, the iteration, every non-default setting."""
    meta = {"Software": f"pixgen {__version__}", "pixgen_version": __version__,
            "pixgen_seed_used": str(run.seed), "pixgen_iteration": str(run.iteration)}
    for key, value in run.config.to_dict(non_default=True).items():
        if key not in _FOLDER_SETTINGS:
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
        self.close()
        log.info(summary(result))

    def close(self) -> None:
        """Close the bar (also when the run failed, so an error starts on its own line)."""
        if self.bar is not None:
            self.bar.close()


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
