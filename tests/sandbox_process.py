"""The sandbox payment gateway as a separate process, for any test that pays.

`running_sandbox()` starts `python -m orderdesk sandbox-gateway` on a free
loopback port, waits until it answers, and stops it afterwards; the
`sandbox_gateway` fixture shares one such process per test module and gives each
test a clean one (no faults, no objects, no log). `SandboxProcess` builds stripe
SDK clients pointed at it and wraps the `/_sandbox` control plane in plain sync
calls, so a test reads as what it checks.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from tests.servers import free_port, stop

SANDBOX_READY_SECONDS = 20.0
SANDBOX_API_VERSION = "2026-10-28.endive"


@dataclass
class SandboxProcess:
    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    control: httpx.Client
    _sdk_http: list[stripe.HTTPXClient] = field(default_factory=list)

    def stripe_client(
        self,
        *,
        max_network_retries: int = 0,
        timeout: float = 10.0,
        allow_sync_methods: bool = True,
        **kwargs: Any,
    ) -> stripe.StripeClient:
        """A `StripeClient` on this sandbox, retries always explicit (the SDK's
        default for `StripeClient` is none). Sync methods work unless turned off;
        its HTTP client is closed with the sandbox (async users close theirs with
        `await client_http.close_async()` in their own loop, see `sdk_http`)."""
        http = stripe.HTTPXClient(timeout=timeout, allow_sync_methods=allow_sync_methods)
        self._sdk_http.append(http)
        return stripe.StripeClient(
            self.api_key,
            base_addresses={"api": self.url},
            http_client=http,
            max_network_retries=max_network_retries,
            stripe_version=SANDBOX_API_VERSION,
            **kwargs,
        )

    @property
    def sdk_http(self) -> list[stripe.HTTPXClient]:
        return self._sdk_http

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, f"{response.request.url}: {response.text}"
        return response.json()

    def set_faults(self, rules: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        reply = self._ok(self.control.post("/_sandbox/faults", json={"rules": list(rules)}))
        return list(reply["rules"])

    def clear_faults(self) -> None:
        self._ok(self.control.delete("/_sandbox/faults"))

    def faults(self) -> list[dict[str, Any]]:
        return list(self._ok(self.control.get("/_sandbox/faults"))["rules"])

    def ledger(self) -> dict[str, Any]:
        ledger: dict[str, Any] = self._ok(self.control.get("/_sandbox/ledger"))
        return ledger

    def authenticate(self, intent_id: str, outcome: str = "success") -> dict[str, Any]:
        intent: dict[str, Any] = self._ok(
            self.control.post(
                f"/_sandbox/payment_intents/{intent_id}/authenticate", data={"outcome": outcome}
            )
        )
        return intent

    def advance_clock(self, seconds: int) -> int:
        now: int = self._ok(
            self.control.post("/_sandbox/clock/advance", data={"seconds": seconds})
        )["now"]
        return now

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        params = {"path": path} if path else {}
        return list(self._ok(self.control.get("/_sandbox/requests", params=params))["requests"])

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self._ok(self.control.get("/_sandbox/deliveries"))["deliveries"])

    def redeliver(self, event_id: str) -> None:
        self._ok(self.control.post(f"/_sandbox/webhooks/{event_id}/redeliver"))

    def reset(self) -> None:
        """No faults, no objects, no logs: what a fresh process would have."""
        self.clear_faults()
        self._ok(self.control.delete("/_sandbox/data"))

    def log_tail(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def close(self) -> None:
        for http in self._sdk_http:
            http.close()
        self._sdk_http.clear()
        self.control.close()


def _wait_until_answering(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SANDBOX_READY_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the sandbox gateway exited with {process.returncode}:\n"
                + log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
            )
        try:
            if httpx.get(f"{url}/_sandbox/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.05)
    pytest.fail(f"the sandbox gateway did not answer within {SANDBOX_READY_SECONDS} s: {last}")


@contextmanager
def running_sandbox(
    *,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[SandboxProcess]:
    """`orderdesk sandbox-gateway` as a child process for the duration of the block."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "orderdesk", "sandbox-gateway", "--host", "127.0.0.1"]
    args += ["--port", str(port)]
    if webhook_url is not None:
        args += ["--webhook-url", webhook_url]
    if webhook_secret is not None:
        args += ["--webhook-secret", webhook_secret]
    args += list(extra_args)
    log_dir = Path(tempfile.mkdtemp(prefix="sandbox-gateway-"))
    log_path = log_dir / "sandbox.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    sandbox: SandboxProcess | None = None
    try:
        _wait_until_answering(process, url, log_path)
        sandbox = SandboxProcess(
            url=url,
            api_key="sk_test_sandbox" + "0" * 16,
            process=process,
            log_path=log_path,
            control=httpx.Client(base_url=url, timeout=10.0),
        )
        yield sandbox
    finally:
        if sandbox is not None:
            sandbox.close()
        stop(process)


@pytest.fixture(scope="module")
def sandbox_gateway_process() -> Iterator[SandboxProcess]:
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox_gateway(sandbox_gateway_process: SandboxProcess) -> SandboxProcess:
    """The module's sandbox process, reset for this test."""
    sandbox_gateway_process.reset()
    return sandbox_gateway_process
