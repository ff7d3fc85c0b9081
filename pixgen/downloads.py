"""Atomic, resumable downloads with mirrors, a progress bar, magic-byte and sha256 checks (for the model store)."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from pixgen.cache import cache_dir, offline, sha256_file, write_record
from pixgen.model_table import SAFETENSORS_MAGIC, WeightFile

_CHUNK = 1 << 20


class DownloadError(Exception):
    """One mirror failed; ``partial`` says whether the ``.part`` file is worth resuming."""

    def __init__(self, message: str, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


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
        write_record(dest, digest, url)
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
