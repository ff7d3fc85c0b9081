"""The ``ray`` executor: jobs on Ray actors, one GPU each where the cluster has GPUs (else CPU actors).

Without an address a private local Ray cluster starts for the batch (and stops after it); ``--address auto``
joins the cluster that ``ray start`` made on this machine; ``--address HOST:PORT`` (or ``ray://HOST:PORT``)
a remote one. Every node needs pixgen installed, with the files that the jobs' settings name at the same paths.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from pixgen.batching.executors import cpu_count, died_result
from pixgen.errors import PixgenError

log = logging.getLogger("pixgen")


def import_ray() -> Any:
    """The ``ray`` module, or a ``PixgenError`` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise PixgenError("the ray executor needs Ray, which is not installed; pip install 'pixgen[ray]' "
                          "(or use --executor local)") from None
    return ray


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (one line) when nothing listens at a ``HOST:PORT`` Ray address; Ray itself waits for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise PixgenError(f"Ray address {address!r} is not HOST:PORT, ray://HOST:PORT or auto; `ray status` on "
                          "the head node prints it")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise PixgenError(f"Ray cluster at {address} is unreachable ({exc.strerror or exc}); start it with "
                          "`ray start --head` on the head node, check the address and port, or leave out "
                          "--address to start a local cluster") from None


class RayExecutor:
    """Ray actors (each a long-lived worker process that loads its models once) fed one job at a time."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None, threads: int | None, gpu: bool) -> None:
        self.address, self.workers, self.threads, self.gpu = address, workers, threads, gpu
        self.ray: Any = None
        self.gpus, self.actor_cpus = 0, 1

    def connect(self) -> None:
        """Reach (or start) the cluster and size the actors; an unreachable cluster raises ``PixgenError``."""
        ray = import_ray()
        if self.address and self.address not in ("auto", "local"):
            check_reachable(self.address)
        env = {k: v for k, v in os.environ.items() if k.startswith("PIXGEN_")}
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                                   "runtime_env": {"env_vars": env} if env else None}
        if self.address in (None, "local"):
            options.update(address="local", include_dashboard=False, num_cpus=cpu_count())
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, TimeoutError) as exc:
            raise PixgenError(f"cannot reach a Ray cluster at {self.address} ({str(exc).splitlines()[0]}); start "
                              "one with `ray start --head`, or leave out --address for a local cluster") from None
        self.ray = ray
        self._size(ray.cluster_resources(), [n for n in ray.nodes() if n.get("Alive")])

    def _size(self, resources: dict[str, float], nodes: list[dict[str, Any]]) -> None:
        """One actor per GPU (or ``workers``); CPU actors share the largest node's CPUs as threads."""
        self.gpus = int(resources.get("GPU", 0)) if self.gpu else 0
        cpus = int(resources.get("CPU", 1))
        node_cpus = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=cpus) or 1
        if self.gpus:
            self.workers = self.workers or self.gpus
            self.actor_cpus = 1
        else:
            self.workers = min(self.workers or 1, cpus)
            self.actor_cpus = self.threads or max(1, node_cpus // self.workers)
        self.threads = self.threads or (None if self.gpus else self.actor_cpus)

    def describe(self) -> str:
        """``2 Ray actors on 2 GPU(s)`` or ``1 Ray CPU actor(s) (2 thread(s) each)``."""
        if self.gpus:
            return f"{self.workers} Ray actor(s) on {self.gpus} GPU(s)"
        return f"{self.workers} Ray CPU actor(s) ({self.threads} thread(s) each)"

    def run(self, tasks: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Run ``tasks`` on the actors; yield (task, result) as each finishes."""
        from ray.exceptions import RayActorError, RayError

        from pixgen.batching.worker import JobWorker

        ray = self.ray
        actor_class = ray.remote(num_cpus=self.actor_cpus, num_gpus=1 if self.gpus else 0)(JobWorker)
        idle = [actor_class.remote(self.threads) for _ in range(min(self.workers, len(tasks)))]
        pending, running = list(reversed(tasks)), {}
        try:
            while pending or running:
                while idle and pending:
                    actor = idle.pop()
                    task = pending.pop()
                    running[actor.run.remote(task)] = (actor, task)
                (ref,), _ = ray.wait(list(running), num_returns=1)
                actor, task = running.pop(ref)
                try:
                    result = ray.get(ref)
                except RayActorError as exc:
                    result = died_result(None, f"Ray actor ({_first_line(exc)})")
                    actor = actor_class.remote(self.threads)
                except RayError as exc:
                    result = {**died_result(None, "Ray task"), "error": f"Ray failed this job: {_first_line(exc)}"}
                idle.append(actor)
                yield task, result
        finally:
            for actor in [*idle, *(a for a, _ in running.values())]:
                ray.kill(actor)

    def close(self) -> None:
        """Leave the cluster (a local cluster started for this batch stops)."""
        if self.ray is not None:
            self.ray.shutdown()
            self.ray = None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
