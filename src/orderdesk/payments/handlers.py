"""Outbox handlers of payments: thin adapters that open a unit of work, call the
service with the process's gateway and mark their event done with the effect."""

from __future__ import annotations

import structlog

from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.events import (
    GatewayEventReceived,
    OrderCancelled,
    PaymentSettleRequested,
    RefundRequested,
)
from orderdesk.outbox.wiring import EventContext
from orderdesk.payments import service as payment_service

log = structlog.get_logger("orderdesk.payments")


async def apply_gateway_event(c: Container, event: GatewayEventReceived, ctx: EventContext) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        outcome = await payment_service.apply_gateway_event(uow, c.payments, event.inbox_id)
        await outbox_service.finish(uow, ctx, now=uow.now())
    log.info("payment_event_applied", inbox_id=str(event.inbox_id), outcome=outcome)


async def settle_attempt(c: Container, event: PaymentSettleRequested, ctx: EventContext) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        await payment_service.settle_attempt(uow, c.payments, event.attempt_id, cancel=event.cancel)
        await outbox_service.finish(uow, ctx, now=uow.now())


async def settle_refund(c: Container, event: RefundRequested, ctx: EventContext) -> None:
    async with unit_of_work(c.database, clock=c.clock) as uow:
        await payment_service.settle_refund(uow, c.payments, event.refund_id)
        await outbox_service.finish(uow, ctx, now=uow.now())


async def cancel_payment(c: Container, event: OrderCancelled, ctx: EventContext) -> None:
    """An order was cancelled (or expired): cancel its open intent, if any."""
    async with unit_of_work(c.database, clock=c.clock) as uow:
        await payment_service.cancel_order_payment(uow, c.payments, event.order_id)
        await outbox_service.finish(uow, ctx, now=uow.now())
