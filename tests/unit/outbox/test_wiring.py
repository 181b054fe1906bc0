"""The handler table at the composition root: every event type that has consumers
is wired, under the names deployed outbox rows already carry, and webhook topics are
spelled once."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest

from orderdesk.bootstrap import HANDLERS, PERIODIC_JOBS
from orderdesk.container import Container
from orderdesk.notifications.handlers import send_account_mail, send_order_mail
from orderdesk.notifications.service import ORDER_MAIL_KINDS
from orderdesk.outbox import wiring
from orderdesk.outbox.events import (
    EVENT_TYPES,
    WEBHOOK_EVENTS,
    EmailVerificationRequested,
    Event,
    OrderPlaced,
    PasswordResetRequested,
    UserRegistered,
    WebhookDeliveryRequested,
    WebhookTopic,
)
from orderdesk.outbox.wiring import EventContext, HandlersNotInstalled, HandlerTable
from orderdesk.webhooks.handlers import deliver_webhook, fan_out_webhooks

# What deployed databases hold in `outbox_events.handler`: renaming one strands rows.
DEPLOYED_HANDLER_NAMES = {
    "email.order_placed",
    "email.order_paid",
    "email.order_cancelled",
    "email.order_fulfilled",
    "email.order_refunded",
    "email.verify_email",
    "email.reset_password",
    "webhooks.deliver",
    *(f"webhooks.fan_out.{topic}" for topic in get_args(WebhookTopic)),
    "payments.apply_gateway_event",
    "payments.settle_attempt",
    "payments.settle_refund",
    "payments.cancel_payment",
}


def test_the_table_keeps_every_handler_name_deployed_databases_hold() -> None:
    assert set(HANDLERS.names()) == DEPLOYED_HANDLER_NAMES


def test_every_event_type_but_user_registered_has_consumers() -> None:
    # UserRegistered is emitted for consumers to come; every other event has some.
    assert set(HANDLERS.event_types()) == set(EVENT_TYPES) - {UserRegistered}


def test_every_wired_event_type_is_in_the_catalogue() -> None:
    assert set(HANDLERS.event_types()) <= set(EVENT_TYPES)


def test_webhook_events_are_exactly_the_webhook_topics() -> None:
    assert [event.topic for event in WEBHOOK_EVENTS] == list(get_args(WebhookTopic))


@pytest.mark.parametrize("event_type", WEBHOOK_EVENTS, ids=lambda e: e.topic)
def test_every_webhook_event_is_fanned_out_under_its_topic(event_type: type[Event]) -> None:
    fan_out = HANDLERS.named(f"webhooks.fan_out.{event_type.topic}")

    assert fan_out is not None
    assert (fan_out.event_type, fan_out.run) == (event_type, fan_out_webhooks)


@pytest.mark.parametrize("event_type", list(ORDER_MAIL_KINDS), ids=lambda e: e.topic)
def test_every_mailed_order_event_is_mailed_under_its_kind(event_type: type[Event]) -> None:
    mail = HANDLERS.named(f"email.{ORDER_MAIL_KINDS[event_type]}")

    assert mail is not None
    assert (mail.event_type, mail.run) == (event_type, send_order_mail)


@pytest.mark.parametrize(
    ("name", "event_type", "run"),
    [
        ("email.verify_email", EmailVerificationRequested, send_account_mail),
        ("email.reset_password", PasswordResetRequested, send_account_mail),
        ("webhooks.deliver", WebhookDeliveryRequested, deliver_webhook),
    ],
)
def test_account_mail_and_delivery_are_wired_to_their_events(
    name: str, event_type: type[Event], run: object
) -> None:
    consumer = HANDLERS.named(name)

    assert consumer is not None
    assert (consumer.event_type, consumer.run) == (event_type, run)


@pytest.mark.parametrize("name", sorted(DEPLOYED_HANDLER_NAMES))
def test_every_handler_takes_the_event_it_is_wired_to(name: str) -> None:
    # The table's mapping is not checked by mypy (one dict over every event type):
    # each handler's `event` annotation must accept the event class it is wired to.
    consumer = HANDLERS.named(name)
    assert consumer is not None

    takes = get_type_hints(consumer.run)["event"]

    assert issubclass(consumer.event_type, takes)


def test_an_event_mails_before_it_fans_out() -> None:
    names = [consumer.name for consumer in HANDLERS.consumers_of(OrderPlaced)]

    assert names == ["email.order_placed", "webhooks.fan_out.order.placed"]


async def _nothing(c: Container, event: Event, ctx: EventContext) -> None:
    return None


def test_a_handler_name_can_be_taken_once() -> None:
    with pytest.raises(ValueError, match="taken"):
        HandlerTable({OrderPlaced: {"x": _nothing}, UserRegistered: {"x": _nothing}})


def test_a_table_used_for_a_block_wins_and_the_previous_one_comes_back() -> None:
    mine = HandlerTable({UserRegistered: {"test.mine": _nothing}})
    before = wiring.installed()

    with wiring.use_handlers(mine):
        inside = wiring.installed()
        wiring.install(HANDLERS)  # building a container meanwhile changes nothing
        still = wiring.installed()

    assert (inside, still) == (mine, mine)
    assert wiring.installed() is before


def test_emitting_without_an_installed_table_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wiring, "_process_table", None)

    with pytest.raises(HandlersNotInstalled):
        wiring.installed()


def test_the_periodic_jobs_keep_their_scheduled_names() -> None:
    # Beat's schedule and queued orderdesk.run_periodic messages carry these names.
    assert [job.name for job in PERIODIC_JOBS] == [
        "expire-unpaid-orders",
        "reconcile-payments",
        "purge-expired-records",
        "refresh-analytics",
    ]


ID = "0190f5f0-0000-7000-8000-000000000001"


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        (OrderPlaced, {"order_id": ID}),
        (EmailVerificationRequested, {"user_id": ID, "purpose": "verify_email"}),
        (PasswordResetRequested, {"user_id": ID, "purpose": "reset_password"}),
        (WebhookDeliveryRequested, {"delivery_id": ID}),
    ],
)
def test_payloads_in_deployed_rows_parse_into_their_event_class(
    event_type: type[Event], payload: dict[str, str]
) -> None:
    # Rows written before events were typed carry these payloads: the runner reads
    # them back with the class its handler takes, and writes the same shape.
    assert event_type.from_payload(payload).payload() == payload


def test_a_field_from_a_newer_release_is_ignored_not_refused() -> None:
    # A rolling deploy: a newer process emitted a field this one does not know.
    payload = {"order_id": ID, "added_later": "x"}

    assert OrderPlaced.from_payload(payload).payload() == {"order_id": ID}
