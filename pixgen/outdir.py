"""Output folders: pick one, and let one run own it from its start to its end.

A run holds a lock file in its folder (``.pixgen.lock``, holding the run's pid) for its whole duration and
removes it at the end, so a second run given the same ``--out`` stops with one line; and it refuses a folder
that already holds another run's results unless ``overwrite`` is set, or ``resume`` continues that run
(``pixgen.resume``: its files are kept). Where the folder cannot be written, the run says so
before any model loads.
"""

from __future__ import annotations

import datetime as _dt
import os
from functools import partial
from pathlib import Path

from filelock import FileLock, Timeout

from pixgen.errors import PixgenError
from pixgen.io import os_cause

LOCK_NAME = ".pixgen.lock"
SETTINGS_NAME = "settings.yaml"
CHECKPOINT_NAME = "checkpoint.pt"


def previous_results(folder: Path) -> list[str]:
    """The names of a run's result files in ``folder``: ``settings.yaml``, ``checkpoint.pt`` and ``output.*``."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.name in (SETTINGS_NAME, CHECKPOINT_NAME) or p.name.startswith("output."))


def check_out_dir(out: str | Path | None, overwrite: bool = False, root: str | Path = "outputs",
                  resume: bool = False) -> None:
    """Cheap checks before any model loads: the folder (or the folder that would hold it) is writable, and an
    existing ``out`` is neither in use by a run nor holding another run's results (unless ``overwrite``, or
    ``resume``: the run continues there)."""
    target = Path(out) if out is not None else Path(root)
    _require_writable(target, default=out is None)
    if out is not None and (target / LOCK_NAME).exists():
        _unlock(target, _lock(target, pid=False))  # a lock left by a killed run is free: remove it
    if out is not None and not resume:
        _refuse_results(target, overwrite)


class OutDir:
    """An output folder this run owns until ``release()``."""

    def __init__(self, path: Path, lock: FileLock, created: bool = False) -> None:
        self.path, self.lock, self.created = path, lock, created

    @classmethod
    def claim(cls, out: str | Path | None, overwrite: bool = False, root: str | Path = "outputs",
              resume: bool = False) -> OutDir:
        """Create the folder, lock it, and clear another run's results from it if ``overwrite`` (else refuse;
        ``resume`` keeps them: the run continues)."""
        check_out_dir(out, overwrite, root, resume)
        created = out is None or not Path(out).exists()
        path = make_out_dir(out, root)
        try:
            lock = _lock(path, pid=True)
        except PixgenError:
            _remove_empty(path, created)
            raise
        try:
            for name in [] if resume else _refuse_results(path, overwrite):
                (path / name).unlink()
        except BaseException:
            _unlock(path, lock)
            raise
        return cls(path, lock, created)

    def release(self) -> None:
        """Let other runs use the folder; the lock file goes."""
        _unlock(self.path, self.lock)

    def abandon(self) -> None:
        """Release the folder and remove it if this run created it and nothing was written (a failed start)."""
        self.release()
        _remove_empty(self.path, self.created)


def _remove_empty(path: Path, created: bool) -> None:
    """Remove ``path`` if this run created it and it is empty."""
    if created:
        try:
            path.rmdir()
        except OSError:
            pass


def _refuse_results(folder: Path, overwrite: bool) -> list[str]:
    """Another run's result files in ``folder``; an error unless ``overwrite`` (the hook for ``--resume``)."""
    found = previous_results(folder)
    if found and not overwrite:
        raise PixgenError(f"folder {folder} holds another run's results; pass --overwrite or choose another --out")
    return found


class _Replaced(Exception):
    """The lock file was removed (its run ended) between opening and locking it: lock the new one."""


def _lock(folder: Path, pid: bool) -> FileLock:
    """Take the folder's lock now (never wait); with ``pid``, record this process in the lock file."""
    path = folder / LOCK_NAME
    for _ in range(3):
        lock = FileLock(path, timeout=0, on_acquired=partial(_owned, path, pid))
        try:
            lock.acquire()
        except _Replaced:
            continue
        except Timeout:
            break
        except OSError as exc:
            raise PixgenError(f"cannot use output folder {folder} ({os_cause(exc)}); choose another --out") from None
        return lock
    raise PixgenError(f"folder {folder} is in use by another run{_holder(folder)}; wait for it to end or "
                      "choose another --out")


def _owned(path: Path, pid: bool, fd: int) -> None:
    """Check the locked file is still the folder's lock file (its holder removes it, then unlocks), and
    record this process's pid in it."""
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        raise _Replaced
    if pid:
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # a full disk: the lock holds without the pid, and the first write says why
            pass


def _unlock(folder: Path, lock: FileLock) -> None:
    """Remove the lock file while holding it, then unlock: a run that opened it meanwhile sees it replaced."""
    try:
        (folder / LOCK_NAME).unlink(missing_ok=True)
    except OSError:  # Windows keeps a locked file; it is reused
        pass
    lock.release()


def _holder(folder: Path) -> str:
    """`` (pid N)`` from the lock file, or nothing if it records none."""
    try:
        text = (folder / LOCK_NAME).read_text().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def _require_writable(target: Path, default: bool) -> None:
    """One line, before any work, if ``target`` (or its nearest existing parent) cannot be written."""
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise PixgenError(f"{existing} is a file, not a folder; choose another --out")
    if os.access(existing, os.W_OK | os.X_OK):
        return
    read_only = hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY
    cause = "read-only file system" if read_only else "permission denied"
    if default:
        raise PixgenError(f"cannot create the default output folder {target}/ in {existing.resolve()} ({cause}); "
                          "pass --out DIR in a writable place")
    where = "is not writable" if existing == target else f"cannot be created in {existing}"
    raise PixgenError(f"output folder {target} {where} ({cause}); choose another --out")


def make_out_dir(out: str | Path | None, root: str | Path = "outputs") -> Path:
    """Create and return the output folder: ``out`` as given, or the first free ``outputs/YYYYMMDD_NN``."""
    try:
        if out is not None:
            path = Path(out)
            path.mkdir(parents=True, exist_ok=True)
            return path
        stamp = _dt.date.today().strftime("%Y%m%d")
        Path(root).mkdir(parents=True, exist_ok=True)
        for seq in range(1, 10000):
            path = Path(root) / f"{stamp}_{seq:02d}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path
    except OSError as exc:
        where = out if out is not None else f"under {root}"
        raise PixgenError(f"cannot create output folder {where} ({os_cause(exc)}); choose another --out") from None
    raise PixgenError(f"no free output folder name under {root}; pass --out DIR")
