"""The adapter against Stripe itself, in test mode: only when
`ORDERDESK_STRIPE_API_KEY` holds an `sk_test_` key in the environment (never in CI,
which sends nothing off loopback)."""

from __future__ import annotations

import os
import uuid

import pytest

from orderdesk.core.settings import Settings
from orderdesk.payments import gateway as gw
from orderdesk.payments.stripe_gateway import StripeConfig, StripeGateway

KEY = os.environ.get("ORDERDESK_STRIPE_API_KEY", "")
pytestmark = pytest.mark.skipif(
    not KEY.startswith("sk_test_"), reason="set ORDERDESK_STRIPE_API_KEY=sk_test_… to run"
)


@pytest.fixture
async def stripe_gateway() -> StripeGateway:
    settings = Settings(_env_file=None, stripe_api_key=KEY)
    return StripeGateway(StripeConfig.from_settings(settings))


async def test_pay_decline_and_refund_in_stripe_test_mode(stripe_gateway: StripeGateway) -> None:
    run = uuid.uuid4().hex
    try:
        intent = await stripe_gateway.create_intent(
            amount=1299, currency="eur", metadata={"test_run": run}, idempotency_key=f"{run}:create"
        )
        assert intent.status is gw.IntentStatus.REQUIRES_PAYMENT_METHOD
        with pytest.raises(gw.PaymentDeclined) as declined:
            await stripe_gateway.confirm_intent(
                intent.id, payment_method="pm_card_visa_chargeDeclined", idempotency_key=f"{run}:c1"
            )
        assert declined.value.decline.code == "card_declined"

        paid = await stripe_gateway.confirm_intent(
            intent.id, payment_method="pm_card_visa", idempotency_key=f"{run}:c2"
        )
        assert paid.status is gw.IntentStatus.SUCCEEDED
        again = await stripe_gateway.confirm_intent(
            intent.id, payment_method="pm_card_visa", idempotency_key=f"{run}:c2"
        )
        assert again.status is gw.IntentStatus.SUCCEEDED  # the same key: replayed

        refund = await stripe_gateway.create_refund(
            payment_intent=intent.id, amount=300, metadata={}, idempotency_key=f"{run}:r1"
        )
        assert refund.amount == 300
        assert (await stripe_gateway.retrieve_intent(intent.id)).status is gw.IntentStatus.SUCCEEDED
    finally:
        await stripe_gateway.close()
