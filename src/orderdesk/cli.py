"""The `orderdesk` command: serve, migrate, and operator tasks."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from orderdesk.core.settings import Settings, get_settings

T = TypeVar("T")
app = typer.Typer(
    name="orderdesk",
    help="orderdesk: an order-processing backend. Settings come from ORDERDESK_* variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
migrate_app = typer.Typer(
    help="Apply, revert or inspect database migrations.", no_args_is_help=True
)
app.add_typer(migrate_app, name="migrate")
events_app = typer.Typer(help="Inspect and retry outbox events.", no_args_is_help=True)
app.add_typer(events_app, name="events")
payments_app = typer.Typer(
    help="Reconcile payments with the gateway; register its webhook.", no_args_is_help=True
)
app.add_typer(payments_app, name="payments")
console = Console()
DEMO_ADMIN_EMAIL = "admin@example.com"


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            console.print(f"[red]configuration error[/red] ({field}): {error['msg']}")
        raise typer.Exit(code=2) from exc
    from orderdesk.core.logging import configure_logging

    configure_logging(log_format=settings.log_format, level=settings.log_level)
    return settings


def _run_with_container(work: Callable[..., Awaitable[T]]) -> T:
    # Imported here, not at the top: the composition root pulls in every domain,
    # the ORM and the web framework, which `--help` and most commands never need.
    from orderdesk.bootstrap import build_container

    async def runner() -> T:
        container = build_container(_settings())
        try:
            return await work(container)
        finally:
            await container.close()

    return asyncio.run(runner())


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="TCP port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes to run.")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn (uvloop, httptools)."""
    import uvicorn

    settings = _settings()
    console.print(f"orderdesk on http://{host}:{port} — API docs at http://{host}:{port}/docs")
    uvicorn.run(
        "orderdesk.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        access_log=False,
        log_config=None,
        server_header=False,
    )


def _broker_settings() -> Settings:
    settings = _settings()
    if not settings.broker_url:
        console.print(
            "[red]ORDERDESK_BROKER_URL is not set[/red]: without a broker, `orderdesk serve` "
            "runs the outbox (relay, handlers, periodic jobs) itself."
        )
        raise typer.Exit(code=2)
    return settings


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork or solo.")] = "prefork",
) -> None:
    """Run a Celery worker for outbox events, plus the outbox relay."""
    from orderdesk.bootstrap import PERIODIC_JOBS, build_container
    from orderdesk.outbox.relay_thread import RelayThread
    from orderdesk.outbox.worker import make_celery

    settings = _broker_settings()
    celery = make_celery(settings, build=build_container, periodic_jobs=PERIODIC_JOBS)
    relay = RelayThread(settings, celery, build=build_container)
    relay.start()
    try:
        celery.worker_main(
            ["worker", "--loglevel=INFO", f"--concurrency={concurrency}", f"--pool={pool}"]
        )
    finally:
        relay.stop()


@app.command()
def beat(
    schedule: Annotated[Path, typer.Option(help="Where beat keeps its last-run times.")] = Path(
        "celerybeat-schedule"
    ),
) -> None:
    """Run Celery beat: the periodic jobs (expire unpaid orders, purges, analytics)."""
    from orderdesk.bootstrap import PERIODIC_JOBS
    from orderdesk.outbox.worker import make_celery

    celery = make_celery(_broker_settings(), periodic_jobs=PERIODIC_JOBS)
    celery.start(["beat", "--loglevel=INFO", f"--schedule={schedule}"])


@events_app.command("list")
def events_list(
    status: Annotated[
        str | None, typer.Option(help="pending, running, done or failed.")
    ] = "failed",
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """List background events (dead letters by default)."""
    from rich.table import Table

    page = _run_with_container(lambda c: _list_events(c, status=status, limit=limit))
    table = Table("id", "topic", "handler", "status", "attempts", "last error")
    for event in page.items:
        table.add_row(
            str(event.id),
            event.topic,
            event.handler,
            event.status.value,
            str(event.attempts),
            (event.last_error or "")[:60],
        )
    console.print(table)


@events_app.command("retry")
def events_retry(
    event_id: Annotated[str, typer.Argument(help="The dead-lettered event's id.")],
) -> None:
    """Give a dead-lettered event a fresh set of attempts."""
    from uuid import UUID

    from orderdesk.core.errors import DomainError

    try:
        event = _run_with_container(lambda c: _retry_event(c, UUID(event_id)))
    except (DomainError, ValueError) as exc:
        console.print(f"[red]cannot retry:[/red] {getattr(exc, 'detail', exc)}")
        raise typer.Exit(code=1) from exc
    console.print(f"event {event.id} queued again")


async def _list_events(c: object, *, status: str | None, limit: int) -> Any:
    from orderdesk.container import Container
    from orderdesk.outbox import service as outbox_service
    from orderdesk.outbox.models import EventStatus

    assert isinstance(c, Container)
    return await outbox_service.list_events(
        c.database.replica_reads(),
        status=EventStatus(status) if status else None,
        limit=limit,
        cursor=None,
    )


async def _retry_event(c: object, event_id: Any) -> Any:
    from orderdesk.container import Container
    from orderdesk.core.uow import unit_of_work
    from orderdesk.outbox import service as outbox_service

    assert isinstance(c, Container)
    async with unit_of_work(c.database, clock=c.clock) as uow:
        return await outbox_service.retry_event(uow, event_id=event_id)


@migrate_app.command("upgrade")
def migrate_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database to REVISION (the latest by default)."""
    from orderdesk.core import migrations

    migrations.upgrade(_settings().database_url, revision)


@migrate_app.command("downgrade")
def migrate_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")],
) -> None:
    """Revert the database to REVISION."""
    from orderdesk.core import migrations

    migrations.downgrade(_settings().database_url, revision)


@migrate_app.command("current")
def migrate_current() -> None:
    """Show the revision the database is at."""
    from orderdesk.core import migrations

    migrations.current(_settings().database_url)


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email.")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password."),
    ],
    full_name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
) -> None:
    """Create an administrator account (prompts for what is not given)."""
    from orderdesk.core.errors import DomainError

    try:
        user_id = _run_with_container(
            lambda c: _create_admin(c, email=email, password=password, full_name=full_name)
        )
    except DomainError as exc:
        console.print(f"[red]could not create the admin:[/red] {exc.detail}")
        raise typer.Exit(code=1) from exc
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            console.print(f"[red]could not create the admin:[/red] {field}: {message}")
        raise typer.Exit(code=1) from exc
    console.print(f"admin created: {email} ({user_id})")


@app.command("seed-demo")
def seed_demo() -> None:
    """Create a demo admin and a small demo catalog when the database is empty.

    The admin's generated password is printed once; it is not stored anywhere else.
    """
    password = "demo-" + secrets.token_urlsafe(12)
    created = _run_with_container(lambda c: _seed_demo(c, password=password))
    if created:
        console.print(
            f"demo admin created — email: [bold]{DEMO_ADMIN_EMAIL}[/bold]  "
            f"password: [bold]{password}[/bold]  (shown once); demo catalog added",
            soft_wrap=True,
        )
    else:
        console.print("database already has accounts; demo data not added")


@app.command("import-products")
def import_products(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSONL.")
    ],
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: from the suffix).")
    ] = None,
) -> None:
    """Upsert products by SKU from a CSV or JSON-lines file, all or nothing.

    Every row is validated before anything is written; bad rows are listed with their
    line numbers and nothing is imported.
    """
    from orderdesk.catalog.errors import ImportEmpty, ImportRejected
    from orderdesk.catalog.importing import ImportFormat, parse_upload

    fmt = ImportFormat(file_format) if file_format else ImportFormat.from_filename(file.name)
    if fmt is None:
        console.print("[red]cannot tell the format; pass --format csv or --format jsonl[/red]")
        raise typer.Exit(code=2)
    try:
        # The same checks as the API: UTF-8, the bounds, at least one row.
        products = parse_upload(file.read_bytes(), fmt)
    except ImportEmpty as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(code=1) from exc
    except ImportRejected as exc:
        console.print(f"[red]{exc.detail}[/red]")
        for error in exc.errors:
            console.print(f"  line {error['line']}: {error['field'] or ''} {error['message']}")
        raise typer.Exit(code=1) from exc
    result = _run_with_container(lambda c: _import(c, products))
    console.print(
        f"imported {result.rows} products: {result.created} created, {result.updated} updated"
    )


@app.command("sandbox-gateway")
def sandbox_gateway(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8420,
    webhook_url: Annotated[
        str | None, typer.Option(help="Deliver every event here (with --webhook-secret).")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="The whsec_ secret that signs --webhook-url deliveries.")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help='A fault rule, JSON or "fault=latency,path=/v1/*,latency_ms=200".'),
    ] = None,
    faults_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help='A JSON file of {"rules": [...]}.'),
    ] = None,
    webhook_max_attempts: Annotated[int, typer.Option(min=1, help="Attempts per delivery.")] = 5,
    webhook_backoff: Annotated[float, typer.Option(min=0, help="First retry delay, s.")] = 1.0,
    webhook_backoff_factor: Annotated[float, typer.Option(min=1, help="Delay growth.")] = 5.0,
    webhook_timeout: Annotated[float, typer.Option(min=0.1, help="Per attempt, s.")] = 10.0,
    hang_cap: Annotated[float, typer.Option(min=0, help="Longest hold of hang faults, s.")] = 30.0,
    require_return_url: Annotated[
        bool, typer.Option(help="Refuse redirect-capable confirms without return_url.")
    ] = True,
) -> None:
    """Serve the sandbox payment gateway: Stripe's wire protocol with switchable faults.

    See docs/sandbox-gateway.md for the endpoints, the faults and the control plane.
    """
    import json

    from orderdesk.sandbox.config import SandboxConfig
    from orderdesk.sandbox.faults import parse_rules, rules_from_flags
    from orderdesk.sandbox.server import serve as serve_sandbox

    try:
        rules = rules_from_flags(fault or [])
        if faults_file is not None:
            rules += parse_rules(json.loads(faults_file.read_text(encoding="utf-8")))
        config = SandboxConfig(
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            webhook_max_attempts=webhook_max_attempts,
            webhook_backoff_seconds=webhook_backoff,
            webhook_backoff_factor=webhook_backoff_factor,
            webhook_timeout_seconds=webhook_timeout,
            hang_cap_seconds=hang_cap,
            require_return_url=require_return_url,
            faults=rules,
        )
    except ValueError as exc:  # a bad rule, bad JSON, or a bad combination
        console.print(f"[red]cannot start the sandbox gateway:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"sandbox gateway (Stripe wire subset) on http://{host}:{port}")
    serve_sandbox(config, host=host, port=port)


async def _import(c: object, products: list[Any]) -> Any:
    from rich.progress import Progress

    from orderdesk.catalog import service as catalog_service
    from orderdesk.container import Container
    from orderdesk.core.uow import unit_of_work

    assert isinstance(c, Container)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(products))
        async with unit_of_work(c.database, clock=c.clock) as uow:
            return await catalog_service.import_products(
                uow, products=products, on_batch=lambda n: progress.advance(task, n)
            )


async def _create_admin(c: object, *, email: str, password: str, full_name: str) -> str:
    from orderdesk.auth import service as auth_service
    from orderdesk.auth.permissions import Role
    from orderdesk.container import Container
    from orderdesk.core.uow import unit_of_work
    from orderdesk.users.schemas import UserCreate

    assert isinstance(c, Container)
    data = UserCreate(email=email, password=password, full_name=full_name)
    async with unit_of_work(c.database, clock=c.clock) as uow:
        user = await auth_service.register(uow, c, data=data, role=Role.ADMIN, email_verified=True)
        return str(user.id)


async def _seed_demo(c: object, *, password: str) -> bool:
    from orderdesk.container import Container
    from orderdesk.core.uow import unit_of_work
    from orderdesk.users import repository as user_repository

    assert isinstance(c, Container)
    async with unit_of_work(c.database, clock=c.clock) as uow:
        if await user_repository.count(uow.session) > 0:
            return False
    await _create_admin(c, email=DEMO_ADMIN_EMAIL, password=password, full_name="Demo Admin")
    await _seed_catalog(c)
    return True


async def _seed_catalog(c: object) -> None:
    from orderdesk.catalog import service as catalog_service
    from orderdesk.catalog.schemas import ProductCreate
    from orderdesk.container import Container
    from orderdesk.core.money import Money
    from orderdesk.core.uow import unit_of_work

    assert isinstance(c, Container)
    demo = [
        ("MUG-BLUE", "Blue enamel mug", 1299, 40),
        ("MUG-RED", "Red enamel mug", 1299, 25),
        ("TEE-S", "Logo t-shirt, small", 2499, 12),
        ("TEE-M", "Logo t-shirt, medium", 2499, 18),
        ("TEE-L", "Logo t-shirt, large", 2499, 9),
        ("CAP", "Baseball cap", 1899, 30),
        ("TOTE", "Canvas tote bag", 1499, 50),
        ("NOTE-A5", "A5 dotted notebook", 899, 100),
    ]
    products = [
        ProductCreate(sku=sku, name=name, price=Money(amount=amount, currency="EUR"), stock=stock)
        for sku, name, amount, stock in demo
    ]
    async with unit_of_work(c.database, clock=c.clock) as uow:
        await catalog_service.import_products(uow, products=products)


@payments_app.command("reconcile")
def payments_reconcile(
    older_than: Annotated[
        int,
        typer.Option(
            min=0,
            help="Settle payments and refunds unsettled for longer than this many seconds "
            "(0: all of them now).",
        ),
    ] = 120,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 10_000,
) -> None:
    """Ask the gateway where every unsettled payment and refund stands and apply it:
    what a lost answer or a missed webhook left open. Never charges."""
    settled, failed = _run_with_container(
        lambda c: _reconcile(c, older_than=older_than, limit=limit)
    )
    console.print(f"settled {settled} payment(s) and refund(s); {failed} could not be asked")
    if failed:
        raise typer.Exit(code=1)


async def _reconcile(c: object, *, older_than: int, limit: int) -> tuple[int, int]:
    from datetime import timedelta

    from rich.progress import Progress

    from orderdesk.container import Container
    from orderdesk.core.uow import unit_of_work
    from orderdesk.payments import service as payment_service

    assert isinstance(c, Container)
    async with unit_of_work(c.database, clock=c.clock) as uow:
        before = uow.now() - timedelta(seconds=older_than)
        attempts = await payment_service.stale_attempt_ids(uow, before=before, limit=limit)
        refunds = await payment_service.stale_refund_ids(uow, before=before, limit=limit)
    settled = failed = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("reconciling", total=len(attempts) + len(refunds))
        for attempt_id in attempts:
            try:
                async with unit_of_work(c.database, clock=c.clock) as uow:
                    await payment_service.settle_attempt(uow, c.payments, attempt_id)
                settled += 1
            except Exception as exc:  # one unreachable intent must not stop the rest
                failed += 1
                console.print(f"[yellow]payment {attempt_id}: {exc}[/yellow]")
            progress.advance(task)
        for refund_id in refunds:
            try:
                async with unit_of_work(c.database, clock=c.clock) as uow:
                    await payment_service.settle_refund(uow, c.payments, refund_id)
                settled += 1
            except Exception as exc:
                failed += 1
                console.print(f"[yellow]refund {refund_id}: {exc}[/yellow]")
            progress.advance(task)
    return settled, failed


@payments_app.command("register-webhook")
def payments_register_webhook(
    url: Annotated[
        str, typer.Argument(help="Where the gateway sends events: …/api/v1/payments/webhook")
    ],
) -> None:
    """Create the webhook endpoint at the gateway (Stripe, or a sandbox process) for
    the events orderdesk handles, and print its signing secret once: put it in
    ORDERDESK_STRIPE_WEBHOOK_SECRETS."""
    endpoint = _run_with_container(lambda c: _register_webhook(c, url))
    console.print(f"webhook endpoint {endpoint.id} for {endpoint.url}")
    console.print(f"signing secret (shown once): {endpoint.secret}")


async def _register_webhook(c: object, url: str) -> Any:
    from orderdesk.container import Container
    from orderdesk.payments.service import EVENT_TYPES

    assert isinstance(c, Container)
    return await c.payments.create_webhook_endpoint(url, events=EVENT_TYPES)


def main() -> None:
    app()
