"""The model store: a cache dir, atomic resumable downloads with a progress bar, sha256 checks, offline mode.

Layout: ``cache_dir()/<WeightFile.filename>``, a ``<file>.sha256.json`` record beside each downloaded file
(sha256, size, mtime), partial downloads as ``<file>.<urlhash>.part`` (resumed with HTTP Range requests) and
lock files under ``cache_dir()/.locks``. A file whose size or mtime differs from its record is re-hashed
before use; ``verify`` re-hashes everything.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.resources
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pixgen.errors import ModelUnavailableError, PixgenError
from pixgen.model_table import SAFETENSORS_MAGIC, ModelEntry, WeightFile, find_entry, known_models, open_clip_entry

_CHUNK = 1 << 20
_TRUE = {"1", "true", "yes", "on"}
_LOCAL_FLAGS = {"vqgan": "--vqgan-config FILE.yaml --vqgan-checkpoint FILE.ckpt",
                "clip": "--clip {model}:/path/to/weights"}


class DownloadError(Exception):
    """One mirror failed; ``partial`` says whether the ``.part`` file is worth resuming."""

    def __init__(self, message: str, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


def cache_dir() -> Path:
    """``$PIXGEN_CACHE``, else ``$XDG_CACHE_HOME/pixgen``, else ``~/.cache/pixgen``."""
    if os.environ.get("PIXGEN_CACHE"):
        return Path(os.environ["PIXGEN_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "pixgen"


def offline() -> bool:
    """True when ``PIXGEN_OFFLINE`` is set to 1/true/yes/on: the store never touches the network."""
    return os.environ.get("PIXGEN_OFFLINE", "").strip().lower() in _TRUE


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


# -- checksums ---------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def read_record(path: Path) -> dict | None:
    """The sha256 record written beside ``path`` on download or first use, or None."""
    try:
        return json.loads(_record_path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_record(path: Path, digest: str, source: str) -> None:
    st = path.stat()
    record = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "source": source}
    tmp = _record_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, _record_path(path))


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
    _write_record(path, digest, (record or {}).get("source", "placed by hand"))
    return digest


# -- downloads ---------------------------------------------------------------------------------------------
def download_file(wf: WeightFile, dest: Path, *, progress: bool = True, timeout: float = 30.0,
                  attempts: int = 3) -> Path:
    """Download ``wf`` to ``dest`` atomically, trying each mirror with up to ``attempts`` resumed transfers;
    verifies magic bytes and sha256 (known, else recorded). Raises ``DownloadError`` listing each mirror."""
    from filelock import FileLock

    if offline():
        raise DownloadError(f"PIXGEN_OFFLINE is set; not downloading {dest.name}")
    if not wf.urls:
        raise DownloadError(f"no download address is known for {dest.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    locks = cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"{dest.name}.lock")):
        if dest.is_file():  # another process finished it while we waited
            return dest
        failures = [f"{url}: {exc}" for url, exc in _try_mirrors(wf, dest, progress, timeout, attempts)]
        if dest.is_file():
            return dest
    raise DownloadError("; ".join(failures))


def _try_mirrors(wf: WeightFile, dest: Path, progress: bool, timeout: float, attempts: int):
    for url in wf.urls:
        part = dest.with_name(f"{dest.name}.{hashlib.sha1(url.encode()).hexdigest()[:10]}.part")
        try:
            _fetch(url, part, progress, timeout, attempts)
            digest = _check_download(wf, part)
        except DownloadError as exc:
            if not exc.partial:
                part.unlink(missing_ok=True)
            yield url, exc
            continue
        os.replace(part, dest)
        _write_record(dest, digest, url)
        for stale in dest.parent.glob(f"{dest.name}.*.part"):
            stale.unlink(missing_ok=True)
        return


def _check_download(wf: WeightFile, part: Path) -> str:
    with open(part, "rb") as f:
        head = f.read(16)
    if wf.magic and not any(_has_magic(head, m) for m in wf.magic):
        raise DownloadError(f"the contents are not a checkpoint (starts with {head[:8]!r})")
    digest = sha256_file(part)
    if wf.sha256 and digest != wf.sha256:
        raise DownloadError(f"sha256 mismatch: got {digest}, expected {wf.sha256}")
    return digest


def _has_magic(head: bytes, magic: bytes) -> bool:
    if magic == SAFETENSORS_MAGIC:  # a little-endian u64 header length, then the JSON header
        return len(head) > 8 and head[8:9] == b"{" and head[6:8] == b"\0\0"
    return head.startswith(magic)


def _fetch(url: str, part: Path, progress: bool, timeout: float, attempts: int) -> None:
    for attempt in range(attempts):
        try:
            _fetch_once(url, part, progress, timeout)
            return
        except DownloadError as exc:
            if not exc.partial or attempt == attempts - 1:
                raise


def _fetch_once(url: str, part: Path, progress: bool, timeout: float) -> None:
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "pixgen", **({"Range": f"bytes={start}-"} if start else {})}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # our partial file is no prefix of theirs: start again
            part.unlink(missing_ok=True)
            raise DownloadError("the server rejected the resume request", partial=True) from exc
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"cannot connect ({getattr(exc, 'reason', exc)})") from exc
    with resp:
        if resp.headers.get_content_type() == "text/html":
            raise DownloadError("the server sent a web page instead of the file (the link may have expired)")
        if start and not (resp.status == 206 and
                          resp.headers.get("Content-Range", "").startswith(f"bytes {start}-")):
            start = 0  # no resume support: take the whole file
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        _copy(resp, part, start, total, progress)


def _copy(resp, part: Path, start: int, total: int | None, progress: bool) -> None:
    from tqdm.auto import tqdm

    done = start
    with open(part, "ab" if start else "wb") as out, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name.split(".")[0],
        disable=not progress, file=sys.stderr, leave=True,
    ) as bar:
        try:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"transfer interrupted after {done} bytes ({exc})", partial=True) from exc
    if total is not None and done != total:
        raise DownloadError(f"transfer interrupted after {done} of {total} bytes", partial=True)


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
