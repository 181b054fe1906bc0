"""Webhook signatures: what `signatures.verify` accepts and refuses, and that it
agrees with the stripe SDK's own signer and verifier on the cases they share."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from orderdesk.payments.gateway import InvalidSignature
from orderdesk.payments.signatures import sign, signature, verify

SECRET = "whsec_test_0123456789abcdef"
OLD_SECRET = "whsec_test_retired_fedcba98"
NOW = 1_760_000_000
BODY = json.dumps(
    {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "created": NOW}
).encode()


def refusal(body: bytes, header: str | None, secrets: list[str], now: float = NOW) -> str:
    with pytest.raises(InvalidSignature) as caught:
        verify(body, header, secrets, now=now)
    return caught.value.reason


def test_a_correct_signature_is_accepted_and_its_timestamp_returned() -> None:
    assert verify(BODY, sign(BODY, SECRET, NOW), [SECRET], now=NOW) == NOW


def test_during_rotation_either_secret_verifies_either_signature() -> None:
    header = sign(BODY, [OLD_SECRET, SECRET], NOW)

    assert verify(BODY, header, [SECRET], now=NOW) == NOW
    assert verify(BODY, header, [OLD_SECRET], now=NOW) == NOW
    assert verify(BODY, sign(BODY, OLD_SECRET, NOW), ["whsec_new", OLD_SECRET], now=NOW) == NOW


def test_a_signature_by_another_secret_is_refused() -> None:
    reason = refusal(BODY, sign(BODY, "whsec_someone_else", NOW), [SECRET])

    assert "no v1 signature matches" in reason


def test_an_edited_body_is_refused() -> None:
    header = sign(BODY, SECRET, NOW)

    reason = refusal(BODY.replace(b"succeeded", b"canceled"), header, [SECRET])

    assert "no v1 signature matches" in reason


def test_re_serialised_json_is_refused() -> None:
    header = sign(BODY, SECRET, NOW)
    reserialised = json.dumps(json.loads(BODY), indent=2).encode()

    assert "no v1 signature matches" in refusal(reserialised, header, [SECRET])


@pytest.mark.parametrize(
    ("signed_at", "expected"),
    [
        pytest.param(NOW - 301, "s old", id="301-s-old"),
        pytest.param(NOW + 301, "in the future", id="301-s-ahead"),
        pytest.param(NOW + 3600, "in the future", id="an-hour-ahead"),
    ],
)
def test_a_timestamp_outside_five_minutes_either_way_is_refused(
    signed_at: int, expected: str
) -> None:
    assert expected in refusal(BODY, sign(BODY, SECRET, signed_at), [SECRET])


@pytest.mark.parametrize("signed_at", [NOW - 300, NOW + 300])
def test_a_timestamp_at_the_edge_of_the_tolerance_is_accepted(signed_at: int) -> None:
    assert verify(BODY, sign(BODY, SECRET, signed_at), [SECRET], now=NOW) == signed_at


def test_only_a_v0_signature_is_refused() -> None:
    header = f"t={NOW},v0={signature(BODY, SECRET, NOW)}"

    assert "no v1 signature" in refusal(BODY, header, [SECRET])


def test_elements_in_any_order_with_unknown_ones_are_accepted() -> None:
    good = signature(BODY, SECRET, NOW)
    header = f"v0=abc, v1={'0' * 64},scheme2=x, v1={good} ,t={NOW},junk"

    assert verify(BODY, header, [SECRET], now=NOW) == NOW


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, "missing", id="no-header"),
        pytest.param("", "missing", id="empty"),
        pytest.param("garbage", "no single valid timestamp", id="garbage"),
        pytest.param("t=soon,v1=abc", "no single valid timestamp", id="non-numeric-t"),
        pytest.param(f"t={NOW},t={NOW},v1=abc", "no single valid timestamp", id="two-t"),
        pytest.param(f"t={NOW}", "no v1 signature", id="no-v1"),
    ],
)
def test_a_missing_or_malformed_header_is_refused(header: str | None, expected: str) -> None:
    assert expected in refusal(BODY, header, [SECRET])


def test_no_configured_secret_refuses_everything() -> None:
    assert "no webhook secret" in refusal(BODY, sign(BODY, SECRET, NOW), [])


def test_the_whsec_prefix_is_part_of_the_key() -> None:
    without_prefix = SECRET.removeprefix("whsec_")

    assert "no v1 signature matches" in refusal(BODY, sign(BODY, without_prefix, NOW), [SECRET])


# --- agreement with the SDK ----------------------------------------------------------------


def test_our_signature_header_matches_the_sdks() -> None:
    sdk_header = stripe.WebhookSignature.generate_signature_header(
        BODY.decode(), SECRET, timestamp=NOW
    )

    assert sign(BODY, SECRET, NOW) == sdk_header


def test_a_header_from_the_sdks_signer_verifies_here() -> None:
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET, timestamp=now)

    assert verify(BODY, header, [SECRET], now=now) == now


def test_the_sdks_verifier_accepts_what_we_sign() -> None:
    now = int(time.time())

    event = stripe.Webhook.construct_event(BODY, sign(BODY, SECRET, now), SECRET)

    assert event.id == "evt_1"


def test_the_sdk_and_we_both_refuse_an_edited_body() -> None:
    now = int(time.time())
    header = sign(BODY, SECRET, now)
    edited = BODY.replace(b"evt_1", b"evt_2")

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(edited, header, SECRET)
    assert "no v1 signature matches" in refusal(edited, header, [SECRET], now=now)


def test_a_future_timestamp_the_sdk_accepts_is_refused_here() -> None:
    now = int(time.time())
    header = sign(BODY, SECRET, now + 3600)

    assert stripe.Webhook.construct_event(BODY, header, SECRET).id == "evt_1"
    assert "in the future" in refusal(BODY, header, [SECRET], now=now)
