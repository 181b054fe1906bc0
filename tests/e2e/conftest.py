"""The real `orderdesk` command as a subprocess: migrated, seeded and serving over HTTP
on a free port, against a fresh SQLite file or PostgreSQL database."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DatabaseFactory
from tests.servers import free_port, run_cli, server_env, serving

_SEEDED = re.compile(r"email:\s*(?P<email>\S+)\s+password:\s*(?P<password>\S+)")


@dataclass(frozen=True)
class Server:
    base_url: str
    env: dict[str, str]
    workdir: Path
    stderr_path: Path
    admin_email: str
    admin_password: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `orderdesk ARGS` with the server's settings (database, keys)."""
        return run_cli(self.env, self.workdir, *args)

    def log_records(self) -> list[dict[str, Any]]:
        """The server's stderr, one JSON object per line; a line that is not JSON fails."""
        records = []
        for line in self.stderr_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    pytest.fail(f"the server logged a line that is not JSON: {line!r}")
        return records

    def wait_for_log(self, *, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """The first log record with all of `fields`, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.log_records():
                if all(record.get(key) == value for key, value in fields.items()):
                    return record
            if time.monotonic() > deadline:
                pytest.fail(f"no log record with {fields} within {timeout} s")
            time.sleep(0.1)


def migrate_and_seed(env: dict[str, str], workdir: Path) -> tuple[str, str]:
    """Build the schema and the demo data; the seeded admin's email and password."""
    migrated = run_cli(env, workdir, "migrate", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    seeded = run_cli(env, workdir, "seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    credentials = _SEEDED.search(seeded.stdout)
    assert credentials, f"seed-demo printed no credentials:\n{seeded.stdout}"
    return credentials["email"], credentials["password"]


@pytest.fixture(scope="module")
async def e2e_database_url(backend: str, database_factory: DatabaseFactory) -> str:
    """An empty database the server alone uses (`migrate upgrade` builds it)."""
    return await database_factory.create(backend)


@pytest.fixture(scope="module")
def server(e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("e2e")
    env = server_env(e2e_database_url)

    admin_email, admin_password = migrate_and_seed(env, workdir)
    port = free_port()
    with serving(env, workdir, port) as stderr_path:
        yield Server(
            base_url=f"http://127.0.0.1:{port}",
            env=env,
            workdir=workdir,
            stderr_path=stderr_path,
            admin_email=admin_email,
            admin_password=admin_password,
        )
