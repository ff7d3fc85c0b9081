"""``pixgen animate`` (a zoom / feedback animation, a loop of runs) and ``pixgen video DIR`` (frames -> video)."""

from __future__ import annotations

import sys
from typing import Any

import click

from pixgen.cli_common import _errors, _run_options, _setup_logging, _Signals, parse_extra_args

_MOVE_HELP = "a number or an expression of the frame number t, e.g. '1 + 0.01*sin(t/5)'"


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@_run_options
@click.option("--frames", type=int, help="Frames to make (default 30).")
@click.option("--steps-per-frame", type=int, help="Steps of each frame after the first (default 20); the first "
              "takes --iterations.")
@click.option("--zoom", help=f"Zoom per frame, >1 moves in (default 1.02): {_MOVE_HELP}.")
@click.option("--rotate", help=f"Degrees per frame, counter-clockwise (default 0): {_MOVE_HELP}.")
@click.option("--shift-x", help=f"Pixels per frame to the right (default 0): {_MOVE_HELP}.")
@click.option("--shift-y", help=f"Pixels per frame down (default 0): {_MOVE_HELP}.")
@click.option("--resume", type=click.Path(file_okay=False), help="Continue the animation in this folder after its "
              "last complete frame (its recorded settings; --frames may grow).")
@click.option("--config", "config_file", help="Settings YAML; flags override it.")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.pass_context
def animate(ctx: click.Context, config_file: str | None, debug: bool, resume: str | None, **flags: Any) -> None:
    """Make a zoom animation: each frame starts from the one before, moved by the camera (see docs/animation.md).
    Writes frames/00001.png ... and animation.mp4 into --out. Ctrl-C keeps the frames made so far."""
    _setup_logging()
    with _Signals() as signals, _errors(debug, signals):
        from pixgen.animation import animate as animate_api
        from pixgen.config import load_yaml

        values = load_yaml(config_file) if config_file else {}
        values.update({k: v for k, v in flags.items() if v is not None and v != ()})
        values.update(parse_extra_args(ctx.args))
        signals.started = True  # frames already written are kept whenever the signal comes
        result = animate_api(**values, resume=resume, callbacks=[signals])
    if result.interrupted:
        click.echo(f"Interrupted: {len(result.frames)} frame(s) kept in {result.folder}; continue with "
                   f"pixgen animate --resume {result.folder}", err=True)
        sys.exit(signals.exit_code)


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--fps", type=float, help="Frames per second (default: the folder's setting, else 12).")
@click.option("--format", "kind", type=click.Choice(["mp4", "gif"]), help="Video format (default: the folder's "
              "setting, else mp4).")
@click.option("--name", help="File name without suffix (default progress; animation for pixgen animate folders).")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def video(folder: str, fps: float | None, kind: str | None, name: str | None, debug: bool) -> None:
    """Assemble FOLDER/frames/*.png (kept by --video or pixgen animate, also of a killed run) into a video."""
    with _errors(debug):
        from pixgen.video import assemble

        click.echo(str(assemble(folder, fps, kind, name)))
