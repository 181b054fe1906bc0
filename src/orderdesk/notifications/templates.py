"""Message templates: Jinja2, plain text and HTML for each kind of message."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

SUBJECTS = {
    "order_placed": "Your order {short_id} is placed",
    "order_paid": "Payment received for order {short_id}",
    "order_cancelled": "Your order {short_id} is cancelled",
    "order_fulfilled": "Your order {short_id} is on its way",
    "order_refunded": "Your order {short_id} is refunded",
    "verify_email": "Confirm your email address",
    "reset_password": "Reset your password",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("orderdesk.notifications", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(kind: str, **context: Any) -> Rendered:
    env = _environment()
    subject = SUBJECTS[kind].format(**context)
    return Rendered(
        subject=subject,
        text=env.get_template(f"{kind}.txt").render(subject=subject, **context),
        html=env.get_template(f"{kind}.html").render(subject=subject, **context),
    )


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency}"
