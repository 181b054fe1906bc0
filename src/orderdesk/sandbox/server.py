"""Serving the sandbox gateway with uvicorn, for `orderdesk sandbox-gateway`."""

from __future__ import annotations

import logging

from orderdesk.sandbox.app import SimulatedConnectionReset, create_app
from orderdesk.sandbox.config import SandboxConfig


class _QuietResets(logging.Filter):
    """The `connection_reset` fault works by raising after half a body; uvicorn
    would log each one as an application error with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedConnectionReset)


def serve(config: SandboxConfig, *, host: str, port: int) -> None:
    import uvicorn

    logging.getLogger("uvicorn.error").addFilter(_QuietResets())
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        lifespan="on",
    )
