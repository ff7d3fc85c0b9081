"""Where the jobs run. ``local``: one long-lived worker process per device (each GPU, or one CPU worker), so
each worker loads its models once. ``ray``: one Ray actor per GPU of a Ray cluster (or CPU actors). Both give
the driver (job, result) pairs as jobs finish; a worker that dies fails its job and is replaced."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pixgen.errors import PixgenError

log = logging.getLogger("pixgen")
EXECUTORS = ("local", "ray")


def make_executor(kind: str, *, address: str | None = None, workers: int | None = None,
                  threads: int | None = None, gpu: bool = True) -> Any:
    """The executor named ``kind``; ``gpu`` False keeps every worker on the CPU (all jobs ask for ``cpu``)."""
    if kind not in EXECUTORS:
        raise PixgenError(f"unknown executor {kind!r}; choose one of: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise PixgenError(f"workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise PixgenError(f"threads must be at least 1, got {threads}")
    if kind == "local":
        if address:
            raise PixgenError("--address is for the ray executor; add --executor ray or leave out --address")
        return LocalExecutor(workers, threads, gpu)
    from pixgen.batching.ray_executor import RayExecutor

    return RayExecutor(address, workers, threads, gpu)


def died_result(code: int | None, where: str) -> dict[str, Any]:
    """The result of a job whose worker died under it (killed, out of memory, a crash in native code)."""
    how = "" if code is None else f" (killed by signal {-code})" if code < 0 else f" (exit code {code})"
    return {"status": "failed", "seconds": None, "loss": None, "error": f"the {where} died while running this job"
            f"{how}; it may have run out of memory: try fewer workers, a smaller size or cutn", "files": {}}


def cpu_count() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _serve(conn: Any, gpu: int | None, threads: int | None) -> None:
    """A local worker process: run the jobs sent on ``conn`` until ``None`` or the driver goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops the workers itself
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)  # before torch touches CUDA: this worker sees one GPU
    logging.getLogger("pixgen").setLevel(logging.WARNING)
    from pixgen.batching.worker import JobWorker

    worker = JobWorker(threads)
    while True:
        try:
            task = conn.recv()
            if task is None:
                return
            conn.send(worker.run(task))
        except (EOFError, OSError):  # the driver is gone
            return


@dataclass
class _Slot:
    gpu: int | None
    process: Any
    conn: Any
    task: dict[str, Any] | None = None


class LocalExecutor:
    """One worker process per GPU (or ``workers`` processes, round-robin over the GPUs; one CPU worker if none)."""

    name = "local"

    def __init__(self, workers: int | None, threads: int | None, gpu: bool) -> None:
        import torch

        self.gpus = torch.cuda.device_count() if gpu and torch.cuda.is_available() else 0
        self.workers = workers or max(1, self.gpus)
        self.threads = threads or (None if self.gpus else max(1, cpu_count() // self.workers))
        self.context = multiprocessing.get_context("spawn")  # a clean interpreter: no forked CUDA or threads

    def connect(self) -> None:
        """Nothing to reach: local workers start when the first job is given."""

    def describe(self) -> str:
        """``1 CPU worker (2 threads)`` or ``4 workers on 4 GPUs``."""
        if self.gpus:
            return f"{self.workers} worker(s) on {self.gpus} GPU(s)"
        return f"{self.workers} CPU worker(s) ({self.threads} thread(s) each)"

    def run(self, tasks: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Run ``tasks`` on the workers; yield (task, result) as each finishes."""
        pending = deque(tasks)
        slots = [self._spawn(i % self.gpus if self.gpus else None) for i in range(min(self.workers, len(tasks)))]
        try:
            while pending or any(slot.task for slot in slots):
                for slot in slots:
                    if slot.task is None and pending:
                        slot.task = pending.popleft()
                        self._send(slot)
                busy = [slot for slot in slots if slot.task is not None]
                ready = multiprocessing.connection.wait([s.conn for s in busy] + [s.process.sentinel for s in busy])
                for index, slot in enumerate(slots):
                    if slot.task is not None and (slot.conn in ready or slot.process.sentinel in ready):
                        task, slot.task = slot.task, None
                        result = self._receive(slot)
                        if result is None:
                            result = died_result(slot.process.exitcode, "worker process")
                            slots[index] = self._replace(slot)
                        yield task, result
        finally:
            self._stop(slots)

    def _spawn(self, gpu: int | None) -> _Slot:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(child, gpu, self.threads), daemon=True,
                                       name="pixgen-batch-worker")
        process.start()
        child.close()
        return _Slot(gpu, process, parent)

    def _send(self, slot: _Slot) -> None:
        try:
            slot.conn.send(slot.task)
        except OSError:  # it died between jobs: the wait sees its sentinel and the job fails as "died"
            pass

    def _receive(self, slot: _Slot) -> dict[str, Any] | None:
        try:
            return slot.conn.recv() if slot.conn.poll() else None
        except (EOFError, OSError):
            return None

    def _replace(self, slot: _Slot) -> _Slot:
        slot.process.join(timeout=5)
        slot.conn.close()
        return self._spawn(slot.gpu)

    def _stop(self, slots: list[_Slot]) -> None:
        """Idle workers are asked to exit; busy ones (the driver was interrupted) are terminated."""
        for slot in slots:
            if slot.task is None:
                self._send_stop(slot)
            else:
                slot.process.terminate()
        for slot in slots:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()

    @staticmethod
    def _send_stop(slot: _Slot) -> None:
        try:
            slot.conn.send(None)
        except OSError:
            pass

    def close(self) -> None:
        """Nothing held between runs: the workers stop when ``run`` ends."""
