"""Why an order is refused when its reservation fell short: decided from the catalog
as it is now and from what the reservation did get."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import uuid4

from orderdesk.orders.errors import InsufficientStock, MixedCurrencies, UnknownProducts
from orderdesk.orders.service import _unavailable

MUG, PEN = uuid4(), uuid4()


def product(stock: int, currency: str = "EUR") -> SimpleNamespace:
    return SimpleNamespace(stock=stock, currency=currency)


def test_nothing_stands_in_the_way_when_every_product_was_reserved() -> None:
    assert (
        _unavailable({MUG: 2, PEN: 1}, {MUG: product(2), PEN: product(5)}, reserved={MUG, PEN})
        is None
    )


def test_unknown_products_come_first() -> None:
    refusal = _unavailable({MUG: 2, PEN: 1}, {MUG: product(0, "USD")}, reserved=set())

    assert isinstance(refusal, UnknownProducts)
    assert str(PEN) in refusal.detail


def test_mixed_currencies_come_before_shortages() -> None:
    refusal = _unavailable(
        {MUG: 2, PEN: 1}, {MUG: product(0), PEN: product(5, "USD")}, reserved=set()
    )

    assert isinstance(refusal, MixedCurrencies)


def test_each_short_product_is_listed_with_what_it_has() -> None:
    refusal = _unavailable({MUG: 2, PEN: 1}, {MUG: product(1), PEN: product(0)}, reserved=set())

    assert isinstance(refusal, InsufficientStock)
    assert refusal.shortages == [
        {"product_id": str(MUG), "requested": 2, "available": 1},
        {"product_id": str(PEN), "requested": 1, "available": 0},
    ]


def test_only_the_products_not_reserved_are_short() -> None:
    # The mugs, reserved by this order, show its own decrement; the pens were short.
    refusal = _unavailable({MUG: 2, PEN: 3}, {MUG: product(0), PEN: product(1)}, reserved={MUG})

    assert isinstance(refusal, InsufficientStock)
    assert refusal.shortages == [{"product_id": str(PEN), "requested": 3, "available": 1}]
