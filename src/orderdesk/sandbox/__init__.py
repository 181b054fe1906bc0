"""The sandbox payment gateway: a separate ASGI service speaking a subset of
Stripe's REST protocol, with switchable faults, so payment tests talk to a real
peer over HTTP through the official `stripe` SDK. See docs/sandbox-gateway.md."""

from orderdesk.sandbox.app import Sandbox, create_app
from orderdesk.sandbox.config import SandboxConfig
from orderdesk.sandbox.faults import FaultRule

__all__ = ["FaultRule", "Sandbox", "SandboxConfig", "create_app"]
