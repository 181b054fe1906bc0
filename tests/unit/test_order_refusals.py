"""Why an order is refused, decided from the catalog rows it was priced from and, after
a reservation that fell short (a race lost since pricing), from what it did reserve."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import uuid4

from orderdesk.orders.errors import InsufficientStock, MixedCurrencies, UnknownProducts
from orderdesk.orders.service import _unavailable

MUG, PEN = uuid4(), uuid4()


def product(stock: int, currency: str = "EUR") -> SimpleNamespace:
    return SimpleNamespace(stock=stock, currency=currency)


def test_nothing_stands_in_the_way_when_every_product_has_enough() -> None:
    assert _unavailable({MUG: 2, PEN: 1}, {MUG: product(2), PEN: product(5)}) is None


def test_unknown_products_come_first() -> None:
    refusal = _unavailable({MUG: 2, PEN: 1}, {MUG: product(0, "USD")})

    assert isinstance(refusal, UnknownProducts)
    assert str(PEN) in refusal.detail


def test_mixed_currencies_come_before_shortages() -> None:
    refusal = _unavailable({MUG: 2, PEN: 1}, {MUG: product(0), PEN: product(5, "USD")})

    assert isinstance(refusal, MixedCurrencies)


def test_each_short_product_is_listed_with_what_it_has() -> None:
    refusal = _unavailable({MUG: 2, PEN: 1}, {MUG: product(1), PEN: product(0)})

    assert isinstance(refusal, InsufficientStock)
    assert refusal.shortages == [
        {"product_id": str(MUG), "requested": 2, "available": 1},
        {"product_id": str(PEN), "requested": 1, "available": 0},
    ]


def test_after_a_lost_race_the_products_not_reserved_are_the_short_ones() -> None:
    # Priced with enough of both; by the reservation another order had taken the pens,
    # and the mugs, reserved by this order, show its own decrement.
    refusal = _unavailable({MUG: 2, PEN: 3}, {MUG: product(0), PEN: product(1)}, reserved={MUG})

    assert isinstance(refusal, InsufficientStock)
    assert refusal.shortages == [{"product_id": str(PEN), "requested": 3, "available": 1}]
