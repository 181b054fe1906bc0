"""What the benchmark scripts share: bench/run.py (HTTP and import) and bench/outbox.py
(outbox throughput).

bench/ is not a package. The scripts are run as `.venv/bin/python bench/<script>.py`,
which puts bench/ first on sys.path, so they find this module as `common`.

- processes: a free port, a command in its own process group with a log file, HTTP
  readiness, the `orderdesk` CLI and the production environment it runs with;
- PostgreSQL administration: DSNs, creating and dropping the runs' databases;
- CPU accounting from /proc: process trees, per-process CPU time, machine busy time;
- the public API's sign-in, and the product CSV `orderdesk import-products` reads;
- the JSON record: the machine, the git commit, bench/results/<name>-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = Path(sys.executable)
ORDERDESK = PYTHON.with_name("orderdesk")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ORDER_PATH = "/api/v1/orders"
STOCK = 10**9  # orderdesk's maximum: stock that no benchmark run can exhaust
# ORDERDESK_RELAY_INTERVAL_SECONDS for a parked relay: it polls once at start-up,
# finds nothing, and sleeps through the run.
PARKED_RELAY_SECONDS = 3600
READY_TIMEOUT_SECONDS = 60.0
CLI_TIMEOUT_SECONDS = 600.0  # `import-products` of 100,000 rows included
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PRODUCT_CSV_HEADER = (
    "sku",
    "name",
    "description",
    "price_amount",
    "currency",
    "stock",
    "is_active",
)


# ----------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Process:
    """A command in its own session, so its whole group (uvicorn's and Celery's
    worker processes too) is stopped with it; output to `<name>.log` in `workdir`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.started_at = time.time()
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own venv's executables
                argv,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if self.exited():
            raise SystemExit(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the group, up to 20 s, then SIGKILL to what is left."""
        if self.exited():
            return
        for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
            break
        # The group may outlive its leader for a moment (pool children exiting).
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                os.killpg(self.popen.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def wait_http_ready(
    process: Process,
    base_url: str,
    path: str = "/health/ready",
    headers: dict[str, str] | None = None,
) -> None:
    """Until GET `path` answers 200; stops the bench if the process exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        process.check_alive()
        try:
            response = httpx.get(base_url + path, headers=headers, timeout=2.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.05)
    raise SystemExit(f"{process.name} not ready within {READY_TIMEOUT_SECONDS} s: {last}")


def cli(
    env: dict[str, str], workdir: Path, *args: str, program: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """`orderdesk <args>`, which must succeed; `program` replaces the venv's
    `orderdesk` script (run.py's `--before-ref` runs `python -m orderdesk`)."""
    completed = subprocess.run(  # noqa: S603 - our own venv's executables
        [*(program or [str(ORDERDESK)]), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if completed.returncode != 0:
        raise SystemExit(f"orderdesk {' '.join(args)} failed:\n{completed.stderr[-4000:]}")
    return completed


def server_env(
    database_url: str, secret_key: str | None = None, smtp_url: str | None = None
) -> dict[str, str]:
    """Production settings (JSON logs), no inherited ORDERDESK_* or BENCH_*; a random
    key unless `secret_key` is given (the same key keeps tokens valid across servers)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ORDERDESK_", "BENCH_")) and name not in {"HOST", "PORT"}
    }
    env.update(
        ORDERDESK_ENV="production",
        ORDERDESK_SECRET_KEY=secret_key or secrets.token_urlsafe(48),
        ORDERDESK_DATABASE_URL=database_url,
        ORDERDESK_LOG_FORMAT="json",
        ORDERDESK_LOG_LEVEL="INFO",
        ORDERDESK_ACCESS_TOKEN_TTL_SECONDS="3600",  # noqa: S106 - a lifetime, not a secret
        # Production refuses to start without Stripe unless the sandbox is allowed;
        # the benches take no real payment (older commits ignore the setting).
        ORDERDESK_PAYMENT_SANDBOX_ALLOWED="true",
    )
    if smtp_url:
        env["ORDERDESK_SMTP_URL"] = smtp_url
    return env


# ------------------------------------------------------------------------ database


def dsn(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+asyncpg://…`) as a DSN asyncpg accepts."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def db_dsn(admin_url: str, name: str) -> str:
    """The DSN of database `name` on the admin URL's server."""
    base, _, _ = dsn(admin_url).rpartition("/")
    return f"{base}/{name}"


def database_url(admin_url: str, name: str) -> str:
    """ORDERDESK_DATABASE_URL for database `name` on the admin URL's server."""
    return "postgresql+asyncpg://" + db_dsn(admin_url, name).removeprefix("postgresql://")


async def _admin(admin_url: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn(admin_url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def admin(admin_url: str, *statements: str) -> None:
    """Run `statements` on one connection to the admin database."""
    asyncio.run(_admin(admin_url, *statements))


def _drop_sql(name: str) -> str:
    return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def drop_database(admin_url: str, name: str) -> None:
    admin(admin_url, _drop_sql(name))


def recreate_database(admin_url: str, name: str, template: str | None = None) -> None:
    """Database `name`, empty or a copy of `template`, whatever was there before."""
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    admin(admin_url, _drop_sql(name), create)


# ------------------------------------------------------------------ CPU accounting


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 on), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def process_tree(roots: list[int]) -> list[int]:
    """The roots and all their descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(int(stat.parent.name))
        if fields:
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return sorted(found)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process that still exists."""
    times = {}
    for pid in pids:
        fields = stat_fields(pid)
        if fields:
            times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return times


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


# -------------------------------------------------------------------- public API


def expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise SystemExit(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}, expected {status}: {response.text[:500]}"
        )


def sign_in(client: httpx.Client, email: str, password: str) -> str:
    """An access token (`client`'s base URL ends in /api/v1)."""
    issued = client.post("/auth/token", data={"username": email, "password": password})
    expect(issued, 200)
    token: str = issued.json()["access_token"]
    return token


def write_catalog_csv(path: Path, products: Iterable[Sequence[object]]) -> None:
    """A CSV for `orderdesk import-products`: one row per product, in the order of
    PRODUCT_CSV_HEADER."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PRODUCT_CSV_HEADER)
        writer.writerows(products)


# ------------------------------------------------------------------------ options


def add_database_args(parser: argparse.ArgumentParser, database: str) -> None:
    """--admin-url, and --database: the name (or prefix) of the bench's databases."""
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL URL allowed to CREATE DATABASE (env BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--database", default=database)


# ------------------------------------------------------------------------ record


def git(*args: str) -> str:
    """A read-only git query in the repository; "" without git."""
    executable = shutil.which("git")
    if executable is None:
        return ""
    completed = subprocess.run(  # noqa: S603 - read-only git queries
        [executable, *args], cwd=REPO_DIR, capture_output=True, text=True, check=False
    )
    return completed.stdout.strip()


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_at_start": os.getloadavg(),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "src_changes_not_committed": git("status", "--porcelain", "--", "src").splitlines(),
    }


def begin(
    title: str, workdir_prefix: str, *, commit: bool = False
) -> tuple[Path, datetime, dict[str, Any]]:
    """A fresh work directory, the start time and machine(), announced on one line
    (with the git commit if `commit`)."""
    workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
    started_at = datetime.now(UTC)
    info = machine()
    load = f"load {info['load_at_start'][0]:.2f}"
    if commit:
        load += f", commit {info['git_commit']}"
    print(
        f"{title} {started_at:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs, {load}; logs in {workdir}",
        flush=True,
    )
    return workdir, started_at, info


def write_results(
    name: str, started_at: datetime, info: dict[str, Any], fields: dict[str, Any]
) -> Path:
    """bench/results/<name>-<timestamp>.json: when, how long, the machine (`info`,
    with the load at the end added), then `fields`; prints where it went."""
    info["load_at_end"] = os.getloadavg()
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}-{started_at:%Y%m%d-%H%M%S}.json"
    payload = {
        "started_at": started_at.isoformat(),
        "seconds": round((datetime.now(UTC) - started_at).total_seconds(), 1),
        "machine": info,
        **fields,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"\nresults: {path.relative_to(REPO_DIR)} ({payload['seconds']} s)")
    return path
