"""Fault rules: matching by method and path glob, seeded probability that replays
the same schedule, nth, count and once, webhook rules kept apart, the control
plane never faulted, and the command-line forms."""

from __future__ import annotations

import pytest

from orderdesk.sandbox.faults import FaultBook, FaultRule, FaultRuleError, parse_flag, parse_rules


def _book(*rules: dict[str, object]) -> FaultBook:
    book = FaultBook()
    book.set(parse_rules(list(rules)))
    return book


def test_a_path_glob_matches_any_intent_id() -> None:
    book = _book({"path": "/v1/payment_intents/*/confirm", "fault": "error_before"})
    hit = book.for_request("POST", "/v1/payment_intents/pi_123/confirm")
    assert hit is not None
    assert hit.fault == "error_before"
    assert book.for_request("POST", "/v1/payment_intents/pi_123/cancel") is None


def test_the_method_must_match_when_given() -> None:
    book = _book({"path": "/v1/refunds", "method": "POST", "fault": "latency"})
    assert book.for_request("GET", "/v1/refunds") is None
    assert book.for_request("POST", "/v1/refunds") is not None


def test_a_seeded_probability_fires_on_the_same_requests_every_time() -> None:
    rule = {"path": "/v1/*", "fault": "error_after", "probability": 0.3, "seed": 7}
    schedules = []
    for _ in range(2):
        book = _book(rule)
        schedules.append([book.for_request("POST", "/v1/x") is not None for _ in range(200)])
    assert schedules[0] == schedules[1]
    assert 30 < sum(schedules[0]) < 90


def test_nth_fires_on_that_match_only() -> None:
    book = _book({"path": "/v1/x", "fault": "hang", "nth": 2})
    assert [book.for_request("POST", "/v1/x") is not None for _ in range(4)] == [
        False,
        True,
        False,
        False,
    ]


def test_count_and_once_limit_the_firings() -> None:
    counted = _book({"path": "/v1/x", "fault": "latency", "count": 2})
    assert [counted.for_request("GET", "/v1/x") is not None for _ in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    once = _book({"path": "/v1/x", "fault": "latency", "once": True})
    assert [once.for_request("GET", "/v1/x") is not None for _ in range(2)] == [True, False]


def test_the_first_rule_that_fires_wins() -> None:
    book = _book(
        {"path": "/v1/x", "fault": "latency", "once": True},
        {"path": "/v1/*", "fault": "error_before"},
    )
    first = book.for_request("GET", "/v1/x")
    second = book.for_request("GET", "/v1/x")
    assert first is not None
    assert first.fault == "latency"
    assert second is not None
    assert second.fault == "error_before"


def test_webhook_rules_match_event_types_not_requests() -> None:
    book = _book({"fault": "webhook_drop", "event_type": "payment_intent.*"})
    assert book.for_request("POST", "/v1/payment_intents") is None
    assert book.for_event("charge.succeeded") is None
    dropped = book.for_event("payment_intent.succeeded")
    assert dropped is not None
    assert dropped.fault == "webhook_drop"


def test_the_control_plane_is_never_faulted() -> None:
    book = _book({"path": "*", "fault": "error_before"})
    assert book.for_request("DELETE", "/_sandbox/faults") is None
    assert book.for_request("GET", "/v1/events") is not None


def test_counters_are_reported() -> None:
    book = _book({"path": "/v1/x", "fault": "latency", "nth": 2})
    book.for_request("GET", "/v1/x")
    [reported] = book.rules()
    assert (reported["seen"], reported["fired"]) == (1, 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"fault": "meteor"},
        {"fault": "latency", "probability": 2},
        {"fault": "latency", "colour": "red"},
        {"fault": "error_before", "status": 200},
    ],
)
def test_bad_rules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(FaultRuleError):
        parse_rules({"rules": [bad]})


def test_the_short_flag_form_reads_values_as_json() -> None:
    [rule] = parse_flag("fault=latency,path=/v1/refunds,latency_ms=200,once=true")
    assert rule == FaultRule(fault="latency", path="/v1/refunds", latency_ms=200, once=True)


def test_the_json_flag_form_takes_a_rules_document() -> None:
    rules = parse_flag('{"rules": [{"fault": "hang"}, {"fault": "webhook_drop"}]}')
    assert [r.fault for r in rules] == ["hang", "webhook_drop"]
