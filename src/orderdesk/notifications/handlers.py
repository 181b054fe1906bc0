"""E-mail handlers: thin adapters that load what a message needs, ask
`notifications.service` for the message, send it and record the effect.

Each send is guarded by a business key (`email:<kind>:<subject id>`): checked before
the send, recorded right after it. A redelivered event finds the key and sends
nothing; the narrow window between a send and its record (a crash) can repeat a
message, which then carries the same Message-ID so mail systems drop the copy.
Which events reach these handlers is wired in `orderdesk.bootstrap.HANDLERS`.
"""

from __future__ import annotations

from orderdesk.auth import service as auth_service
from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.notifications import service as notification_service
from orderdesk.notifications.mailer import EmailMessage
from orderdesk.orders import repository as order_repository
from orderdesk.outbox import repository as outbox_repository
from orderdesk.outbox import service as outbox_service
from orderdesk.outbox.events import AccountMailRequested, OrderEvent
from orderdesk.outbox.wiring import EventContext
from orderdesk.users import repository as user_repository


async def send_order_mail(c: Container, event: OrderEvent, ctx: EventContext) -> None:
    kind = notification_service.order_mail_kind(event)
    key = notification_service.order_mail_key(kind, event.order_id)
    # One connection to the primary (a replica may not have the order yet): the
    # effect check, the order with its lines, and its customer's address.
    async with c.database.primary_reads().connection() as connection:
        if await outbox_repository.effect_done(connection, key):
            return
        order = await order_repository.get_with_lines(connection, event.order_id)
        if order is None:
            return
        customer = await user_repository.contact_of(connection, order.user_id)
    if customer is None:
        return
    message = notification_service.order_message(
        kind, key=key, order=order, lines=order.lines, to=customer.email, name=customer.full_name
    )
    await _send_once(c, key=key, message=message, ctx=ctx)


async def send_account_mail(c: Container, event: AccountMailRequested, ctx: EventContext) -> None:
    """Verification and reset messages. The token is made here, when the message is
    sent, so no usable token ever sits in the outbox."""
    key = notification_service.account_mail_key(event.purpose, ctx.event_id)
    if await _already_sent(c, key):
        return
    async with unit_of_work(c.database, clock=c.clock) as uow:
        user = await user_repository.get_by_id(uow.session, event.user_id)
        if user is None or not notification_service.wants_account_mail(
            event.purpose,
            can_sign_in=user.can_sign_in,
            email_verified=user.email_verified_at is not None,
        ):
            return
        token = await auth_service.new_one_time_token(uow, c, user=user, purpose=event.purpose)
        email, name = user.email, user.full_name
    message = notification_service.account_message(
        event.purpose, key=key, to=email, name=name, token=token, settings=c.settings
    )
    await _send_once(c, key=key, message=message, ctx=ctx)


async def _send_once(c: Container, *, key: str, message: EmailMessage, ctx: EventContext) -> None:
    await c.mailer.send(message)
    async with unit_of_work(c.database, clock=c.clock) as uow:
        now = uow.now()
        await outbox_repository.record_effect(uow.session, key, event_id=ctx.event_id, now=now)
        await outbox_service.finish(uow, ctx, now=now)


async def _already_sent(c: Container, key: str) -> bool:
    # The primary, never a replica: a lagging replica would miss a recorded send.
    async with c.database.primary_reads().connection() as connection:
        return await outbox_repository.effect_done(connection, key)
