"""The command line: ``pixgen run``, ``pixgen list``, ``pixgen models``. Options only build a RunConfig.

Options a plug-in defines (``--pixel-size 8``, ``--strokes 256``, ``--lookup-beta 5``) are accepted after the run
options and checked against the chosen drawer, filters and losses, so plug-ins own their flags.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from pixgen import __version__
from pixgen.cli_common import _errors, _run_options, _setup_logging, _Signals, parse_extra_args


@click.group()
@click.version_option(__version__, prog_name="pixgen")
def main() -> None:
    """pixgen: CLIP-guided image optimization."""


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@_run_options
@click.option("--config", "config_file", help="Settings YAML (e.g. a run's settings.yaml); flags override it.")
@click.option("--resume", help="Continue the run in this folder from its checkpoint.pt (with --iterations M: "
              "extend it); only --iterations, --save-every and --device may be given with it.")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.pass_context
def run(ctx: click.Context, config_file: str | None, debug: bool, **flags: Any) -> None:
    """Optimize an image toward the prompt. Plug-in options follow as --name value (see `pixgen list`).

    Ctrl-C (exit 130) or SIGTERM (exit 143) stops the run after saving the current image and checkpoint.pt;
    --resume DIR continues it."""
    _setup_logging()
    with _Signals() as signals, _errors(debug, signals):
        from pixgen.api import run as run_api
        from pixgen.config import load_yaml

        values = load_yaml(config_file) if config_file else {}
        values.update({k: v for k, v in flags.items() if v is not None and v != ()})
        values.update(parse_extra_args(ctx.args))
        result = run_api(**values, callbacks=[signals])
    if result.interrupted:
        sys.exit(signals.exit_code)


@main.command(name="list")
@click.argument("what", required=False, type=click.Choice(["drawers", "filters", "losses", "presets", "clip"]))
def list_cmd(what: str | None) -> None:
    """Show the drawers, filters and losses (with their options), presets and known CLIP models."""
    from pixgen.listing import describe

    with _errors(False):
        click.echo(describe(what))


def _attach_models() -> None:
    try:
        from pixgen.cli_models import models
    except ImportError:
        return
    main.add_command(models)


_attach_models()


def _attach_batch() -> None:
    from pixgen.cli_batch import batch, gallery

    main.add_command(batch)
    main.add_command(gallery)


_attach_batch()


def _attach_animate() -> None:
    from pixgen.cli_animate import animate, video

    main.add_command(animate)
    main.add_command(video)


_attach_animate()
