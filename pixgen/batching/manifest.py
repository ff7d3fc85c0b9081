"""``batch.jsonl``: one JSON line per finished job (id, settings hash, status, seconds, final loss, error...),
appended atomically, so a batch killed at any moment leaves a manifest that says exactly which jobs are done."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "batch.jsonl"
#: the fields of a row, in the order they are written
FIELDS = ("id", "hash", "status", "seconds", "loss", "error", "prompt", "seed", "index", "worker", "loads", "time")


class Manifest:
    """The manifest of a batch folder: read every row, the latest row per job, append a row."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / MANIFEST

    def rows(self) -> list[dict[str, Any]]:
        """Every row in order; a line that is not a JSON object (a write cut short by a crash) is skipped."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "id" in row:
                rows.append(row)
        return rows

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last row of each job id."""
        return {row["id"]: row for row in self.rows()}

    def append(self, row: dict[str, Any]) -> None:
        """Append one row as one ``write`` on an ``O_APPEND`` descriptor, then fsync: a reader sees the whole
        line or none of it. A line left unfinished by an earlier crash is ended first, so it spoils only itself."""
        ordered = {key: row.get(key) for key in FIELDS} | {k: v for k, v in row.items() if k not in FIELDS}
        data = (json.dumps(ordered, default=str) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if _ends_unfinished(self.path):
                data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_unfinished(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


def is_done(row: dict[str, Any] | None, digest: str) -> bool:
    """Whether ``row`` records the job with these settings as done (failed and interrupted jobs are redone)."""
    return row is not None and row.get("status") == "done" and row.get("hash") == digest
