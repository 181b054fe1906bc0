"""E-mail handlers for domain events.

Each send is guarded by a business key (`email:<kind>:<subject id>`): checked before
the send, recorded right after it. A redelivered event finds the key and sends
nothing; the narrow window between a send and its record (a crash) can repeat a
message, which then carries the same Message-ID so mail systems drop the copy.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from orderdesk.auth import service as auth_service
from orderdesk.auth.models import TokenPurpose
from orderdesk.container import Container
from orderdesk.core.uow import unit_of_work
from orderdesk.notifications.mailer import EmailMessage
from orderdesk.notifications.templates import money, render
from orderdesk.orders import repository as order_repository
from orderdesk.outbox import models as outbox
from orderdesk.outbox import repository as outbox_repository
from orderdesk.outbox.models import EventContext, handles
from orderdesk.users import repository as user_repository

ORDER_MAILS = {
    "order.placed": "order_placed",
    "order.paid": "order_paid",
    "order.cancelled": "order_cancelled",
    "order.fulfilled": "order_fulfilled",
}


async def _send_once(c: Container, *, key: str, message: EmailMessage, ctx: EventContext) -> None:
    await c.mailer.send(message)
    async with unit_of_work(c.database, clock=c.clock) as uow:
        now = uow.now()
        await outbox_repository.record_effect(uow.session, key, event_id=ctx.event_id, now=now)
        await outbox.finish(uow, ctx, now=now)


async def _already_sent(c: Container, key: str) -> bool:
    # The primary, never a replica: a lagging replica would miss a recorded send.
    async with c.database.current_state() as connection:
        return await outbox_repository.effect_done(connection, key)


def _message_id(key: str) -> str:
    return f"<{key.replace(':', '.')}@orderdesk.invalid>"


async def send_order_mail(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    kind = ORDER_MAILS[ctx.topic]
    order_id = UUID(payload["order_id"])
    key = f"email:{kind}:{order_id}"
    # One connection to the primary (a replica may not have the order yet): the
    # effect check, the order with its lines, and its customer's address.
    async with c.database.current_state() as connection:
        if await outbox_repository.effect_done(connection, key):
            return
        order = await order_repository.get_with_lines(connection, order_id)
        if order is None:
            return
        lines = order.lines
        customer = await user_repository.contact_of(connection, order.user_id)
    if customer is None:
        return
    rendered = render(
        kind,
        name=customer.full_name,
        order_id=str(order.id),
        short_id=str(order.id)[-8:],
        lines=[
            {
                "quantity": line.quantity,
                "name": line.name,
                "sku": line.sku,
                "total": money(line.line_total_amount, order.currency),
            }
            for line in lines
        ],
        total=money(order.total_amount, order.currency),
    )
    message = EmailMessage(
        to=customer.email,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        kind=kind,
        message_id=_message_id(key),
    )
    await _send_once(c, key=key, message=message, ctx=ctx)


for _topic, _kind in ORDER_MAILS.items():
    handles(_topic, name=f"email.{_kind}")(send_order_mail)


async def send_account_mail(c: Container, payload: dict[str, Any], ctx: EventContext) -> None:
    """Verification and reset messages. The token is made here, when the message is
    sent, so no usable token ever sits in the outbox."""
    purpose = TokenPurpose(payload["purpose"])
    key = f"email:{purpose.value}:{ctx.event_id}"
    if await _already_sent(c, key):
        return
    async with unit_of_work(c.database, clock=c.clock) as uow:
        user = await user_repository.get_by_id(uow.session, UUID(payload["user_id"]))
        if user is None or not user.can_sign_in:
            return
        if purpose is TokenPurpose.VERIFY_EMAIL and user.email_verified_at is not None:
            return
        token = await auth_service.new_one_time_token(uow, c, user=user, purpose=purpose)
        email, name = user.email, user.full_name
    kind = purpose.value
    rendered = render(
        kind,
        name=name,
        token=token,
        hours=c.settings.email_verification_ttl_seconds // 3600,
        minutes=c.settings.password_reset_ttl_seconds // 60,
    )
    message = EmailMessage(
        to=email,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        kind=kind,
        message_id=_message_id(key),
    )
    await _send_once(c, key=key, message=message, ctx=ctx)


handles("auth.email_verification_requested", name="email.verify_email")(send_account_mail)
handles("auth.password_reset_requested", name="email.reset_password")(send_account_mail)
