"""The composition root: what a process is made of, wired in one place.

- `build_container` chooses the adapters from settings; this is the one place where
  tiers differ: which database, whether throttling state (sign-in failures, sign-ups,
  resets, verification re-sends) is shared through Redis, which mailer, which
  payment gateway (Stripe, a sandbox process, or the sandbox in process). It also
  installs `HANDLERS` for the process (`orderdesk.outbox.wiring`), so every process
  that can emit or run events knows all of their consumers.
- `HANDLERS`: which handlers consume each event type, under the names their outbox
  rows carry (names are stored: never rename one that has been deployed).
- `PERIODIC_JOBS`: which periodic jobs run, and how often.
- Importing this module also imports every table model, so the metadata is complete
  for Alembic and tests.
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from sqlmodel import SQLModel

from orderdesk.auth import models as auth_models
from orderdesk.auth import service as auth_service
from orderdesk.auth.passwords import PasswordHasher
from orderdesk.auth.throttle import (
    ActionLimits,
    MemoryFailureCounter,
    RedisFailureCounter,
    SigninThrottle,
)
from orderdesk.auth.tokens import TokenCodec
from orderdesk.catalog import models as catalog_models
from orderdesk.container import Container, outbound_http_client
from orderdesk.core import audit
from orderdesk.core.clock import SystemClock
from orderdesk.core.database import Database
from orderdesk.core.settings import Settings
from orderdesk.core.uow import UnitOfWork
from orderdesk.idempotency import models as idempotency_models
from orderdesk.idempotency import service as idempotency_service
from orderdesk.notifications.handlers import send_account_mail, send_order_mail
from orderdesk.notifications.mailer import mailer_from_url
from orderdesk.orders import models as order_models
from orderdesk.orders import service as order_service
from orderdesk.outbox import models as outbox_models
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox import wiring
from orderdesk.outbox.events import (
    EmailVerificationRequested,
    GatewayEventReceived,
    OrderCancelled,
    OrderFulfilled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    PasswordResetRequested,
    PaymentSettleRequested,
    RefundRequested,
    WebhookDeliveryRequested,
)
from orderdesk.outbox.scheduler import PeriodicJob
from orderdesk.outbox.wiring import HandlerTable
from orderdesk.payments import handlers as payment_handlers
from orderdesk.payments import models as payment_models
from orderdesk.payments import service as payment_service
from orderdesk.payments.gateway import PaymentGateway
from orderdesk.payments.stripe_gateway import StripeConfig, StripeGateway
from orderdesk.users import models as user_models
from orderdesk.webhooks import models as webhook_models
from orderdesk.webhooks.handlers import deliver_webhook, fan_out_webhooks

metadata = SQLModel.metadata
TABLE_MODULES = (
    audit,
    auth_models,
    catalog_models,
    idempotency_models,
    order_models,
    outbox_models,
    payment_models,
    user_models,
    webhook_models,
)

# `UserRegistered` has no consumer yet: emitting it writes no row.
HANDLERS = HandlerTable(
    {
        OrderPlaced: {
            "email.order_placed": send_order_mail,
            "webhooks.fan_out.order.placed": fan_out_webhooks,
        },
        OrderPaid: {
            "email.order_paid": send_order_mail,
            "webhooks.fan_out.order.paid": fan_out_webhooks,
        },
        OrderCancelled: {
            "email.order_cancelled": send_order_mail,
            "webhooks.fan_out.order.cancelled": fan_out_webhooks,
            "payments.cancel_payment": payment_handlers.cancel_payment,
        },
        OrderFulfilled: {
            "email.order_fulfilled": send_order_mail,
            "webhooks.fan_out.order.fulfilled": fan_out_webhooks,
        },
        OrderRefunded: {
            "email.order_refunded": send_order_mail,
            "webhooks.fan_out.order.refunded": fan_out_webhooks,
        },
        EmailVerificationRequested: {"email.verify_email": send_account_mail},
        PasswordResetRequested: {"email.reset_password": send_account_mail},
        WebhookDeliveryRequested: {"webhooks.deliver": deliver_webhook},
        GatewayEventReceived: {
            "payments.apply_gateway_event": payment_handlers.apply_gateway_event
        },
        PaymentSettleRequested: {"payments.settle_attempt": payment_handlers.settle_attempt},
        RefundRequested: {"payments.settle_refund": payment_handlers.settle_refund},
    }
)


async def expire_unpaid_orders(uow: UnitOfWork, settings: Settings) -> int:
    return await order_service.expire_unpaid_orders(
        uow, max_age=timedelta(seconds=settings.order_payment_ttl_seconds)
    )


async def purge_expired_records(uow: UnitOfWork, settings: Settings) -> int:
    """Expired refresh and single-use tokens, idempotency keys, old finished events."""
    purged = await auth_service.purge_expired_tokens(uow)
    purged += await idempotency_service.purge_expired(uow)
    purged += await outbox_service.purge_done_events(uow)
    return purged


async def refresh_analytics(uow: UnitOfWork, settings: Settings) -> int:
    """The hourly analytics hook; the analytics issue gives it work."""
    return 0


async def reconcile_payments(uow: UnitOfWork, settings: Settings) -> int:
    """Queue a settle of every payment and refund left unsettled too long."""
    return await payment_service.queue_reconciliation(
        uow, older_than=timedelta(seconds=settings.payment_reconcile_after_seconds)
    )


PERIODIC_JOBS = (
    PeriodicJob("expire-unpaid-orders", timedelta(minutes=1), expire_unpaid_orders),
    PeriodicJob("reconcile-payments", timedelta(minutes=1), reconcile_payments),
    PeriodicJob("purge-expired-records", timedelta(hours=1), purge_expired_records),
    PeriodicJob("refresh-analytics", timedelta(hours=1), refresh_analytics),
)


def build_container(settings: Settings) -> Container:
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    counter = RedisFailureCounter(redis) if redis else MemoryFailureCounter()
    wiring.install(HANDLERS)
    return Container(
        settings=settings,
        database=Database.from_settings(settings),
        clock=SystemClock(),
        hasher=PasswordHasher.from_settings(settings),
        tokens=TokenCodec(settings),
        throttle=SigninThrottle.from_settings(settings, counter),
        limits=ActionLimits.from_settings(settings, counter),
        mailer=mailer_from_url(settings.smtp_url),
        redis=redis,
        http=outbound_http_client(),
        payments=payment_gateway(settings),
    )


def payment_gateway(settings: Settings) -> PaymentGateway:
    """Stripe with a key alone; the same adapter at `ORDERDESK_PAYMENT_GATEWAY_URL`
    when set (a sandbox process, or any Stripe-compatible base); with neither, the
    sandbox in this process."""
    if settings.stripe_api_key or settings.payment_gateway_url:
        return StripeGateway(StripeConfig.from_settings(settings))
    from orderdesk.payments.inprocess import InProcessGateway

    return InProcessGateway(settings)
