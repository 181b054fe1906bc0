"""The test payment methods Stripe's test mode knows by id, and what each does.

Only ids are accepted (`pm_card_visa`, …), as Stripe recommends for test code; an
unknown id is a 404 `resource_missing` on `payment_method`, like Stripe's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decline:
    code: str
    decline_code: str
    message: str


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    brand: str
    last4: str
    decline: Decline | None = None
    requires_action: bool = False
    refund_fails: bool = False


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")

CARDS: dict[str, CardBehaviour] = {
    "pm_card_visa": CardBehaviour("visa", "4242"),
    "pm_card_visa_debit": CardBehaviour("visa", "5556"),
    "pm_card_mastercard": CardBehaviour("mastercard", "4444"),
    "pm_card_amex": CardBehaviour("amex", "8431"),
    "pm_card_visa_chargeDeclined": CardBehaviour("visa", "0002", decline=_GENERIC),
    "pm_card_chargeCustomerFail": CardBehaviour("visa", "0341", decline=_GENERIC),
    "pm_card_visa_chargeDeclinedInsufficientFunds": CardBehaviour(
        "visa",
        "9995",
        decline=Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ),
    "pm_card_visa_chargeDeclinedLostCard": CardBehaviour(
        "visa", "9987", decline=Decline("card_declined", "lost_card", "Your card was declined.")
    ),
    "pm_card_visa_chargeDeclinedStolenCard": CardBehaviour(
        "visa", "9979", decline=Decline("card_declined", "stolen_card", "Your card was declined.")
    ),
    "pm_card_chargeDeclinedExpiredCard": CardBehaviour(
        "visa", "0069", decline=Decline("expired_card", "expired_card", "Your card has expired.")
    ),
    "pm_card_chargeDeclinedIncorrectCvc": CardBehaviour(
        "visa",
        "0127",
        decline=Decline(
            "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
        ),
    ),
    "pm_card_chargeDeclinedProcessingError": CardBehaviour(
        "visa",
        "0119",
        decline=Decline(
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
    ),
    "pm_card_authenticationRequired": CardBehaviour("visa", "3184", requires_action=True),
    "pm_card_threeDSecure2Required": CardBehaviour("visa", "3220", requires_action=True),
    "pm_card_refundFail": CardBehaviour("visa", "5100", refund_fails=True),
}
