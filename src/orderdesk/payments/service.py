"""Paying and refunding orders through the payment gateway, without ever charging
twice.

The rules, each answering a way shops have double-charged or lost payments:

- Every gateway call carries an idempotency key derived from orderdesk's ids (the
  attempt's or the refund's, see `models`), and the row those ids come from is
  committed before the call (`UnitOfWork.checkpoint`): a retry of the call, by the
  SDK or by us, can only replay it.
- Creating an intent moves no money, confirming it does; an order has at most one
  live attempt, and paying again (another card after a decline) confirms the same
  intent again under the next confirmation's key.
- A timeout or a 5xx is an *unknown* outcome: the attempt is marked so and settled
  by retrieving the intent (at once, then by reconciliation), never by confirming
  again.
- Whatever reports the intent's state (the confirm's answer, a webhook, a
  retrieve) goes through `_apply_intent` with the order and the attempt locked:
  terminal states are final, so the synchronous answer and the webhook can both
  arrive and only the first success marks the order paid.
- Webhooks are an inbox: recorded once per event id and answered at once, applied
  through the outbox, and marked handled in the transaction of their effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from pydantic import TypeAdapter

from orderdesk.auth.permissions import Principal
from orderdesk.core import audit
from orderdesk.core.money import Money
from orderdesk.core.reads import PrimaryReads
from orderdesk.core.uow import UnitOfWork
from orderdesk.orders import repository as order_repository
from orderdesk.orders import service as order_service
from orderdesk.orders.errors import OrderNotFound
from orderdesk.orders.models import Order, OrderStatus
from orderdesk.orders.schemas import OrderPublic
from orderdesk.outbox import service as outbox
from orderdesk.outbox.events import GatewayEventReceived, PaymentSettleRequested, RefundRequested
from orderdesk.payments import gateway as gw
from orderdesk.payments import repository as payment_repository
from orderdesk.payments.errors import (
    InvalidPaymentMethod,
    InvalidWebhookSignature,
    OrderNotPayable,
    OrderNotRefundable,
    PaymentDeclined,
    PaymentEnded,
    PaymentGatewayUnavailable,
    PaymentInProgress,
    RefundCurrencyMismatch,
    RefundExceedsRemaining,
    RestockNeedsFullRefund,
)
from orderdesk.payments.models import (
    TERMINAL,
    UNSETTLED,
    AttemptStatus,
    PaymentAttempt,
    PaymentRefund,
    RefundStatus,
)
from orderdesk.payments.schemas import (
    OrderPayments,
    PaymentAttemptPublic,
    PaymentCreate,
    PaymentPending,
    RefundCreate,
    RefundPublic,
)

log = structlog.get_logger("orderdesk.payments")

# The webhook events orderdesk subscribes to (and backfills from the event list).
EVENT_TYPES = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.canceled",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refunded",
)
# How long after it was sent a confirm may still be running at the gateway, beyond
# the longest call (its retries included): until then a pay of the order is "in
# progress", and an intent that shows no sign of it is not taken as declined.
IN_FLIGHT_MARGIN = timedelta(seconds=15)


def _in_flight(gateway: gw.PaymentGateway) -> timedelta:
    return timedelta(seconds=gateway.longest_call) + IN_FLIGHT_MARGIN


_EVENTS = TypeAdapter(gw.GatewayEvent)


# --- paying -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Settled:
    """What the gateway says the intent is now."""

    intent: gw.Intent


@dataclass(frozen=True, slots=True)
class _Declined:
    decline: gw.Decline
    intent: gw.Intent | None


@dataclass(frozen=True, slots=True)
class _Unavailable:
    retry_after: float


@dataclass(frozen=True, slots=True)
class _Unknown:
    reason: str


@dataclass(frozen=True, slots=True)
class _BadPaymentMethod:
    message: str


_Result = _Settled | _Declined | _Unavailable | _Unknown | _BadPaymentMethod


async def pay(
    uow: UnitOfWork,
    gateway: gw.PaymentGateway,
    *,
    order_id: UUID,
    payer: Principal,
    data: PaymentCreate,
) -> OrderPublic | PaymentPending:
    """Pay the caller's order with `data.payment_method`: the paid order, or what is
    still pending (3-D Secure, or an outcome being settled). Declines, an
    unavailable gateway and an unknown payment method are refusals that leave the
    order payable."""
    order = await _payable_order(uow, order_id, payer)
    attempt = await payment_repository.live_attempt(uow.session, order.id)
    if (
        attempt is not None
        and attempt.status is AttemptStatus.CONFIRMING
        and attempt.confirm_sent_at is not None
        and uow.now() - attempt.confirm_sent_at < _in_flight(gateway)
    ):
        raise PaymentInProgress()
    if attempt is not None and attempt.status in _ASK_FIRST and attempt.intent_id is not None:
        # Its last call's outcome is not known here (or the customer is mid-3-D
        # Secure): ask before sending anything that could charge.
        attempt_id, known_intent, seen = attempt.id, attempt.intent_id, attempt.confirmations
        await uow.checkpoint()
        order, attempt, intent = await _apply_result(
            uow,
            gateway,
            order_id,
            attempt_id,
            await _retrieve(gateway, known_intent),
            seen_confirmations=seen,
        )
        if attempt.status is not AttemptStatus.REQUIRES_PAYMENT_METHOD:
            return await _reply(uow, order, attempt, intent)
        order = await _payable_order(uow, order_id, payer)  # payable again: go on
    if attempt is None:
        attempt = PaymentAttempt(
            order_id=order.id,
            attempt_no=await payment_repository.next_attempt_no(uow.session, order.id),
            amount=order.total_amount,
            currency=order.currency,
        )
        uow.session.add(attempt)
    elif attempt.status is AttemptStatus.SUCCEEDED:
        raise OrderNotPayable("The order is already paid.")
    attempt.confirmations += 1
    attempt.payment_method = data.payment_method
    attempt.status = AttemptStatus.CONFIRMING
    attempt.confirm_sent_at = uow.now()
    await uow.flush()
    ref = _AttemptRef.of(attempt)
    # The attempt (and the client's idempotency claim) are durable before any call.
    await uow.checkpoint()

    intent_id = ref.intent_id
    if intent_id is None:
        try:
            created = await gateway.create_intent(
                amount=ref.amount,
                currency=ref.currency.lower(),
                metadata=ref.metadata,
                idempotency_key=ref.key("create"),
            )
        except gw.GatewayUnavailable as down:
            await _revert(uow, ref)
            raise PaymentGatewayUnavailable(retry_after=down.retry_after) from down
        except gw.GatewayRejected as rejected:
            # The gateway refuses this payment itself (amount, currency): a retry
            # would be refused alike.
            await _end_attempt(uow, ref, error=f"create refused: {rejected.message}"[:500])
            raise PaymentEnded(f"The gateway refused the payment: {rejected.message}") from rejected
        except gw.GatewayError as exc:
            # No money moves on create; its key may hold a saved failure for a day,
            # so this attempt ends and the next pay starts a fresh one.
            await _end_attempt(uow, ref, error=f"create failed: {exc}"[:500])
            raise PaymentGatewayUnavailable(retry_after=1) from exc
        intent_id = created.id
        if not await _record_intent(uow, ref, intent_id):
            # Ended while the intent was made: cancel it (no money moved) and stop.
            await settle_attempt(uow, gateway, ref.id, cancel=True)
            raise PaymentEnded("The order was cancelled while it was being paid.")
    result = await _confirm(gateway, ref, intent_id, data.payment_method)
    if isinstance(result, _Unavailable):
        await _revert(uow, ref)
        raise PaymentGatewayUnavailable(retry_after=result.retry_after)
    if isinstance(result, _BadPaymentMethod):
        await _revert(uow, ref)
        raise InvalidPaymentMethod(result.message)
    decline = result.decline if isinstance(result, _Declined) else None
    if isinstance(result, _Declined):
        if result.intent is None:
            await _revert(uow, ref, decline=result.decline)
            raise _declined(result.decline)
        result = _Settled(result.intent)
    order, attempt, intent = await _apply_result(
        uow, gateway, order_id, ref.id, result, seen_confirmations=ref.confirmations
    )
    return await _reply(uow, order, attempt, intent, decline)


# A live attempt in one of these is asked about before anything else is sent.
_ASK_FIRST = frozenset(
    {
        AttemptStatus.CONFIRMING,  # stale: its process died mid-call
        AttemptStatus.UNKNOWN,
        AttemptStatus.PROCESSING,
        AttemptStatus.REQUIRES_ACTION,
    }
)


@dataclass(frozen=True, slots=True)
class _AttemptRef:
    """What the calls out need of an attempt, copied while its row is locked."""

    id: UUID
    order_id: UUID
    attempt_no: int
    amount: int
    currency: str
    intent_id: str | None
    confirmations: int

    @classmethod
    def of(cls, attempt: PaymentAttempt) -> _AttemptRef:
        return cls(
            id=attempt.id,
            order_id=attempt.order_id,
            attempt_no=attempt.attempt_no,
            amount=attempt.amount,
            currency=attempt.currency,
            intent_id=attempt.intent_id,
            confirmations=attempt.confirmations,
        )

    def key(self, step: str) -> str:
        return f"orderdesk:{self.order_id}:pay{self.attempt_no}:{step}"

    @property
    def metadata(self) -> dict[str, str]:
        # Webhooks carry these back: an event without them is not orderdesk's.
        return {
            "orderdesk_order_id": str(self.order_id),
            "orderdesk_attempt_id": str(self.id),
            "orderdesk_attempt_no": str(self.attempt_no),
        }


async def _confirm(
    gateway: gw.PaymentGateway, ref: _AttemptRef, intent_id: str, payment_method: str
) -> _Result:
    try:
        intent = await gateway.confirm_intent(
            intent_id,
            payment_method=payment_method,
            idempotency_key=ref.key(f"confirm{ref.confirmations}"),
        )
    except gw.PaymentDeclined as declined:
        return _Declined(declined.decline, declined.intent)
    except gw.GatewayUnavailable as down:
        return _Unavailable(down.retry_after)
    except gw.GatewayRejected as rejected:
        if rejected.param == "payment_method":
            return _BadPaymentMethod(rejected.message)
        if rejected.intent is not None:  # e.g. not confirmable any more: here is why
            return _Settled(rejected.intent)
        log.error("payment_confirm_rejected", code=rejected.code, message=rejected.message)
        return await _retrieve(gateway, intent_id)
    except gw.GatewayError as exc:  # unknown outcome: ask, never confirm again
        log.warning("payment_outcome_unknown", attempt_id=str(ref.id), error=str(exc))
        return await _retrieve(gateway, intent_id)
    return _Settled(intent)


async def _retrieve(gateway: gw.PaymentGateway, intent_id: str) -> _Result:
    try:
        return _Settled(await gateway.retrieve_intent(intent_id))
    except gw.GatewayError as exc:
        return _Unknown(str(exc))


async def _apply_result(
    uow: UnitOfWork,
    gateway: gw.PaymentGateway,
    order_id: UUID,
    attempt_id: UUID,
    result: _Result,
    *,
    seen_confirmations: int,
) -> tuple[Order, PaymentAttempt, gw.Intent | None]:
    """Apply what the gateway said of an attempt, with its order and the attempt
    locked (in that order, everywhere); an unknown outcome marks it for
    reconciliation. `seen_confirmations` is the attempt's count of confirms when
    the gateway was asked: if another confirm was sent since, a state that is not
    final is older than that confirm and is not applied."""
    order = await _lock_order(uow, order_id)
    attempt = await payment_repository.lock_attempt(uow.session, attempt_id)
    assert attempt is not None
    if attempt.confirmations != seen_confirmations and not (
        isinstance(result, _Settled) and result.intent.status in _FINAL_AT_GATEWAY
    ):
        return order, attempt, None
    if isinstance(result, _Settled) and _confirm_not_seen(uow, gateway, attempt, result.intent):
        result = _Unknown("the gateway has not seen the last confirm (yet)")
    if not isinstance(result, _Settled):
        if attempt.status not in TERMINAL:
            attempt.status = AttemptStatus.UNKNOWN
            attempt.last_error = (
                result.reason if isinstance(result, _Unknown) else type(result).__name__
            )[:500]
            await uow.flush()
        return order, attempt, None
    await _apply_intent(uow, order, attempt, result.intent)
    return order, attempt, result.intent


def _confirm_not_seen(
    uow: UnitOfWork, gateway: gw.PaymentGateway, attempt: PaymentAttempt, intent: gw.Intent
) -> bool:
    """An intent still waiting for a payment method, with no error, shortly after a
    confirm whose answer was lost: the confirm may be running there still (or be
    about to), so this is no decline and no ground to confirm again. Past
    that window the confirm is taken never to have arrived."""
    return (
        attempt.status in (AttemptStatus.CONFIRMING, AttemptStatus.UNKNOWN)
        and intent.status
        in (gw.IntentStatus.REQUIRES_PAYMENT_METHOD, gw.IntentStatus.REQUIRES_CONFIRMATION)
        and intent.last_error is None
        and attempt.confirm_sent_at is not None
        and uow.now() - attempt.confirm_sent_at < _in_flight(gateway)
    )


async def _reply(
    uow: UnitOfWork,
    order: Order,
    attempt: PaymentAttempt,
    intent: gw.Intent | None,
    decline: gw.Decline | None = None,
) -> OrderPublic | PaymentPending:
    """The payer's answer for the attempt's state after applying the gateway's."""
    status = attempt.status
    if status is AttemptStatus.SUCCEEDED:
        if order.status is OrderStatus.PAID:
            return OrderPublic.from_record(await order_repository.record_of(uow.session, order))
        # Paid at the gateway after the order was cancelled: the money goes back.
        raise PaymentEnded("The order was cancelled while it was being paid; it is refunded.")
    if status is AttemptStatus.REQUIRES_ACTION:
        return PaymentPending(
            status="requires_action",
            order_id=order.id,
            payment_id=attempt.id,
            client_secret=intent.client_secret if intent is not None else None,
        )
    if status is AttemptStatus.REQUIRES_PAYMENT_METHOD:
        last = intent.last_error if intent is not None else None
        raise _declined(decline or last or _GENERIC_DECLINE)
    if status is AttemptStatus.CANCELED:
        raise PaymentEnded("The payment was cancelled.")
    if status is AttemptStatus.FAILED:
        raise PaymentEnded("The payment could not be accepted.")
    return PaymentPending(status="processing", order_id=order.id, payment_id=attempt.id)


_GENERIC_DECLINE = gw.Decline(code="card_declined", decline_code=None, message="declined")


def _declined(decline: gw.Decline) -> PaymentDeclined:
    return PaymentDeclined(
        decline_code=decline.decline_code or decline.code,
        reason=decline.message or "The card was declined.",
    )


async def _revert(uow: UnitOfWork, ref: _AttemptRef, *, decline: gw.Decline | None = None) -> None:
    """Nothing happened at the gateway (or only a decline): the attempt is payable
    again, or, if it has no intent yet, back to being created by the next pay."""
    attempt = await payment_repository.lock_attempt(uow.session, ref.id)
    if attempt is not None and attempt.status is AttemptStatus.CONFIRMING:
        attempt.status = (
            AttemptStatus.REQUIRES_PAYMENT_METHOD
            if attempt.intent_id is not None
            else AttemptStatus.CREATING
        )
        if decline is not None:
            attempt.decline_code = decline.decline_code or decline.code
        await uow.flush()


async def _end_attempt(uow: UnitOfWork, ref: _AttemptRef, *, error: str) -> None:
    attempt = await payment_repository.lock_attempt(uow.session, ref.id)
    if attempt is not None and attempt.status not in TERMINAL:
        attempt.status = AttemptStatus.FAILED
        attempt.last_error = error
        await uow.flush()


async def _record_intent(uow: UnitOfWork, ref: _AttemptRef, intent_id: str) -> bool:
    """Keep the new intent's id at once, in its own commit: its webhooks may come
    before the confirm returns, and reconciliation needs it if the confirm is lost.
    False when the order or the attempt ended while the intent was being made (a
    cancel, the expiry): then nothing may be confirmed."""
    order = await _lock_order(uow, ref.order_id)
    attempt = await payment_repository.lock_attempt(uow.session, ref.id)
    assert attempt is not None
    attempt.intent_id = intent_id
    payable = (
        attempt.status is AttemptStatus.CONFIRMING and order.status is OrderStatus.PENDING_PAYMENT
    )
    await uow.checkpoint()
    return payable


async def _payable_order(uow: UnitOfWork, order_id: UUID, payer: Principal) -> Order:
    order = await payment_repository.lock_order(uow.session, order_id)
    if order is None or order.user_id != payer.id:
        raise OrderNotFound()
    if order.status is not OrderStatus.PENDING_PAYMENT:
        raise OrderNotPayable(f"The order is {order.status.value}.")
    return order


async def _lock_order(uow: UnitOfWork, order_id: UUID) -> Order:
    order = await payment_repository.lock_order(uow.session, order_id)
    if order is None:
        raise OrderNotFound()
    return order


# --- the one place an intent's state is applied ------------------------------------------


async def _apply_intent(
    uow: UnitOfWork, order: Order, attempt: PaymentAttempt, intent: gw.Intent
) -> AttemptStatus:
    """Apply what the gateway says of the attempt's intent, with the order and the
    attempt locked; returns the attempt's status after. Terminal states are final;
    the first success marks the order paid. Money the gateway took that orderdesk
    cannot keep (the order was cancelled meanwhile, the attempt had ended, or the
    amount is not the order's) is refunded, once."""
    if attempt.intent_id is not None and intent.id != attempt.intent_id:
        log.error("payment_intent_mismatch", attempt_id=str(attempt.id), intent_id=intent.id)
        return attempt.status
    if attempt.intent_id is None:
        attempt.intent_id = intent.id
    status = _STATUS_OF[intent.status]
    if attempt.status in TERMINAL:
        if status is AttemptStatus.SUCCEEDED and attempt.status is not AttemptStatus.SUCCEEDED:
            # Charged after the attempt ended (a cancel raced a confirm): give it back.
            await _refund_unkept(uow, order, attempt, intent, reason="attempt_ended")
        return attempt.status
    before = attempt.status
    if status is AttemptStatus.SUCCEEDED and (
        intent.amount != attempt.amount or intent.currency.upper() != attempt.currency
    ):
        log.error(
            "payment_amount_mismatch",
            attempt_id=str(attempt.id),
            expected=[attempt.amount, attempt.currency],
            got=[intent.amount, intent.currency],
        )
        attempt.status = AttemptStatus.FAILED
        attempt.last_error = f"gateway charged {intent.amount} {intent.currency}"
        await uow.flush()
        await _refund_unkept(uow, order, attempt, intent, reason="amount_mismatch")
        return attempt.status
    attempt.status = status
    if intent.last_error is not None and status is AttemptStatus.REQUIRES_PAYMENT_METHOD:
        attempt.decline_code = intent.last_error.decline_code or intent.last_error.code
        attempt.last_error = (intent.last_error.message or "")[:500] or None
    await uow.flush()
    if status is AttemptStatus.SUCCEEDED:
        audit.record(
            uow,
            action="payment.succeeded",
            entity_type="payment_attempt",
            entity_id=attempt.id,
            changes={
                "order_id": str(order.id),
                "amount": attempt.amount,
                "currency": attempt.currency,
                "intent_id": intent.id,
                "status": {"from": before.value, "to": status.value},
            },
        )
        if order.status is OrderStatus.PENDING_PAYMENT:
            await order_service.mark_paid(uow, order, payment_id=attempt.id)
        else:
            await _refund_unkept(uow, order, attempt, intent, reason="order_not_payable")
    return attempt.status


_STATUS_OF = {
    gw.IntentStatus.REQUIRES_PAYMENT_METHOD: AttemptStatus.REQUIRES_PAYMENT_METHOD,
    gw.IntentStatus.REQUIRES_CONFIRMATION: AttemptStatus.REQUIRES_PAYMENT_METHOD,
    gw.IntentStatus.REQUIRES_ACTION: AttemptStatus.REQUIRES_ACTION,
    gw.IntentStatus.PROCESSING: AttemptStatus.PROCESSING,
    gw.IntentStatus.REQUIRES_CAPTURE: AttemptStatus.PROCESSING,
    gw.IntentStatus.SUCCEEDED: AttemptStatus.SUCCEEDED,
    gw.IntentStatus.CANCELED: AttemptStatus.CANCELED,
}


async def _refund_unkept(
    uow: UnitOfWork, order: Order, attempt: PaymentAttempt, intent: gw.Intent, *, reason: str
) -> None:
    """Refund in full a charge orderdesk cannot keep; once per attempt, however
    often the success is reported."""
    refunds = await payment_repository.refunds_of(uow.session, order.id)
    if any(r.attempt_id == attempt.id and r.reason == reason for r in refunds):
        return
    log.warning("payment_refunded_unkept", order_id=str(order.id), reason=reason)
    refund = PaymentRefund(
        order_id=order.id,
        attempt_id=attempt.id,
        amount=intent.amount,
        currency=intent.currency.upper(),
        reason=reason,
    )
    uow.session.add(refund)
    await uow.flush()
    _audit_refund(uow, refund, "payment.refund_requested")
    outbox.emit(uow, RefundRequested(refund_id=refund.id))


# --- refunds ------------------------------------------------------------------------------


async def refund(
    uow: UnitOfWork, gateway: gw.PaymentGateway, *, order_id: UUID, data: RefundCreate
) -> RefundPublic:
    """Refund part or all of what remains of the order's payment (staff). The order
    becomes `refunded` once refunds reach the amount paid."""
    order = await _lock_order(uow, order_id)
    attempt = await payment_repository.succeeded_attempt(uow.session, order_id)
    if attempt is None or order.status is not OrderStatus.PAID:
        raise OrderNotRefundable(f"The order is {order.status.value}.")
    remaining = attempt.amount - await _committed_refunds(uow, order_id)
    amount = remaining if data.amount is None else data.amount.amount
    if data.amount is not None and data.amount.currency != attempt.currency:
        raise RefundCurrencyMismatch(attempt.currency)
    if amount <= 0 or amount > remaining:
        raise RefundExceedsRemaining(remaining=remaining, currency=attempt.currency)
    if data.restock and amount != remaining:
        raise RestockNeedsFullRefund()
    row = PaymentRefund(
        order_id=order_id,
        attempt_id=attempt.id,
        amount=amount,
        currency=attempt.currency,
        restock=data.restock,
        reason="requested_by_customer",
    )
    uow.session.add(row)
    await uow.flush()
    _audit_refund(uow, row, "payment.refund_requested")
    refund_id, intent_id, key = row.id, attempt.intent_id, row.key()
    assert intent_id is not None
    await uow.checkpoint()
    result = await _ask_refund(gateway, intent_id, refund_id, amount, key)
    return RefundPublic.from_row(await _apply_refund(uow, refund_id, result))


async def _committed_refunds(uow: UnitOfWork, order_id: UUID) -> int:
    rows = await payment_repository.refunds_of(uow.session, order_id)
    return sum(row.amount for row in rows if row.status is not RefundStatus.FAILED)


async def _ask_refund(
    gateway: gw.PaymentGateway, intent_id: str, refund_id: UUID, amount: int, key: str
) -> gw.Refund | gw.GatewayError:
    try:
        return await gateway.create_refund(
            payment_intent=intent_id,
            amount=amount,
            metadata={"orderdesk_refund_id": str(refund_id)},
            idempotency_key=key,
        )
    except gw.GatewayError as exc:
        return exc


async def _apply_refund(
    uow: UnitOfWork, refund_id: UUID, result: gw.Refund | gw.GatewayError
) -> PaymentRefund:
    """Apply the gateway's answer about a refund, with the order and the refund
    locked; the order becomes refunded when the succeeded refunds reach what was
    paid. A refund is final once succeeded or failed."""
    order_id = await payment_repository.order_of_refund(uow.session, refund_id)
    assert order_id is not None
    order = await _lock_order(uow, order_id)
    row = await payment_repository.lock_refund(uow.session, refund_id)
    assert row is not None
    failure: str | None
    if isinstance(result, gw.GatewayRejected) and not _still_running(result):
        # Refused, nothing refunded (e.g. more than the charge has left): final.
        result_status, failure = RefundStatus.FAILED, result.code or result.message
    elif isinstance(result, gw.GatewayError):
        # Unknown, not sent, or the same key still running at the gateway: stays
        # pending; reconciliation asks again with the same key.
        log.warning("refund_outcome_unknown", refund_id=str(refund_id), error=str(result))
        return row
    else:
        if row.gateway_refund_id is None:
            row.gateway_refund_id = result.id
        result_status = _REFUND_STATUS_OF.get(result.status, RefundStatus.PENDING)
        failure = result.failure_reason
    if row.status is RefundStatus.SUCCEEDED and result_status is RefundStatus.FAILED:
        # The gateway failed a refund after reporting it made (a bank returned it):
        # the money did not go back; an operator must act.
        log.error("refund_failed_after_success", refund_id=str(refund_id), reason=failure)
    # Forward only, but the gateway's word that a refund was made is final: a row
    # failed on an answer that did not know better moves to succeeded.
    moves = row.status is RefundStatus.PENDING or (
        row.status is RefundStatus.FAILED
        and result_status is RefundStatus.SUCCEEDED
        and not isinstance(result, gw.GatewayError)
    )
    if not moves or result_status is RefundStatus.PENDING:
        await uow.flush()
        return row
    row.status = result_status
    row.failure_reason = failure
    await uow.flush()
    _audit_refund(uow, row, f"payment.refund_{result_status.value}")
    if result_status is RefundStatus.SUCCEEDED:
        await _maybe_refunded(uow, order, row)
    return row


def _still_running(rejected: gw.GatewayRejected) -> bool:
    """A 409 for a key whose first request is still running: not a refusal."""
    return rejected.status == 409 or rejected.code == "idempotency_key_in_use"


_REFUND_STATUS_OF = {
    gw.RefundStatus.PENDING: RefundStatus.PENDING,
    gw.RefundStatus.REQUIRES_ACTION: RefundStatus.PENDING,
    gw.RefundStatus.SUCCEEDED: RefundStatus.SUCCEEDED,
    gw.RefundStatus.FAILED: RefundStatus.FAILED,
    gw.RefundStatus.CANCELED: RefundStatus.FAILED,
}


async def _maybe_refunded(uow: UnitOfWork, order: Order, row: PaymentRefund) -> None:
    if order.status is not OrderStatus.PAID:
        return  # a refund of a late success on a cancelled order: nothing to change
    paid = await payment_repository.succeeded_attempt(uow.session, order.id)
    refunds = await payment_repository.refunds_of(uow.session, order.id)
    refunded = sum(r.amount for r in refunds if r.status is RefundStatus.SUCCEEDED)
    if paid is not None and refunded >= paid.amount:
        restock = any(r.restock for r in refunds if r.status is RefundStatus.SUCCEEDED)
        await order_service.mark_refunded(uow, order, restock=restock)


def _audit_refund(uow: UnitOfWork, row: PaymentRefund, action: str) -> None:
    audit.record(
        uow,
        action=action,
        entity_type="payment_refund",
        entity_id=row.id,
        changes={
            "order_id": str(row.order_id),
            "amount": row.amount,
            "currency": row.currency,
            "status": row.status.value,
        },
    )


async def settle_refund(uow: UnitOfWork, gateway: gw.PaymentGateway, refund_id: UUID) -> None:
    """Ask for a pending refund again (the same key: a refund already made is
    replayed, not made twice), or where it stands, and apply the answer."""
    order_id = await payment_repository.order_of_refund(uow.session, refund_id)
    if order_id is None:
        return
    await _lock_order(uow, order_id)
    row = await payment_repository.lock_refund(uow.session, refund_id)
    if row is None or row.status is not RefundStatus.PENDING:
        return
    gateway_id, key, amount = row.gateway_refund_id, row.key(), row.amount
    attempt = await payment_repository.lock_attempt(uow.session, row.attempt_id)
    assert attempt is not None
    assert attempt.intent_id is not None
    intent_id = attempt.intent_id
    await uow.checkpoint()
    result: gw.Refund | gw.GatewayError
    if gateway_id is not None:
        try:
            result = await gateway.retrieve_refund(gateway_id)
        except gw.GatewayError as exc:
            result = exc
    else:
        result = await _ask_refund(gateway, intent_id, refund_id, amount, key)
    row = await _apply_refund(uow, refund_id, result)
    log.info("refund_settled", refund_id=str(refund_id), status=row.status.value)


# --- the payments of an order ---------------------------------------------------------


async def order_payments(
    reads: PrimaryReads, *, order_id: UUID, viewer: Principal
) -> OrderPayments:
    async with reads.session() as session:
        order = await session.get(Order, order_id)
        if order is None or not order_service.may_see(viewer, order.user_id):
            raise OrderNotFound()
        attempts = await payment_repository.attempts_of(session, order_id)
        refunds = await payment_repository.refunds_of(session, order_id)
    paid = sum(a.amount for a in attempts if a.status is AttemptStatus.SUCCEEDED)
    refunded = sum(r.amount for r in refunds if r.status is RefundStatus.SUCCEEDED)
    return OrderPayments(
        order_id=order_id,
        payments=[PaymentAttemptPublic.from_row(a) for a in attempts],
        refunds=[RefundPublic.from_row(r) for r in refunds],
        paid=Money(amount=paid, currency=order.currency),
        refunded=Money(amount=refunded, currency=order.currency),
    )


# --- webhooks: the inbox ---------------------------------------------------------------


async def receive_webhook(
    uow: UnitOfWork, gateway: gw.PaymentGateway, *, body: bytes, signature: str | None
) -> None:
    """Verify a webhook on its raw body and record it once by event id, with the
    outbox event that applies it; the gateway gets its 2xx at once."""
    try:
        event = gateway.parse_webhook(body, signature)
    except gw.InvalidSignature as exc:
        log.warning("payment_webhook_refused", reason=exc.reason)
        raise InvalidWebhookSignature() from exc
    except gw.MalformedEvent as exc:
        # Signed by the gateway but unreadable: refusing it would only have it sent
        # again for days. Logged for an operator; nothing to apply.
        log.error("payment_webhook_unreadable", error=str(exc))
        return
    if event.type not in EVENT_TYPES:
        # Not one orderdesk acts on (an endpoint subscribed to more, such as the
        # sandbox's "*"): acknowledged, not recorded, nothing to apply.
        return
    inbox_id = await payment_repository.insert_event(
        uow.session,
        event_id=event.id,
        type=event.type,
        payload=_EVENTS.dump_python(event, mode="json"),
        now=uow.now(),
    )
    if inbox_id is not None:
        outbox.emit(uow, GatewayEventReceived(inbox_id=inbox_id))


class RetryLater(RuntimeError):
    """Not now: an event names an attempt or refund whose row is not committed yet
    (its webhook beat the request that made it), the gateway could not be asked, or
    an attempt is still being created. The outbox retries it; nothing is dropped."""


async def apply_gateway_event(uow: UnitOfWork, gateway: gw.PaymentGateway, inbox_id: UUID) -> str:
    """Apply one inbox event; its row is marked handled in the transaction of its
    effect. Returns what became of it (for the log)."""
    record = await payment_repository.lock_event(uow.session, inbox_id)
    if record is None or record.handled_at is not None:
        return "already_handled"
    event = _EVENTS.validate_python(record.payload)
    outcome = await _apply_event(uow, gateway, event)
    # Applying may have committed a step (to ask the gateway): take the row again.
    record = await payment_repository.lock_event(uow.session, inbox_id)
    assert record is not None
    if record.handled_at is None:
        record.handled_at = uow.now()
        record.outcome = outcome
        await uow.flush()
    return outcome


async def _apply_event(uow: UnitOfWork, gateway: gw.PaymentGateway, event: gw.GatewayEvent) -> str:
    if event.intent is not None:
        return await _apply_intent_event(uow, gateway, event.intent)
    if event.refund is not None:
        return await _apply_refund_event(uow, event.refund)
    return "ignored"


async def _apply_intent_event(
    uow: UnitOfWork, gateway: gw.PaymentGateway, snapshot: gw.Intent
) -> str:
    attempt_ref = snapshot.metadata.get("orderdesk_attempt_id")
    if attempt_ref is None:
        return "foreign"
    attempt_id = UUID(attempt_ref)
    found = await payment_repository.order_and_confirmations(uow.session, attempt_id)
    if found is None:
        raise RetryLater(f"attempt {attempt_id} is not recorded yet")
    order_id, seen = found
    result: _Result = _Settled(snapshot)
    if snapshot.status not in _FINAL_AT_GATEWAY:
        # A snapshot that is not final may be older than what is known already
        # (events are not ordered): ask for the state now, outside any transaction.
        await uow.checkpoint()
        result = await _retrieve(gateway, snapshot.id)
        if not isinstance(result, _Settled):
            raise RetryLater(f"intent {snapshot.id} could not be retrieved")
    _, attempt, _ = await _apply_result(
        uow, gateway, order_id, attempt_id, result, seen_confirmations=seen
    )
    return f"attempt_{attempt.status.value}"


_FINAL_AT_GATEWAY = frozenset({gw.IntentStatus.SUCCEEDED, gw.IntentStatus.CANCELED})


async def _apply_refund_event(uow: UnitOfWork, refund: gw.Refund) -> str:
    ours = refund.metadata.get("orderdesk_refund_id")
    refund_id = (
        UUID(ours)
        if ours is not None
        else await payment_repository.refund_id_by_gateway_id(uow.session, refund.id)
    )
    if refund_id is None:
        return "foreign"
    if await payment_repository.order_of_refund(uow.session, refund_id) is None:
        raise RetryLater(f"refund {refund_id} is not recorded yet")
    row = await _apply_refund(uow, refund_id, refund)
    return f"refund_{row.status.value}"


# --- cancelling and reconciling ---------------------------------------------------------


async def settle_attempt(
    uow: UnitOfWork, gateway: gw.PaymentGateway, attempt_id: UUID, *, cancel: bool = False
) -> AttemptStatus | None:
    """Ask the gateway where an attempt stands and apply it; with `cancel`, cancel
    its intent first if it is still open (its order was cancelled or expired).
    Never confirms: reconciliation cannot charge."""
    order_id = await payment_repository.order_of_attempt(uow.session, attempt_id)
    if order_id is None:
        return None
    await _lock_order(uow, order_id)
    attempt = await payment_repository.lock_attempt(uow.session, attempt_id)
    assert attempt is not None
    if attempt.status in TERMINAL:
        return attempt.status
    ref = _AttemptRef.of(attempt)
    if ref.intent_id is None:
        sent = attempt.confirm_sent_at or attempt.created_at
        if uow.now() - sent < _in_flight(gateway):
            # Its create may still be running: the pay that sent it will record
            # the intent (and, if this was a cancel, not confirm it). Ask again later.
            if cancel:
                raise RetryLater(f"attempt {attempt_id} is still being created")
            return attempt.status
        # No intent id was ever recorded, so it was never confirmed: no money moved.
        attempt.status = AttemptStatus.CANCELED if cancel else AttemptStatus.FAILED
        attempt.last_error = "no intent was recorded"
        await uow.flush()
        return attempt.status
    await uow.checkpoint()
    result: _Result
    if cancel:
        try:
            result = _Settled(
                await gateway.cancel_intent(ref.intent_id, idempotency_key=ref.key("cancel"))
            )
        except gw.GatewayRejected as rejected:  # not cancellable: it says why
            result = (
                _Settled(rejected.intent)
                if rejected.intent is not None
                else await _retrieve(gateway, ref.intent_id)
            )
        except gw.GatewayError:
            result = await _retrieve(gateway, ref.intent_id)
    else:
        result = await _retrieve(gateway, ref.intent_id)
    if not isinstance(result, _Settled):
        raise RuntimeError(f"intent {ref.intent_id} could not be retrieved: {result}")
    _, attempt, _ = await _apply_result(
        uow, gateway, order_id, attempt_id, result, seen_confirmations=ref.confirmations
    )
    log.info("payment_settled", attempt_id=str(attempt_id), status=attempt.status.value)
    return attempt.status


async def cancel_order_payment(
    uow: UnitOfWork, gateway: gw.PaymentGateway, order_id: UUID
) -> AttemptStatus | None:
    """The order was cancelled: cancel its live attempt's intent, if it has one that
    is still open (a success found instead is refunded, see `_apply_intent`)."""
    attempt_id = await payment_repository.live_attempt_id(uow.session, order_id)
    if attempt_id is None:
        return None
    return await settle_attempt(uow, gateway, attempt_id, cancel=True)


async def queue_reconciliation(uow: UnitOfWork, *, older_than: timedelta, limit: int = 500) -> int:
    """The periodic reconciliation: queue a settle for every attempt and refund left
    unsettled longer than `older_than` (each through the outbox, so the gateway is
    asked outside this transaction and retried on failure); returns how many."""
    before = uow.now() - older_than
    attempts = await stale_attempt_ids(uow, before=before, limit=limit)
    refunds = await payment_repository.stale_refunds(uow.session, before=before, limit=limit)
    for attempt_id in attempts:
        outbox.emit(uow, PaymentSettleRequested(attempt_id=attempt_id))
    for refund_id in refunds:
        outbox.emit(uow, RefundRequested(refund_id=refund_id))
    # Not queued again until they have been unsettled for `older_than` once more.
    await payment_repository.touch_attempts(uow.session, attempts, uow.now())
    await payment_repository.touch_refunds(uow.session, refunds, uow.now())
    return len(attempts) + len(refunds)


async def stale_attempt_ids(uow: UnitOfWork, *, before: datetime, limit: int) -> Sequence[UUID]:
    return await payment_repository.stale_attempts(
        uow.session, statuses=sorted(UNSETTLED), before=before, limit=limit
    )


async def stale_refund_ids(uow: UnitOfWork, *, before: datetime, limit: int) -> Sequence[UUID]:
    return await payment_repository.stale_refunds(uow.session, before=before, limit=limit)
