"""Paying through the sandbox gateway as a separate process, through the Stripe SDK
on the wire: nothing charged twice however the pay is repeated or raced, and the
webhook settles what the synchronous answer could not."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.payments.conftest import (
    API,
    PaymentStack,
    charges_of,
    new_order,
    pay,
    wait_for_status,
)


def test_a_good_card_pays_with_one_charge(stack: PaymentStack) -> None:
    with stack.client() as http:
        order = new_order(stack, http)

        response = pay(http, order)

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "paid"
        [charge] = charges_of(stack, order.id)
        assert (charge["amount"], charge["currency"]) == (1299, "eur")


def test_a_decline_leaves_the_order_payable_with_another_card(stack: PaymentStack) -> None:
    with stack.client() as http:
        order = new_order(stack, http)

        declined = pay(http, order, "pm_card_visa_chargeDeclined")
        assert declined.status_code == 402, declined.text
        assert declined.json()["code"] == "payment_declined"
        assert (
            http.get(f"{API}/orders/{order.id}", headers=order.customer).json()["status"]
            == "pending_payment"
        )

        assert pay(http, order).status_code == 200
        assert len(charges_of(stack, order.id)) == 1


def test_three_d_secure_is_settled_by_the_gateways_webhook(stack: PaymentStack) -> None:
    with stack.client() as http:
        order = new_order(stack, http)

        pending = pay(http, order, "pm_card_threeDSecure2Required")
        assert pending.status_code == 202, pending.text
        intent_id = pending.json()["client_secret"].split("_secret_")[0]
        stack.sandbox.authenticate(intent_id)

        # No request of ours settles it: the sandbox's payment_intent.succeeded does.
        assert wait_for_status(http, order, "paid")["status"] == "paid"
        assert len(charges_of(stack, order.id)) == 1


@pytest.mark.parametrize("keys", [1, 50], ids=["one-key", "fifty-keys"])
def test_fifty_concurrent_pays_of_one_order_charge_it_once(stack: PaymentStack, keys: int) -> None:
    with stack.client() as http:
        order = new_order(stack, http)

        def attempt(n: int) -> int:
            with stack.client() as own:
                return pay(own, order, key=f"{order.id}-{n % keys}").status_code

        with ThreadPoolExecutor(max_workers=25) as pool:
            codes = list(pool.map(attempt, range(50)))

        assert 200 in codes
        assert set(codes) <= {200, 409}, codes
        assert len(charges_of(stack, order.id)) == 1
        assert wait_for_status(http, order, "paid")["status"] == "paid"
