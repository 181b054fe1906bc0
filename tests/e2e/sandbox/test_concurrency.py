"""Fifty concurrent confirms of one intent, through the async SDK: exactly one charge,
whether they share one idempotency key or each has its own."""

from __future__ import annotations

import asyncio

import stripe

from tests.e2e.sandbox.conftest import SANDBOX_MARKS
from tests.sandbox_process import SandboxProcess

pytestmark = SANDBOX_MARKS
CONCURRENT = 50


async def _confirm_all(sandbox: SandboxProcess, *, shared_key: bool) -> tuple[str, list[object]]:
    client = sandbox.stripe_client(max_network_retries=0, allow_sync_methods=False)
    http = sandbox.sdk_http[-1]
    try:
        intent = await client.v1.payment_intents.create_async(
            params={
                "amount": 1000,
                "currency": "eur",
                "payment_method": "pm_card_visa",
                "allowed_payment_method_types": ["card"],
            }
        )
        # Latency makes every confirm wait inside the server at once.
        sandbox.set_faults(
            [{"path": "/v1/payment_intents/*/confirm", "fault": "latency", "latency_ms": 200}]
        )
        results = await asyncio.gather(
            *(
                client.v1.payment_intents.confirm_async(
                    intent.id,
                    options={"idempotency_key": "same" if shared_key else f"key-{n}"},
                )
                for n in range(CONCURRENT)
            ),
            return_exceptions=True,
        )
        return intent.id, results
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


async def test_fifty_confirms_with_one_key_charge_once(sandbox_gateway: SandboxProcess) -> None:
    intent_id, results = await _confirm_all(sandbox_gateway, shared_key=True)
    succeeded = [r for r in results if isinstance(r, stripe.PaymentIntent)]
    assert all(r.status == "succeeded" for r in succeeded)
    others = [r for r in results if not isinstance(r, stripe.PaymentIntent)]
    assert all(isinstance(r, stripe.APIError) and r.http_status == 409 for r in others)
    assert succeeded
    charges = sandbox_gateway.ledger()["charges"]
    assert [c["payment_intent"] for c in charges] == [intent_id]


async def test_fifty_confirms_with_fifty_keys_charge_once(sandbox_gateway: SandboxProcess) -> None:
    intent_id, results = await _confirm_all(sandbox_gateway, shared_key=False)
    succeeded = [r for r in results if isinstance(r, stripe.PaymentIntent)]
    refused = [r for r in results if isinstance(r, stripe.InvalidRequestError)]
    assert len(succeeded) == 1
    assert len(refused) == CONCURRENT - 1
    assert {r.code for r in refused} == {"payment_intent_unexpected_state"}
    charges = sandbox_gateway.ledger()["charges"]
    assert [c["payment_intent"] for c in charges] == [intent_id]
