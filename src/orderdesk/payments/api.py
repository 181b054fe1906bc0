from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, status

from orderdesk.auth.dependencies import CurrentUser, require
from orderdesk.auth.permissions import Permission, Principal
from orderdesk.container import ContainerDep
from orderdesk.core.deps import PrimaryReadsDep, UnitOfWorkDep
from orderdesk.core.openapi import problems
from orderdesk.core.text import SingleLineText
from orderdesk.idempotency.http import idempotent
from orderdesk.orders.errors import OrderNotFound
from orderdesk.orders.schemas import OrderPublic
from orderdesk.payments import service as payment_service
from orderdesk.payments.errors import (
    InvalidPaymentMethod,
    InvalidWebhookSignature,
    OrderNotPayable,
    OrderNotRefundable,
    PaymentDeclined,
    PaymentGatewayUnavailable,
    PaymentInProgress,
    RefundCurrencyMismatch,
    RefundExceedsRemaining,
    RestockNeedsFullRefund,
)
from orderdesk.payments.schemas import (
    OrderPayments,
    PaymentCreate,
    PaymentPending,
    RefundCreate,
    RefundPublic,
)

router = APIRouter(prefix="/orders", tags=["payments"])
webhook_router = APIRouter(prefix="/payments", tags=["payments"])
Refunder = Annotated[Principal, Depends(require(Permission.ORDERS_MANAGE))]


@router.post(
    "/{order_id}/pay",
    response_model=OrderPublic,
    responses={status.HTTP_202_ACCEPTED: {"model": PaymentPending}},
)
@problems(
    OrderNotFound,
    OrderNotPayable,
    PaymentInProgress,
    PaymentDeclined,
    InvalidPaymentMethod,
    PaymentGatewayUnavailable,
)
@idempotent
async def pay_order(
    order_id: UUID, data: PaymentCreate, payer: CurrentUser, uow: UnitOfWorkDep, c: ContainerDep
) -> OrderPublic | PaymentPending:
    """Pay your order. 200 with the order `paid`; 202 while the payment needs the
    customer's authentication (3-D Secure: `client_secret`) or its outcome is being
    settled; 402 `payment_declined` leaves the order payable with another card.
    Needs an `Idempotency-Key`; the gateway is never asked to charge twice."""
    return await payment_service.pay(uow, c.payments, order_id=order_id, payer=payer, data=data)


@router.post("/{order_id}/refund", response_model=RefundPublic)
@problems(
    OrderNotFound,
    OrderNotRefundable,
    RefundExceedsRemaining,
    RefundCurrencyMismatch,
    RestockNeedsFullRefund,
)
@idempotent
async def refund_order(
    order_id: UUID, data: RefundCreate, _: Refunder, uow: UnitOfWorkDep, c: ContainerDep
) -> RefundPublic:
    """Refund part (`amount`) or all (`amount: null`) of what remains of the order's
    payment; the order becomes `refunded` when nothing remains. Staff only; needs an
    `Idempotency-Key`."""
    return await payment_service.refund(uow, c.payments, order_id=order_id, data=data)


@router.get("/{order_id}/payments")
@problems(OrderNotFound)
async def list_order_payments(
    order_id: UUID, viewer: CurrentUser, reads: PrimaryReadsDep
) -> OrderPayments:
    """The order's payment attempts and refunds, with their states."""
    return await payment_service.order_payments(reads, order_id=order_id, viewer=viewer)


@webhook_router.post("/webhook", status_code=status.HTTP_204_NO_CONTENT)
@problems(InvalidWebhookSignature)
async def receive_payment_webhook(
    request: Request,
    uow: UnitOfWorkDep,
    c: ContainerDep,
    stripe_signature: Annotated[SingleLineText | None, Header(max_length=4096)] = None,
) -> None:
    """The payment gateway's webhook (Stripe's format and signature): verified on
    the raw body, recorded once per event id, applied in the background."""
    await payment_service.receive_webhook(
        uow, c.payments, body=await request.body(), signature=stripe_signature
    )
