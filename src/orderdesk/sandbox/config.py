"""What a sandbox gateway is started with. One frozen value, built by the CLI from
its flags or by a test directly, so the app never reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from orderdesk.sandbox.faults import FaultRule

# The version the stripe SDK 16.1 pins; events are rendered "in" an endpoint's
# version, and an endpoint registered without one gets this.
DEFAULT_API_VERSION = "2026-10-28.endive"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Settings of one sandbox gateway.

    `webhook_url`/`webhook_secret` register an endpoint at start-up that listens to
    every event, as if `POST /v1/webhook_endpoints` had been called. Delivery
    attempts are `webhook_max_attempts` in all, the n-th retry waiting
    `webhook_backoff_seconds * webhook_backoff_factor ** (n - 1)` (capped at
    `webhook_backoff_max_seconds`). `hang_cap_seconds` bounds how long the `hang`
    and `charge_then_timeout` faults hold a request, so no test can wedge the
    server for good.
    """

    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_max_attempts: int = 5
    webhook_backoff_seconds: float = 1.0
    webhook_backoff_factor: float = 5.0
    webhook_backoff_max_seconds: float = 600.0
    webhook_timeout_seconds: float = 10.0
    hang_cap_seconds: float = 30.0
    idempotency_ttl_seconds: int = 24 * 3600
    require_return_url: bool = True
    request_log_size: int = 10_000
    api_version: str = DEFAULT_API_VERSION
    faults: tuple[FaultRule, ...] = field(default=())

    def __post_init__(self) -> None:
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise ValueError("webhook_url and webhook_secret go together")
        if self.webhook_secret is not None and not self.webhook_secret.startswith("whsec_"):
            raise ValueError("webhook_secret must start with whsec_")
        if self.webhook_max_attempts < 1:
            raise ValueError("webhook_max_attempts must be at least 1")
