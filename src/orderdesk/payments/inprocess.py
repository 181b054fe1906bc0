"""The sandbox gateway inside this process: what orderdesk pays through when
neither `ORDERDESK_STRIPE_API_KEY` nor `ORDERDESK_PAYMENT_GATEWAY_URL` is set, so
`make run` takes a `pm_card_visa` payment with nothing else started.

It is the same Stripe adapter (and SDK) talking to the same sandbox app as the
`orderdesk sandbox-gateway` process, over an ASGI transport instead of a socket;
the sandbox's webhooks come back into the orderdesk app the same way once it is
attached (`attach`). Its state lives in this process's memory: one `serve`
process only (with several, or with Celery workers, run `orderdesk
sandbox-gateway` and point `ORDERDESK_PAYMENT_GATEWAY_URL` at it), and it forgets
every payment when the process stops.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import httpx
from starlette.types import ASGIApp

from orderdesk.core.settings import Settings
from orderdesk.payments.gateway import PaymentGateway
from orderdesk.payments.stripe_gateway import StripeConfig, StripeGateway
from orderdesk.sandbox import Sandbox, SandboxConfig

SANDBOX_BASE = "http://sandbox.invalid"
ORDERDESK_BASE = "http://orderdesk.invalid"
WEBHOOK_PATH = "/api/v1/payments/webhook"


class _AttachedApp(httpx.AsyncBaseTransport):
    """Webhooks into the orderdesk app of this process, once there is one (before,
    a delivery fails like a refused connection, and the sandbox retries it)."""

    def __init__(self) -> None:
        self.transport: httpx.ASGITransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.transport is None:
            raise httpx.ConnectError("no orderdesk app in this process yet", request=request)
        return await self.transport.handle_async_request(request)


class InProcessGateway(StripeGateway):
    """The Stripe adapter wired to a sandbox app in this process."""

    def __init__(self, settings: Settings) -> None:
        secret = webhook_secret(settings)
        self._webhooks = _AttachedApp()
        self._webhook_http = httpx.AsyncClient(transport=self._webhooks, base_url=ORDERDESK_BASE)
        self.sandbox = Sandbox(
            SandboxConfig(webhook_url=ORDERDESK_BASE + WEBHOOK_PATH, webhook_secret=secret),
            http=self._webhook_http,
        )
        self._api_http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.sandbox), base_url=SANDBOX_BASE
        )
        config = replace(
            StripeConfig.from_settings(settings, base_url=SANDBOX_BASE), webhook_secrets=(secret,)
        )
        super().__init__(config, http_client=self._api_http)

    def attach(self, app: ASGIApp) -> None:
        """Deliver the sandbox's webhooks to `app` (orderdesk's own, in process)."""
        self._webhooks.transport = httpx.ASGITransport(app=app)

    async def close(self) -> None:
        await super().close()
        await self.sandbox.aclose()
        await self._api_http.aclose()
        await self._webhook_http.aclose()


def webhook_secret(settings: Settings) -> str:
    """A webhook secret the in-process sandbox signs with: derived from the secret
    key, so it is stable for the process and known to nobody outside it."""
    key = settings.secret_key.get_secret_value().encode()
    return "whsec_" + hmac.new(key, b"orderdesk in-process sandbox", hashlib.sha256).hexdigest()


def attach_webhooks(gateway: PaymentGateway, app: ASGIApp) -> None:
    """If `gateway` is the in-process sandbox, have its webhooks reach `app`."""
    if isinstance(gateway, InProcessGateway):
        gateway.attach(app)
