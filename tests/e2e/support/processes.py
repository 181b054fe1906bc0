"""`orderdesk serve` and `orderdesk worker` as subprocesses that can be killed
(whole process groups) and started again, a private redis-server, and a thread that
kills a process at random moments."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import ORDERDESK, free_port, server_env


class Process:
    """A long-running command in its own session, so the whole process group (a Celery
    worker's pool children too) can be killed at once, and started again."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self._argv = argv
        self._env = env
        self._workdir = workdir
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.starts = 0
        self.kills = 0

    @property
    def log_path(self) -> Path:
        return self._workdir / f"{self.name}.log"

    def start(self) -> None:
        assert self._popen is None, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {self.name}: start {self.starts + 1} ===\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self._popen = subprocess.Popen(
                self._argv,
                env=self._env,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def exited(self) -> bool:
        return self._popen is not None and self._popen.poll() is not None

    def kill(self) -> None:
        """SIGKILL to the whole process group: no cleanup, no acks, no goodbyes."""
        self._signal_group_and_reap(signal.SIGKILL, grace=0)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM to the group, a grace period, then SIGKILL whatever is left."""
        self._signal_group_and_reap(signal.SIGTERM, grace=10)

    def _signal_group_and_reap(self, sig: signal.Signals, *, grace: float) -> None:
        if self._popen is None:
            return
        pgid = self._popen.pid  # start_new_session: the child leads its own group
        _signal_group(pgid, sig)
        if not self._group_gone(pgid, timeout=grace):
            _signal_group(pgid, signal.SIGKILL)
            self._group_gone(pgid, timeout=15)
        self._popen.wait(timeout=15)
        self._popen = None

    def _group_gone(self, pgid: int, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._popen is not None:
                self._popen.poll()  # reap our child: a zombie still counts in its group
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def wait_for_log(self, needle: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_since_start():
                return
            if self.exited:
                pytest.fail(f"{self.name} exited:\n{self.log_tail()}")
            time.sleep(0.1)
        pytest.fail(f"{self.name} did not log {needle!r} within {timeout} s:\n{self.log_tail()}")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def wait_for_port(port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def private_redis(workdir: Path, port: int) -> Process:
    """A throwaway redis-server of our own (no persistence), to stop and start."""
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    return Process(f"redis-{port}", argv, env=dict(os.environ), workdir=workdir)


@dataclass
class Deployment:
    """`orderdesk serve` (and, with a broker, `orderdesk worker`) on one database."""

    env: dict[str, str]
    workdir: Path
    port: int
    serve: Process
    worker: Process | None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_serve(self) -> None:
        self.serve.start()

    def wait_until_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.serve.exited:
                pytest.fail(f"serve exited:\n{self.serve.log_tail()}")
            try:
                response = httpx.get(f"{self.base_url}/health/ready", timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
        pytest.fail(f"serve was not ready within {timeout} s: {last}\n{self.serve.log_tail()}")

    def start_worker(self, *, wait: bool = True) -> None:
        assert self.worker is not None
        self.worker.start()
        if wait:
            self.wait_for_worker()

    def wait_for_worker(self, timeout: float = 60.0) -> None:
        assert self.worker is not None
        self.worker.wait_for_log(" ready.", timeout=timeout)

    def stop(self) -> None:
        for process in (self.worker, self.serve):
            if process is not None:
                process.stop()

    def logs(self) -> str:
        parts = [self.serve.log_tail()]
        if self.worker is not None:
            parts.append(self.worker.log_tail())
        return "\n".join(parts)


def jobs_env(database_url: str, **settings: str | float | int | None) -> dict[str, str]:
    """The e2e server environment plus background-job settings (`None` leaves one
    unset), e.g. `broker_url=`, `smtp_url=`, `event_lease_seconds=`."""
    env = server_env(database_url)
    env["ORDERDESK_RELAY_INTERVAL_SECONDS"] = "0.2"
    for name, value in settings.items():
        if value is not None:
            env[f"ORDERDESK_{name.upper()}"] = str(value)
    return env


@contextmanager
def deployment(
    env: dict[str, str], workdir: Path, *, with_worker: bool, concurrency: int = 2
) -> Iterator[Deployment]:
    """Start serve (and a worker), wait for them, and always stop them afterwards."""
    port = free_port()
    serve = Process(
        "serve",
        [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        workdir=workdir,
    )
    worker = (
        Process(
            "worker",
            [str(ORDERDESK), "worker", "--concurrency", str(concurrency)],
            env=env,
            workdir=workdir,
        )
        if with_worker
        else None
    )
    running = Deployment(env=env, workdir=workdir, port=port, serve=serve, worker=worker)
    try:
        running.start_serve()
        if worker is not None:
            running.start_worker(wait=False)
        running.wait_until_serving()
        if worker is not None:
            running.wait_for_worker()
        yield running
    finally:
        running.stop()


class Killer(threading.Thread):
    """Kills a process group at random moments and starts it again, `kills` times.

    A kill comes `gaps` (min, max) seconds after the process was (re)started. With
    `ready_gaps`, every `ready_every`-th kill instead waits until `was_ready()` (the
    process is up and working) and comes `ready_gaps` seconds after that, so kills hit
    both a process that is starting and one that is busy."""

    def __init__(
        self,
        *,
        kill: Callable[[], None],
        restart: Callable[[], None],
        kills: int,
        gaps: tuple[float, float],
        seed: int,
        deadline: float,
        was_ready: Callable[[], bool] = lambda: True,
        ready_gaps: tuple[float, float] | None = None,
        ready_every: int = 2,
        ready_timeout: float = 30.0,
    ) -> None:
        super().__init__(name="killer", daemon=True)
        self._kill = kill
        self._restart = restart
        self._kills = kills
        self._gaps = gaps
        self._ready_gaps = ready_gaps
        self._ready_every = ready_every
        self._ready_timeout = ready_timeout
        self._random = random.Random(seed)
        self._deadline = deadline
        self._was_ready = was_ready
        self._stop_requested = threading.Event()
        self.done = 0
        self.after_ready = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while self.done < self._kills and time.monotonic() < self._deadline:
                gaps = self._gaps
                if self._ready_gaps is not None and self.done % self._ready_every == 1:
                    if not self._wait_until_ready():
                        return
                    gaps = self._ready_gaps
                if self._stop_requested.wait(self._random.uniform(*gaps)):
                    return
                ready = self._was_ready()
                self._kill()
                self.done += 1
                self.after_ready += ready
                self._restart()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _wait_until_ready(self) -> bool:
        give_up = time.monotonic() + self._ready_timeout
        while not self._was_ready():
            if time.monotonic() > give_up or self._stop_requested.wait(0.05):
                return False
        return True

    def stop(self) -> None:
        """Kill no more (a kill already under way finishes)."""
        self._stop_requested.set()
        self.join(timeout=120)
