from __future__ import annotations

from http import HTTPStatus
from typing import Any

from orderdesk.core.errors import Conflict, DomainError, InvalidInput, ServiceUnavailable

# The refusals below marked `commit_changes` are raised after the payment's attempt
# row was committed and the gateway asked: what the gateway answered is recorded
# (the attempt is payable again, or ended) before the refusal is sent.


class PaymentDeclined(DomainError):
    """The card was declined; the order is still unpaid and may be paid again."""

    status = HTTPStatus.PAYMENT_REQUIRED
    code = "payment_declined"
    title = "The payment was declined"
    commit_changes = True

    def __init__(self, *, decline_code: str | None, reason: str) -> None:
        super().__init__(reason)
        self.decline_code = decline_code

    def extra(self) -> dict[str, Any]:
        return {"decline_code": self.decline_code}


class PaymentGatewayUnavailable(ServiceUnavailable):
    code = "payment_gateway_unavailable"
    title = "The payment gateway is unavailable; nothing was charged"
    commit_changes = True

    def __init__(self, *, retry_after: float) -> None:
        seconds = max(1, round(retry_after))
        super().__init__(headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class OrderNotPayable(Conflict):
    code = "order_not_payable"
    title = "The order cannot be paid in its current state"


class PaymentEnded(OrderNotPayable):
    """The gateway ended the payment (cancelled, or not acceptable), or it
    succeeded after the order was cancelled and is being refunded."""

    commit_changes = True


class PaymentInProgress(Conflict):
    code = "payment_in_progress"
    title = "A payment of this order is already in progress; retry shortly"


class InvalidPaymentMethod(InvalidInput):
    code = "invalid_payment_method"
    title = "The gateway does not know this payment method"
    commit_changes = True

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field=["payment_method"])


class OrderNotRefundable(Conflict):
    code = "order_not_refundable"
    title = "The order has no settled payment to refund"


class RefundExceedsRemaining(Conflict):
    code = "refund_exceeds_remaining"
    title = "The refund is more than what remains of the payment"

    def __init__(self, *, remaining: int, currency: str) -> None:
        super().__init__(f"At most {remaining} ({currency}, minor units) can still be refunded.")
        self.remaining = remaining
        self.currency = currency

    def extra(self) -> dict[str, Any]:
        return {"remaining": {"amount": self.remaining, "currency": self.currency}}


class RefundCurrencyMismatch(InvalidInput):
    code = "refund_currency_mismatch"
    title = "A refund is in the currency of the payment"

    def __init__(self, currency: str) -> None:
        super().__init__(f"The payment was in {currency}.", field=["amount", "currency"])


class RestockNeedsFullRefund(InvalidInput):
    code = "restock_needs_full_refund"
    title = "Stock is returned only with the refund that refunds the order in full"

    def __init__(self) -> None:
        super().__init__(self.title, field=["restock"])


class InvalidWebhookSignature(DomainError):
    status = HTTPStatus.BAD_REQUEST
    code = "invalid_webhook_signature"
    title = "The webhook's signature does not verify"
