"""The model cache folder, offline mode and the sha256 records kept beside cached files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_CHUNK = 1 << 20
_TRUE = {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """``$PIXGEN_CACHE``, else ``$XDG_CACHE_HOME/pixgen``, else ``~/.cache/pixgen``."""
    if os.environ.get("PIXGEN_CACHE"):
        return Path(os.environ["PIXGEN_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "pixgen"


def offline() -> bool:
    """True when ``PIXGEN_OFFLINE`` is set to 1/true/yes/on: the store never touches the network."""
    return os.environ.get("PIXGEN_OFFLINE", "").strip().lower() in _TRUE


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def read_record(path: Path) -> dict | None:
    """The sha256 record written beside ``path`` on download or first use, or None."""
    try:
        return json.loads(record_path(path).read_text())
    except (OSError, ValueError):
        return None


def write_record(path: Path, digest: str, source: str) -> None:
    st = path.stat()
    record = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "source": source}
    tmp = record_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, record_path(path))
