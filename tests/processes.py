"""The `orderdesk` command as a subprocess, for the integration tests that race
several real server processes (integration tests never import `tests/e2e`)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ORDERDESK = Path(sys.executable).with_name("orderdesk")
READY_TIMEOUT_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 120.0


def server_env(database_url: str) -> dict[str, str]:
    """The parent's environment without any ORDERDESK_* (or HOST/PORT, which `serve`
    reads) settings, plus the ones this server runs with."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ORDERDESK_") and name not in {"HOST", "PORT"}
    }
    env.update(
        ORDERDESK_ENV="production",
        ORDERDESK_SECRET_KEY=secrets.token_urlsafe(48),
        ORDERDESK_DATABASE_URL=database_url,
        ORDERDESK_LOG_FORMAT="json",
        ORDERDESK_LOG_LEVEL="INFO",
        # Every test's client comes from one address, and a module shares a server.
        ORDERDESK_SIGNUP_MAX_PER_ADDRESS="100000",
    )
    return env


def run_cli(env: dict[str, str], workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert ORDERDESK.exists(), f"{ORDERDESK} is missing; install the project into the venv"
    return subprocess.run(
        [str(ORDERDESK), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_ready(process: subprocess.Popen[bytes], base_url: str, stderr_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"orderdesk serve exited with {process.returncode}:\n"
                + stderr_path.read_text(encoding="utf-8")[-4000:]
            )
        try:
            response = httpx.get(f"{base_url}/health/ready", timeout=2.0)
            if response.status_code == 200:
                return
            last_error = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            last_error = repr(exc)
        time.sleep(0.1)
    pytest.fail(f"orderdesk serve was not ready within {READY_TIMEOUT_SECONDS} s: {last_error}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
