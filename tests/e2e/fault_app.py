"""A test-only application: the production app plus one route that always raises, so
an e2e test can force 500s on a real server (the production app has no such route)."""

from __future__ import annotations

from fastapi import FastAPI

from orderdesk.app import create_app

FAULT_PATH = "/test-only/fault"


class ForcedFault(RuntimeError):
    pass


async def _fault() -> None:
    raise ForcedFault("forced by the event-loop latency test")


def create_app_with_fault() -> FastAPI:
    """For `uvicorn --factory tests.e2e.fault_app:create_app_with_fault`."""
    app = create_app()
    app.add_api_route(FAULT_PATH, _fault, methods=["GET"], include_in_schema=False)
    return app
