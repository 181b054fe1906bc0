"""The application factory: settings in, a wired FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orderdesk import __version__
from orderdesk.auth.api import router as auth_router
from orderdesk.bootstrap import HANDLERS, PERIODIC_JOBS, build_container
from orderdesk.catalog.api import router as catalog_router
from orderdesk.container import Container
from orderdesk.core.collector import freeze_startup_objects
from orderdesk.core.errors import (
    MalformedBody,
    PayloadTooLarge,
    ValidationFailed,
    install_error_handlers,
)
from orderdesk.core.logging import RequestContextMiddleware, configure_logging
from orderdesk.core.methods import HeadAsGetMiddleware
from orderdesk.core.openapi import install_docs, install_openapi, operation_id
from orderdesk.core.settings import Settings, get_settings
from orderdesk.health.api import router as health_router
from orderdesk.orders.api import router as orders_router
from orderdesk.outbox import wiring
from orderdesk.outbox.api import router as outbox_router
from orderdesk.outbox.background import Background
from orderdesk.payments.api import router as payments_router
from orderdesk.payments.api import webhook_router as payment_webhook_router
from orderdesk.payments.inprocess import attach_webhooks
from orderdesk.users.api import router as users_router
from orderdesk.webhooks.api import router as webhooks_router

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    settings = settings or get_settings()
    # A container passed in (tests, embedding) was not built by `build_container`,
    # which installs the handler table: install it here too, or every emit fails.
    wiring.install(HANDLERS)
    configure_logging(log_format=settings.log_format, level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        app.state.container = container or build_container(settings)
        # The in-process sandbox gateway sends its webhooks to this app.
        attach_webhooks(app.state.container.payments, app)
        background = Background.for_api(app.state.container, periodic_jobs=PERIODIC_JOBS)
        background.start()
        freeze_startup_objects()
        try:
            yield
        finally:
            await background.stop()
            if owned:
                await app.state.container.close()

    app = FastAPI(
        title="orderdesk",
        version=__version__,
        debug=settings.debug,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served from packaged assets below, so they work offline
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    if container is not None:
        # Supplied by the caller (tests, embedding): usable without running lifespan.
        app.state.container = container
    install_error_handlers(app)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        large_bodies={f"{API_PREFIX}/products/import": settings.import_max_bytes},
    )

    # Each domain's router directly on the app, under the API prefix, the hot ones
    # first: FastAPI matches an included router by scanning its routes, and again to
    # pick one, at every level of nesting, so one shared "/api/v1" router in between
    # cost a tenth of a read's CPU.
    for router in (
        orders_router,
        catalog_router,
        auth_router,
        users_router,
        payments_router,
        payment_webhook_router,
        outbox_router,
        webhooks_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health_router)
    install_openapi(
        app,
        automatic={
            # Any request may carry a body the size limit refuses before routing.
            "all": (PayloadTooLarge,),
            "params": (ValidationFailed,),
            "body": (MalformedBody,),
        },
    )
    install_docs(app)
    return app
