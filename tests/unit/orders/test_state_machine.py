"""The order state machine, pair by pair: pending_payment → paid → fulfilled,
pending_payment → cancelled, paid → refunded, and nothing else."""

from __future__ import annotations

import itertools

import pytest

from orderdesk.orders.models import HOLDS_STOCK, OrderStatus, can_transition

PENDING = OrderStatus.PENDING_PAYMENT
PAID = OrderStatus.PAID
FULFILLED = OrderStatus.FULFILLED
CANCELLED = OrderStatus.CANCELLED
REFUNDED = OrderStatus.REFUNDED

# Written out independently of orders.models.TRANSITIONS, from the design document.
LEGAL = {
    (PENDING, PAID),
    (PENDING, CANCELLED),
    (PAID, FULFILLED),
    (PAID, REFUNDED),
}
ILLEGAL = sorted(set(itertools.product(OrderStatus, OrderStatus)) - LEGAL)


def _name(pair: tuple[OrderStatus, OrderStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_the_five_states_are_the_designed_ones() -> None:
    assert {status.value for status in OrderStatus} == {
        "pending_payment",
        "paid",
        "fulfilled",
        "cancelled",
        "refunded",
    }


@pytest.mark.parametrize("pair", sorted(LEGAL), ids=_name)
def test_legal_transition_is_allowed(pair: tuple[OrderStatus, OrderStatus]) -> None:
    current, target = pair

    assert can_transition(current, target) is True


@pytest.mark.parametrize("pair", ILLEGAL, ids=_name)
def test_illegal_transition_is_refused(pair: tuple[OrderStatus, OrderStatus]) -> None:
    current, target = pair

    assert can_transition(current, target) is False


@pytest.mark.parametrize("terminal", [FULFILLED, CANCELLED, REFUNDED], ids=str)
def test_terminal_state_has_no_way_out(terminal: OrderStatus) -> None:
    assert not any(can_transition(terminal, target) for target in OrderStatus)


def test_pending_paid_and_fulfilled_orders_hold_stock_cancelled_and_refunded_do_not() -> None:
    assert frozenset({PENDING, PAID, FULFILLED}) == HOLDS_STOCK
