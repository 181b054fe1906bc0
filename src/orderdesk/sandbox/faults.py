"""Fault rules: which requests or events a fault hits, decided reproducibly.

A rule names a fault and what it matches: API faults match a request's method and
path (a glob, `*` spanning `/`), webhook faults an event's type (a glob). Among
the rules that match, they are tried in order: a rule counts the match, then fires
if it is on its `nth` match (when set), wins its coin toss (`probability`, from
its own `random.Random(seed)`, so a seeded rule fires on the same matches every
run) and has firings left (`count`, or 1 with `once`). The first rule that fires
is the fault; the rest are not consulted. `/_sandbox/*` is never faulted, so a
fault can always be switched off again.
"""

from __future__ import annotations

import fnmatch
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ApiFault = Literal[
    "latency", "error_before", "error_after", "hang", "charge_then_timeout", "connection_reset"
]
WebhookFault = Literal[
    "webhook_duplicate",
    "webhook_reorder",
    "webhook_delay",
    "webhook_drop",
    "webhook_bad_signature",
]
API_FAULTS: frozenset[str] = frozenset(ApiFault.__args__)  # type: ignore[attr-defined]
WEBHOOK_FAULTS: frozenset[str] = frozenset(WebhookFault.__args__)  # type: ignore[attr-defined]
CONTROL_PREFIX = "/_sandbox/"


class FaultRule(BaseModel):
    """One rule, as posted to `/_sandbox/faults` or given to `--fault`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: ApiFault | WebhookFault
    path: str = "/v1/*"
    method: str = "*"
    event_type: str = "*"
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    seed: int | None = None
    nth: int | None = Field(default=None, ge=1)
    count: int | None = Field(default=None, ge=1)
    once: bool = False
    latency_ms: int | None = Field(default=None, ge=0)
    status: int = Field(default=500, ge=400, le=599)
    copies: int = Field(default=2, ge=1, le=100)
    should_retry: bool | None = None

    @property
    def limit(self) -> int | None:
        return 1 if self.once else self.count

    @property
    def is_webhook(self) -> bool:
        return self.fault in WEBHOOK_FAULTS


class FaultRuleError(ValueError):
    pass


def parse_rules(data: Any) -> tuple[FaultRule, ...]:
    """Rules from `{"rules": [...]}`, a list of rules or one rule."""
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise FaultRuleError('expected {"rules": [...]}, a list of rules or one rule')
    try:
        return tuple(FaultRule.model_validate(item) for item in data)
    except ValidationError as exc:
        raise FaultRuleError(str(exc)) from exc


def parse_flag(text: str) -> tuple[FaultRule, ...]:
    """A `--fault` value: a JSON rule (or list, or `{"rules": …}`), or the short
    form `fault=latency,path=/v1/refunds,latency_ms=200` (values read as JSON when
    they parse, as strings otherwise)."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            return parse_rules(json.loads(stripped))
        except json.JSONDecodeError as exc:
            raise FaultRuleError(f"not JSON: {exc}") from exc
    rule: dict[str, Any] = {}
    for part in stripped.split(","):
        name, equals, value = part.partition("=")
        if not equals:
            raise FaultRuleError(f"expected name=value, got {part!r}")
        try:
            rule[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            rule[name.strip()] = value.strip()
    return parse_rules(rule)


@dataclass
class _Armed:
    rule: FaultRule
    rng: random.Random
    seen: int = 0
    fired: int = 0

    def consider(self) -> bool:
        self.seen += 1
        if self.rule.nth is not None and self.seen != self.rule.nth:
            return False
        # Not cryptographic: a seeded toss so a fault schedule can be replayed.
        if self.rule.probability < 1.0 and self.rng.random() >= self.rule.probability:
            return False
        limit = self.rule.limit
        if limit is not None and self.fired >= limit:
            return False
        self.fired += 1
        return True


@dataclass
class FaultBook:
    """The rules in force, with their counters; replaced whole by `set`."""

    _armed: list[_Armed] = field(default_factory=list)

    def set(self, rules: Iterable[FaultRule]) -> None:
        self._armed = [_Armed(rule, random.Random(rule.seed)) for rule in rules]  # noqa: S311

    def clear(self) -> None:
        self._armed = []

    def rules(self) -> list[dict[str, Any]]:
        return [
            {**armed.rule.model_dump(), "seen": armed.seen, "fired": armed.fired}
            for armed in self._armed
        ]

    def for_request(self, method: str, path: str) -> FaultRule | None:
        if not self._armed or path.startswith(CONTROL_PREFIX):
            return None
        for armed in self._armed:
            rule = armed.rule
            if rule.is_webhook:
                continue
            if rule.method not in ("*", method) or not fnmatch.fnmatchcase(path, rule.path):
                continue
            if armed.consider():
                return rule
        return None

    def for_event(self, event_type: str) -> FaultRule | None:
        for armed in self._armed:
            rule = armed.rule
            if not rule.is_webhook or not fnmatch.fnmatchcase(event_type, rule.event_type):
                continue
            if armed.consider():
                return rule
        return None


def rules_from_flags(values: Sequence[str]) -> tuple[FaultRule, ...]:
    rules: list[FaultRule] = []
    for value in values:
        rules.extend(parse_flag(value))
    return tuple(rules)
