"""Order e-mails received by the loopback SMTP server, tallied per order and per
Message-ID: what "exactly once" means."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.message import EmailMessage

from tests.servers import Inbox, message_id_of, order_id_of


@dataclass
class Tally:
    """Order e-mails grouped by order and by Message-ID: what "exactly once" means."""

    orders: dict[str, str]  # order id -> the customer's address
    by_order: dict[str, list[EmailMessage]] = field(default_factory=lambda: defaultdict(list))
    by_message_id: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, messages: list[EmailMessage], orders: dict[str, str]) -> Tally:
        tally = cls(orders=dict(orders))
        for message in messages:
            order_id = order_id_of(message)
            if order_id in tally.orders:
                tally.by_order[order_id].append(message)
                tally.by_message_id[message_id_of(message)] += 1
        return tally

    @property
    def raw(self) -> int:
        return sum(len(messages) for messages in self.by_order.values())

    @property
    def duplicates(self) -> int:
        """Deliveries beyond the first, per order."""
        return sum(len(messages) - 1 for messages in self.by_order.values() if messages)

    @property
    def lost(self) -> set[str]:
        return {order_id for order_id in self.orders if not self.by_order.get(order_id)}

    def message_ids_per_order(self) -> dict[str, set[str]]:
        return {
            order_id: {message_id_of(m) for m in messages}
            for order_id, messages in self.by_order.items()
        }

    def misaddressed(self) -> list[str]:
        return [
            order_id
            for order_id, messages in self.by_order.items()
            if any(str(m["To"]).strip() != self.orders[order_id] for m in messages)
        ]

    def wrong_subjects(self) -> list[str]:
        return [
            order_id
            for order_id, messages in self.by_order.items()
            if any(order_id[-8:] not in str(m["Subject"]) for m in messages)
        ]


def wait_for_mail(
    inbox: Inbox, orders: dict[str, str], *, kind: str = "order_placed", timeout: float = 90.0
) -> Tally:
    """Poll until every order has its e-mail or `timeout` runs out; the tally."""
    deadline = time.monotonic() + timeout
    while True:
        tally = Tally.of(inbox.messages(kind), orders)
        if not tally.lost or time.monotonic() > deadline:
            return tally
        time.sleep(0.2)
