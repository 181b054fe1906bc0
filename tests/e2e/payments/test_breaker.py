"""While the gateway fails, new payments fail fast with 503 and `Retry-After`, and
nothing is charged; once the breaker opens, pays are refused without a call out.
(Its own module, so its own server: the open breaker outlives the test.)"""

from __future__ import annotations

from tests.e2e.payments.conftest import PaymentStack, charges_of, new_order, pay


def test_a_failing_gateway_answers_503_with_retry_after_and_charges_nothing(
    stack: PaymentStack,
) -> None:
    stack.sandbox.set_faults([{"fault": "error_before", "method": "POST", "status": 503}])
    try:
        with stack.client() as http:
            order = new_order(stack, http)
            answers = [pay(http, order) for _ in range(7)]
        sent = len(stack.sandbox.requests("/v1/payment_intents"))
        with stack.client() as http:
            more = pay(http, order)
        sent_after = len(stack.sandbox.requests("/v1/payment_intents"))
    finally:
        stack.sandbox.clear_faults()

    assert {a.status_code for a in answers} == {503}
    assert {a.json()["code"] for a in answers} == {"payment_gateway_unavailable"}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers)
    # Five unknown outcomes in a row opened the breaker: this pay sent nothing.
    assert more.status_code == 503
    assert int(more.headers["Retry-After"]) > 1
    assert sent_after == sent
    assert charges_of(stack, order.id) == []
