"""The sandbox's webhook signatures are the ones the stripe SDK verifies: the whole
whsec_ string as the HMAC key, over "{t}.{raw body}"."""

from __future__ import annotations

import time

import pytest
import stripe

from orderdesk.sandbox.webhooks import signature, signature_header

SECRET = "whsec_" + "ab" * 16
BODY = b'{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":{}}}'


def test_the_header_passes_the_sdks_verification() -> None:
    header = signature_header(BODY, SECRET, int(time.time()))
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, SECRET, tolerance=300)


def test_the_signature_equals_the_sdks_own() -> None:
    now = int(time.time())
    expected = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET, now)
    assert signature_header(BODY, SECRET, now) == expected


def test_construct_event_accepts_it() -> None:
    event = stripe.Webhook.construct_event(
        BODY, signature_header(BODY, SECRET, int(time.time())), SECRET
    )
    assert event.type == "payment_intent.succeeded"


def test_a_signature_with_the_prefix_stripped_is_not_the_same() -> None:
    now = int(time.time())
    assert signature(BODY, SECRET, now) != signature(BODY, SECRET.removeprefix("whsec_"), now)


def test_another_secret_is_rejected() -> None:
    header = signature_header(BODY, SECRET + "_forged", int(time.time()))
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY.decode(), header, SECRET, tolerance=300)
