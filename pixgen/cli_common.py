"""What the CLI's commands share: the run options, plug-in options after them, logging to stderr, signals and
one-line errors (``pixgen run``, ``pixgen animate``)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

import click

from pixgen.errors import PixgenError

# numbers pass as text: RunConfig.from_dict checks every value by one schema (pixgen.schema), as for YAML and the API
_INT, _FLOAT = {"metavar": "INTEGER"}, {"metavar": "FLOAT"}
_RUN_OPTIONS = [
    click.option("--prompt", "-p", help='Prompts: "text[:weight[:stop]] | other text:-0.5".'),
    click.option("--drawer", "-d", help="Drawer spec NAME[:ARG] (pixel, pixel:hex, vqgan:imagenet_f16_16384...)."),
    click.option("--clip", multiple=True, help="CLIP model MODEL[:TAG][@WEIGHT]; repeat for several."),
    click.option("--loss", multiple=True, help="Extra loss NAME[:ARG...][@WEIGHT] (saturation, symmetry, edge, "
                 "style...: see pixgen list losses); repeatable."),
    click.option("--filters", multiple=True, help="Filters on the render before the cutouts, comma-separated: "
                 "lookup (snap to --palette), tiler, wallpaper[:shift|horizontal|vertical]."),
    click.option("--palette", help=r'Palette of the lookup filter and palette loss: "[black,#f00,white]", '
                 r'"red->white\16", @colours.png.'),
    click.option("--size", help="Output size WIDTHxHEIGHT (default 384x216)."),
    click.option("--iterations", "-i", **_INT, help="Optimization steps (default 250)."),
    click.option("--seed", help="Integer or any string (hashed); default random, recorded in the output."),
    click.option("--cutn", **_INT, help="Cutouts per step and CLIP input size (default 30)."),
    click.option("--batches", **_INT, help="Gradient accumulation passes per step (default 1)."),
    click.option("--augment/--no-augment", default=None, help="kornia augmentation of the cutouts (default on)."),
    click.option("--cut-noise", **_FLOAT, help="Max std of the per-cutout noise (default 0.1)."),
    click.option("--cut-zoom", **_FLOAT, help="Share of zoom cutouts; the rest show the whole image (0.6)."),
    click.option("--lr", **_FLOAT, help="Learning rate (default: the drawer's own)."),
    click.option("--lr-drops", **_FLOAT, multiple=True, help="LR falls 10x at these % of the run (default 75)."),
    click.option("--lr-warmup", **_FLOAT, help="LR rises linearly over this % of the run (default 0: none)."),
    click.option("--starts", **_INT, help="Try N starts (seeds derived from --seed); keep the best (default 1)."),
    click.option("--start-trial", **_FLOAT, help="% of the run each start takes before the choice (20)."),
    click.option("--save-every", **_INT, help="Rewrite output.png every N steps (default 10; 0 = end only)."),
    click.option("--prompt-every", help="Steps per part of an 'a ^ b ^ c' story; parts repeat (default: even parts)."),
    click.option("--video", is_flag=True, default=None, help="Keep frames/ and write progress.mp4 (docs/video.md)."),
    click.option("--video-every", **_INT, help="A video frame every N steps (default 5)."),
    click.option("--fps", **_FLOAT, help="Video frames per second (default 12)."),
    click.option("--video-format", help="Video format: mp4 (default) or gif."),
    click.option("--out", "-o", help="Output folder (default outputs/YYYYMMDD_NN)."),
    click.option("--overwrite", is_flag=True, default=None,
                 help="Reuse an --out that holds another run's results (they are replaced)."),
    click.option("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."),
    click.option("--init-image", help="Start from this image instead of noise."),
    click.option("--init-noise", help="pixels (fractal), gradient, snow, none; drawers may add kinds."),
    click.option("--init-weight", **_FLOAT, help="Keep the render near --init-image (pixel MSE weight; 0: off)."),
    click.option("--init-latent-weight", **_FLOAT, help="Keep the drawer's parameters near their start (0: off)."),
    click.option("--image-prompt", multiple=True, help="Picture as a prompt FILE[:WEIGHT[:STOP]] (globs; repeatable):"
                 " cut like the render each step."),
    click.option("--target-image", multiple=True, help="Picture encoded once FILE[:WEIGHT[:STOP]] (globs; "
                 "repeatable), used like a text prompt."),
    click.option("--optimizer", help="adam (default), adamw, adagrad, adamax, radam, nadam, sgd."),
    click.option("--precision", help="auto (default: bf16 on CPUs with fast bf16 and on CUDA, else fp32), fp32, "
                 "bf16, fp16."),
    click.option("--compile", is_flag=True, default=None,
                 help="torch.compile the CLIP image towers: 2-7% faster steps after a compile of about 40 s."),
    click.option("--auto-stop", **_INT, help="End when the loss has not improved for N steps (0: off)."),
    click.option("--preset", help="A bundle of settings, e.g. shapes (offline built-in models)."),
    click.option("--quality", help="pixray quality: draft, normal, better, best, supreme."),
    click.option("--aspect", help="With --quality: widescreen (default), square, portrait."),
]


def _run_options(func: Any) -> Any:
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return func


def parse_extra_args(args: list[str]) -> dict[str, str]:
    """``["--pixel-size", "8", "--flag", "--k=v"]`` -> ``{"pixel_size": "8", "flag": "true", "k": "v"}``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise PixgenError(f"unexpected argument {arg!r}; options are written --name value")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            value = args[i + 1] if has_value else "true"
            i += has_value
        out[key.replace("-", "_")] = value
        i += 1
    return out


class _EchoHandler(logging.Handler):
    """Log records as plain lines on the current stderr (through click, so test runners capture them)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def _setup_logging() -> None:
    logger = logging.getLogger("pixgen")
    if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
        logger.addHandler(_EchoHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # a library's root-logger basicConfig would print every line twice


class _Signals:
    """SIGTERM (``timeout``, container stops, batch schedulers) stops a run as Ctrl-C does, so both end with
    the same final save; exit codes follow the shell's 128 + signal: 130 for Ctrl-C, 143 for SIGTERM. Also a
    callback, to know whether the run had started when the signal came."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.started = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: Any) -> None:
        self.received = number
        raise KeyboardInterrupt

    @property
    def exit_code(self) -> int:
        """128 + the signal that stopped the run (SIGINT when it was a plain KeyboardInterrupt)."""
        return 128 + (self.received or signal.SIGINT)

    def describe(self) -> str:
        """One line for a stop that came before the run could end by itself."""
        what = "SIGTERM" if self.received == signal.SIGTERM else "Ctrl-C"
        if not self.started:
            return f"Interrupted ({what}) before the run began; nothing was written"
        return f"Interrupted ({what}) again while saving; output.png holds the last image saved before"

    def on_start(self, run: Any) -> None:
        """The run's first step is next."""
        self.started = True

    def on_step(self, run: Any, result: Any) -> None:
        """Nothing per step."""

    def on_end(self, run: Any, result: Any) -> None:
        """Nothing at the end."""


class _errors:
    """Turn user-facing errors into one line and exit code 1; ``--debug`` keeps the traceback. A signal that
    stops the command before the run ends by itself: one line and 130 (Ctrl-C) or 143 (SIGTERM)."""

    def __init__(self, debug: bool, signals: _Signals | None = None) -> None:
        self.debug, self.signals = debug, signals

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, KeyboardInterrupt) and self.signals is not None and not self.debug:
            click.echo(self.signals.describe(), err=True)
            sys.exit(self.signals.exit_code)
        if exc is None or self.debug or isinstance(exc, (click.ClickException, SystemExit)):
            return False
        if isinstance(exc, PixgenError):
            raise click.ClickException(str(exc)) from None
        if type(exc).__name__ == "OutOfMemoryError":
            raise click.ClickException(f"out of memory ({str(exc).splitlines()[0]}); try a smaller --cutn or "
                                       "--size, --batches 2 with half the cutn, or --device cpu") from None
        return False
