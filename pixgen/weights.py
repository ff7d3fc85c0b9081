"""The model store: a cache dir, atomic resumable downloads with a progress bar, sha256 checks, offline mode.

Layout: ``cache_dir()/<WeightFile.filename>``, a ``<file>.sha256.json`` record beside each downloaded file
(sha256, size, mtime), partial downloads as ``<file>.<urlhash>.part`` (resumed with HTTP Range requests) and
lock files under ``cache_dir()/.locks``. A file whose size or mtime differs from its record is re-hashed
before use; ``verify`` re-hashes everything.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from pixgen.cache import cache_dir, offline, read_record, sha256_file, write_record
from pixgen.downloads import DownloadError, download_file
from pixgen.errors import ModelUnavailableError, PixgenError
from pixgen.model_table import ModelEntry, WeightFile, find_entry, known_models, open_clip_entry

_CHUNK = 1 << 20
_TRUE = {"1", "true", "yes", "on"}
_LOCAL_FLAGS = {"vqgan": "--vqgan-config FILE.yaml --vqgan-checkpoint FILE.ckpt",
                "clip": "--clip {model}:/path/to/weights"}


def get_entry(name: str) -> ModelEntry:
    """The store entry for ``name`` (``model_table.find_entry``); unknown names raise an error listing the
    known ones."""
    entry = find_entry(name)
    if entry is None:
        raise PixgenError(f"unknown model {name!r}; known models: {', '.join(known_models())}, and any open_clip "
                          "MODEL:TAG of `pixgen list clip` (see `pixgen models list`)")
    return entry


def store_entries() -> list[ModelEntry]:
    """The listed models (``known_models``) and the open_clip ``MODEL:TAG`` ones found in the cache."""
    listed = known_models()
    found = []
    for path in sorted((cache_dir() / "clip").glob("*/*.weights")):
        entry = open_clip_entry(path.parent.name, path.stem)
        if entry is not None and entry.name not in listed:
            found.append(entry)
    return [*listed.values(), *found]


def file_path(entry: ModelEntry, role: str) -> Path:
    """Where the file for ``role`` lives: in the cache, or in the ``assets/`` folder of ``entry.package``."""
    wf = entry.files[role]
    if entry.package is None:
        return cache_dir() / wf.filename
    try:
        return Path(str(importlib.resources.files(entry.package) / "assets" / wf.filename))
    except ImportError as exc:
        raise PixgenError(f"the model {entry.name!r} ships in the package {entry.package}, which cannot be imported "
                          f"({exc}); reinstall the package that provides it") from None


def is_cached(entry: ModelEntry) -> bool:
    """True when every file of ``entry`` is present (not checked)."""
    return all(file_path(entry, role).is_file() for role in entry.files)


def ensure_model(name: str, *, progress: bool = True) -> dict[str, Path]:
    """The local files of the named model, downloaded first if needed; see ``ensure_files``."""
    return ensure_files(get_entry(name), progress=progress)


def ensure_files(entry: ModelEntry, *, progress: bool = True) -> dict[str, Path]:
    """Role -> checked local path; downloads what is missing unless offline (``ModelUnavailableError``)."""
    if entry.package is not None:
        return _packaged_files(entry)
    paths = {}
    for role, wf in entry.files.items():
        path = file_path(entry, role)
        if path.is_file():
            check_file(wf, path, model=entry.name)
        elif offline():
            raise ModelUnavailableError(_missing_message(entry, "PIXGEN_OFFLINE is set"))
        else:
            try:
                download_file(wf, path, progress=progress)
            except DownloadError as exc:
                raise ModelUnavailableError(_missing_message(entry, f"download failed: {exc}")) from exc
        paths[role] = path
    return paths


def _packaged_files(entry: ModelEntry) -> dict[str, Path]:
    paths = {role: file_path(entry, role) for role in entry.files}
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        how = f"rebuild it with {entry.rebuild}, or reinstall" if entry.rebuild else "reinstall"
        raise ModelUnavailableError(
            f"the model {entry.name!r} should ship inside {entry.package}, but {', '.join(absent)} is missing from "
            f"this installation; {how} {entry.package.split('.')[0]}"
            + (f", or pass your own files with {_local_flag(entry)}" if entry.kind in _LOCAL_FLAGS else ""))
    return paths


def _local_flag(entry: ModelEntry) -> str:
    return _LOCAL_FLAGS[entry.kind].format(model=entry.name.partition(":")[0])


def _missing_message(entry: ModelEntry, reason: str) -> str:
    files = [file_path(entry, role) for role in entry.files]
    folder = files[0].parent
    first = next(iter(entry.files.values()))
    source = f" (from {first.urls[0]})" if len(files) == 1 and first.urls else ""
    text = (f"{entry.kind} model {entry.name} is not in the cache and cannot be downloaded now ({reason}). Place "
            f"{' and '.join(p.name for p in files)}{source} in {folder}, or run `pixgen models download "
            f"{entry.name}` when online")
    if entry.kind in _LOCAL_FLAGS:
        text += f", or use your own files with {_local_flag(entry)}"
    return text


def check_file(wf: WeightFile, path: Path, *, model: str, force: bool = False) -> str:
    """Check ``path`` against the known or recorded sha256 (re-hashing only if it changed since its record,
    or ``force``); records the digest on first use. Returns the digest; a mismatch raises ``PixgenError``."""
    record = read_record(path)
    st = path.stat()
    unchanged = record and record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns
    if unchanged and not force and (wf.sha256 is None or record.get("sha256") == wf.sha256):
        return record["sha256"]
    digest = sha256_file(path)
    expected = wf.sha256 or (record or {}).get("sha256")
    if expected and digest != expected:
        raise PixgenError(
            f"{path} is corrupt or not the expected file (sha256 {digest[:16]}..., expected {expected[:16]}...); "
            f"delete it and run `pixgen models download {model}`, or put the right file there")
    write_record(path, digest, (record or {}).get("source", "placed by hand"))
    return digest


# -- verification ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileStatus:
    """What ``verify`` found for one file: ``ok``, ``recorded`` (first hash stored), ``missing`` or ``bad``."""

    model: str
    path: Path
    state: str
    detail: str = ""


def verify(entries: list[ModelEntry] | None = None) -> list[FileStatus]:
    """Re-hash every file of ``entries`` (default: ``store_entries()``) against its known or recorded sha256:
    cached files and the files a package ships (against the sha256 its entry lists)."""
    out = []
    for entry in entries if entries is not None else store_entries():
        for role, wf in entry.files.items():
            path = file_path(entry, role)
            if not path.is_file():
                out.append(FileStatus(entry.name, path, "missing"))
            elif entry.package is not None:
                out.append(_verify_packaged(entry, wf, path))
            else:
                out.append(_verify_one(entry, wf, path))
    return out


def _verify_packaged(entry: ModelEntry, wf: WeightFile, path: Path) -> FileStatus:
    """A shipped file against its entry's sha256 (no record is written into an installed package)."""
    if wf.sha256 is None:
        return FileStatus(entry.name, path, "ok", "packaged, no sha256 listed")
    digest = sha256_file(path)
    if digest == wf.sha256:
        return FileStatus(entry.name, path, "ok", digest)
    fix = f"rebuild it with {entry.rebuild} and list its new sha256" if entry.rebuild else "rebuild it"
    return FileStatus(entry.name, path, "bad", f"{path} is not the file {entry.package} shipped (sha256 "
                      f"{digest[:16]}..., expected {wf.sha256[:16]}...): reinstall {entry.package.split('.')[0]} "
                      f"(pip install --force-reinstall), or {fix}")


def _verify_one(entry: ModelEntry, wf: WeightFile, path: Path) -> FileStatus:
    had_record = read_record(path) is not None or wf.sha256 is not None
    try:
        digest = check_file(wf, path, model=entry.name, force=True)
    except PixgenError as exc:
        return FileStatus(entry.name, path, "bad", str(exc))
    return FileStatus(entry.name, path, "ok" if had_record else "recorded", digest)
