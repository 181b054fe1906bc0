"""A development server signs with a key generated for its install, never with one
from the source, and server processes starting together agree on that key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orderdesk.app import create_app
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from tests.factories import signed_up
from tests.helpers import access_claims, close_adapters, make_container, sign_claims

ME = "/api/v1/users/me"
PUBLISHED_KEY = "orderdesk-development-secret-key-do-not-use-in-production"
PROCESSES = 8
PROCESS_TIMEOUT_SECONDS = 60.0

# Each process says it is ready, waits for the go file so all of them race for the
# key file at once, then prints the key its settings hold.
RACER = """
import pathlib, sys, time
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
from orderdesk.core.settings import Settings
ready.touch()
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
print(Settings(_env_file=None).secret_key.get_secret_value())
"""


@pytest.fixture
def no_orderdesk_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("ORDERDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def development_client(
    no_orderdesk_environment: Path, settings: Settings, database: Database, hasher: PasswordHasher
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """The app as `make run` configures it: development, no ORDERDESK_SECRET_KEY."""
    development = Settings(
        _env_file=None,
        database_url=settings.database_url,
        log_level="WARNING",
    )
    container = make_container(development, database, hasher)
    app = create_app(development, container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, development
    await close_adapters(container)


def access_token(settings: Settings, user_id: str, key: str) -> str:
    return sign_claims(access_claims(settings, sub=user_id), key)


async def test_a_development_server_refuses_a_token_forged_with_the_published_key(
    development_client: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, settings = development_client
    user, _ = await signed_up(client)
    forged = access_token(settings, user["id"], PUBLISHED_KEY)

    response = await client.get(ME, headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_development_server_accepts_tokens_signed_with_its_generated_key(
    development_client: tuple[httpx.AsyncClient, Settings], no_orderdesk_environment: Path
) -> None:
    # The same claims as the forged token: only the key differs.
    client, settings = development_client
    user, _ = await signed_up(client)
    key = (no_orderdesk_environment / ".orderdesk-secret-key").read_text().strip()
    token = access_token(settings, user["id"], key)

    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text


def test_processes_starting_together_agree_on_one_generated_key(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ORDERDESK_")}
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(PROCESSES)]
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(ready[n]), str(go)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + PROCESS_TIMEOUT_SECONDS
        while not all(path.exists() for path in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        outputs = [racer.communicate(timeout=PROCESS_TIMEOUT_SECONDS) for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()

    assert [racer.returncode for racer in racers] == [0] * PROCESSES, [err for _, err in outputs]
    keys = {out.strip() for out, _ in outputs}
    assert keys == {(tmp_path / ".orderdesk-secret-key").read_text().strip()}
    leftovers = {p.name for p in tmp_path.iterdir()} - {"go", ".orderdesk-secret-key"}
    assert leftovers == {path.name for path in ready}
