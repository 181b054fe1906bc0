"""Schemathesis extensions for the contract suite (loaded through `schemathesis.toml`).

Two things the stock checks cannot know:

- Some 422s answer requests that are valid JSON Schema but break a rule no schema can
  state: a password too easy to guess, a cursor or one-time token this server never
  issued, a product id that does not exist, a webhook URL that resolves to a private
  address. Each such rule has its own problem `code`, listed in docs/api.md under
  "Rules the schema cannot express". `positive_data_acceptance` is replaced by a
  variant that accepts a 422 carrying one of those codes, and only those: a
  `validation_failed` on schema-valid input still fails the run. Payments add
  two of another status: a webhook whose signature does not verify (400) and a
  card the gateway declines (402).
- `DELETE /users/me` ends the caller's account. It runs with a throwaway customer
  made for each case, so the rest of the run keeps its account.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import httpx
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

# Problem codes for rules the document cannot express (docs/api.md lists them).
SEMANTIC_CODES = frozenset(
    {
        "invalid_cursor",
        "invalid_token",
        "weak_password",
        "wrong_current_password",
        "current_password_required",
        "unknown_products",
        "mixed_currencies",
        "duplicate_product",
        "order_total_too_large",
        "unsafe_webhook_target",
        "import_rejected",
        "import_empty",
        "idempotency_key_reused",
        "invalid_payment_method",
        "refund_currency_mismatch",
        "restock_needs_full_refund",
        # 400: a webhook whose signature (a MAC over the body) does not verify.
        "invalid_webhook_signature",
        # 402: a schema-valid card the gateway declines.
        "payment_declined",
    }
)
# The statuses such a refusal may have: 422 for the rules above, 400 for a webhook
# signature, 402 for a decline.
SEMANTIC_STATUSES = frozenset({400, 402, 422})
# Validation error types for such rules, inside a `validation_failed` problem.
SEMANTIC_ERROR_TYPES = frozenset({"email_reserved_domain"})
SELF_DESTRUCTIVE = frozenset({"deleteMe"})


@schemathesis.check
def positive_data_acceptance_beyond_schema(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        return positive_data_acceptance(ctx, response, case)
    except AssertionError:
        if response.status_code in SEMANTIC_STATUSES and _breaks_only_semantic_rules(response):
            return None
        raise


def _breaks_only_semantic_rules(response: Any) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if body.get("code") in SEMANTIC_CODES:
        return True
    types = {error.get("type") for error in body.get("errors") or []}
    return body.get("code") == "validation_failed" and bool(types) and types <= SEMANTIC_ERROR_TYPES


@schemathesis.auth(refresh_interval=None)
class ContractAuth:
    """The run's token (`ORDERDESK_CONTRACT_TOKEN`), or a fresh customer's for the
    operations that end the caller's account."""

    def get(self, case: Any, context: Any) -> str:
        if case.operation.definition.raw.get("operationId") in SELF_DESTRUCTIVE:
            return _throwaway_customer_token(os.environ["ORDERDESK_CONTRACT_BASE_URL"])
        return os.environ["ORDERDESK_CONTRACT_TOKEN"]

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _throwaway_customer_token(base_url: str) -> str:
    email = f"contract-{secrets.token_hex(8)}@example.com"
    password = secrets.token_urlsafe(18)
    api = f"{base_url}/api/v1"
    registered = httpx.post(
        f"{api}/auth/register",
        json={"email": email, "password": password, "full_name": "Contract Customer"},
        timeout=30,
    )
    registered.raise_for_status()
    token = httpx.post(
        f"{api}/auth/token", data={"username": email, "password": password}, timeout=30
    )
    token.raise_for_status()
    return str(token.json()["access_token"])
