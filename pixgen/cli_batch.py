"""``pixgen batch JOBS.yaml`` (many runs, locally or on Ray, resumable) and ``pixgen gallery DIR``."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from pixgen.errors import PixgenError


def _clean_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """A ``PixgenError`` becomes one ``Error: ...`` line and exit status 1; Ctrl-C exits 130 with a hint."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.pop("debug", False)
        try:
            return func(*args, **kwargs)
        except PixgenError as exc:
            if debug:
                raise
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted: the jobs finished so far are recorded; run the same command again to do the "
                       "rest", err=True)
            sys.exit(130)

    return wrapper


def _echo_logs() -> None:
    """pixgen's log lines on stderr, plainly (once)."""
    logger = logging.getLogger("pixgen")
    if not any(getattr(h, "pixgen_batch", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.pixgen_batch = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@click.command("batch")
@click.argument("jobs_file", required=False, type=click.Path(dir_okay=False))
@click.option("--prompts-file", type=click.Path(dir_okay=False), help="Prompts, one a line (added to the grid).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one worker process per GPU (or one CPU worker); ray: actors on a Ray cluster.")
@click.option("--address", help="Ray cluster address (HOST:PORT or auto); default: start a local Ray cluster.")
@click.option("--out", "-o", help="Batch folder (default outputs/<jobs file name>); rerun to finish it.")
@click.option("--workers", type=int, help="Worker processes / actors (default: one per GPU, else one).")
@click.option("--threads", type=int, help="torch threads per CPU worker (default: the CPUs shared out).")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@_clean_errors
def batch(jobs_file: str | None, prompts_file: str | None, executor: str, address: str | None, out: str | None,
          workers: int | None, threads: int | None) -> None:
    """Run every job of JOBS_FILE (shared settings, prompts, seeds, a grid, a jobs list; see docs/batch.md).
    Finished jobs are skipped on a rerun; the exit status is 1 if any job failed."""
    from pixgen.batching import batch as run_batch

    _echo_logs()
    rows = run_batch(jobs_file, executor, out=out, prompts_file=prompts_file, address=address, workers=workers,
                     threads=threads)
    failed = [row for row in rows if row.get("status") != "done"]
    folder = out or _default_out(jobs_file, prompts_file)
    click.echo(f"{len(rows)} job(s): {len(rows) - len(failed)} done, {len(failed)} failed; gallery: "
               f"{folder}/index.html", err=True)
    for row in failed:
        click.echo(f"  failed {row['id']}: {row.get('error')}", err=True)
    if failed:
        sys.exit(1)


def _default_out(jobs_file: str | None, prompts_file: str | None) -> str:
    from pixgen.batching.runner import default_out

    return str(default_out(jobs_file, prompts_file))


@click.command("gallery")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@_clean_errors
def gallery(folder: str) -> None:
    """Rebuild FOLDER/index.html and FOLDER/contact_sheet.png from a batch's batch.jsonl."""
    from pixgen.batching.gallery import build_gallery

    page, sheet = build_gallery(folder)
    click.echo(f"{page}\n{sheet}")
