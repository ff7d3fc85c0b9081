"""``pixgen models ...``: list the known weights, download them, print where they live, verify them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from pixgen.errors import PixgenError


def _clean_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ``PixgenError`` into one ``Error: ...`` line and exit status 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PixgenError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def _size(n: int | None, approximate: bool = False) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            text = f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            return ("~" if approximate else "") + text
        n /= 1000
    return "?"


@click.group("models")
def models() -> None:
    """Known model weights: list, download, locate and verify them."""


@models.command("list")
@_clean_errors
def list_models() -> None:
    """What is known, what is cached, and the sizes (any open_clip MODEL:TAG works too: `pixgen list clip`)."""
    from pixgen.weights import cache_dir, file_path, offline, store_entries

    click.echo(f"cache: {cache_dir()}{'  (offline)' if offline() else ''}")
    rows = []
    for entry in store_entries():
        paths = [file_path(entry, role) for role in entry.files]
        present = [p for p in paths if p.is_file()]
        if entry.package is not None:
            status = "packaged" if len(present) == len(paths) else "absent"
        else:
            status = "cached" if len(present) == len(paths) else ("partial" if present else "-")
        if present and len(present) == len(paths):
            size = _size(sum(p.stat().st_size for p in present))
        else:
            size = _size(sum(wf.size or 0 for wf in entry.files.values()) or None, approximate=True)
        rows.append((entry.name, entry.kind, status, size, entry.description))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    click.echo("Any open_clip MODEL:TAG that `pixgen list clip` shows works too: `pixgen models download MODEL:TAG`,"
               " then --clip MODEL:TAG reads it from here.")


@models.command("download")
@click.argument("name")
@_clean_errors
def download(name: str) -> None:
    """Download NAME into the cache (resuming a partial download) and check it."""
    from pixgen.weights import ensure_model

    for role, path in ensure_model(name, progress=True).items():
        click.echo(f"{role}: {path}")


@models.command("path")
@click.argument("name")
@_clean_errors
def path(name: str) -> None:
    """Print where NAME's files are (or go): one path per line."""
    from pixgen.weights import file_path, get_entry

    entry = get_entry(name)
    missing = False
    for role in entry.files:
        location = file_path(entry, role)
        missing = missing or not location.is_file()
        click.echo(str(location))
    if missing and entry.package is not None:
        how = f"rebuild with {entry.rebuild}, or reinstall" if entry.rebuild else "reinstall the package"
        click.echo(f"(missing from this installation: {how})", err=True)
    elif missing:
        click.echo(f"(not all present yet: run `pixgen models download {name}`)", err=True)


@models.command("verify")
@click.argument("names", nargs=-1)
@_clean_errors
def verify(names: tuple[str, ...]) -> None:
    """Re-hash the cached files (of NAMES, or all) against their known or recorded sha256."""
    from pixgen.weights import get_entry
    from pixgen.weights import verify as verify_files

    entries = [get_entry(n) for n in names] if names else None
    results = [r for r in verify_files(entries) if r.state != "missing" or names]
    if not results:
        click.echo("nothing cached yet")
    for result in results:
        note = {"recorded": "sha256 recorded (first check)", "ok": "ok"}.get(result.state, result.state)
        click.echo(f"{result.model}: {result.path.name}: {note}" + (f"\n  {result.detail}" if result.state == "bad"
                                                                    else ""))
    bad = [r for r in results if r.state in ("bad", "missing")]
    if bad:
        raise click.ClickException(f"{len(bad)} file(s) missing or failing their check")
