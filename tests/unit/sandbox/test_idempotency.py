"""The idempotency rules on a manual clock: claim, replay, mismatch, in flight,
release of unsaved requests, the key length limit, scoping by API key, and expiry."""

from __future__ import annotations

import pytest

from orderdesk.sandbox import errors
from orderdesk.sandbox.clock import SandboxClock
from orderdesk.sandbox.idempotency import Claim, IdempotencyStore, SavedResponse

DAY = 24 * 3600


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=1_800_000_000.0)


@pytest.fixture
def store(clock: SandboxClock) -> IdempotencyStore:
    return IdempotencyStore(clock, ttl_seconds=DAY)


def _begin(
    store: IdempotencyStore,
    *,
    key: str = "k",
    fp: str = "p",
    endpoint: str = "POST /v1/x",
    api_key: str = "sk_test_a",
) -> Claim | SavedResponse:
    return store.begin(api_key, key, endpoint=endpoint, fingerprint=fp)


def _saved(status: int = 200) -> SavedResponse:
    return SavedResponse(status, b'{"id":"pi_1"}', "req_first")


def test_a_new_key_is_claimed_and_its_answer_replayed(store: IdempotencyStore) -> None:
    claim = _begin(store)
    assert isinstance(claim, Claim)
    store.finish(claim, _saved())
    assert _begin(store) == _saved()


def test_a_saved_failure_is_replayed_too(store: IdempotencyStore) -> None:
    claim = _begin(store)
    assert isinstance(claim, Claim)
    store.finish(claim, _saved(500))
    replay = _begin(store)
    assert isinstance(replay, SavedResponse)
    assert replay.status == 500


def test_the_same_key_while_running_is_409_in_use(store: IdempotencyStore) -> None:
    assert isinstance(_begin(store), Claim)
    with pytest.raises(errors.StripeError) as caught:
        _begin(store)
    assert (caught.value.status, caught.value.code) == (409, "idempotency_key_in_use")


@pytest.mark.parametrize("changed", [{"fp": "other"}, {"endpoint": "POST /v1/y"}])
def test_other_params_or_endpoint_are_an_idempotency_error(
    store: IdempotencyStore, changed: dict[str, str]
) -> None:
    claim = _begin(store)
    assert isinstance(claim, Claim)
    store.finish(claim, _saved())
    with pytest.raises(errors.StripeError) as caught:
        _begin(store, **changed)
    assert (caught.value.status, caught.value.type) == (400, "idempotency_error")
    assert "Try using a key other than 'k'" in caught.value.message


def test_a_released_claim_frees_the_key(store: IdempotencyStore) -> None:
    claim = _begin(store)
    assert isinstance(claim, Claim)
    store.release(claim)
    assert isinstance(_begin(store, fp="corrected"), Claim)


def test_keys_are_scoped_by_api_key(store: IdempotencyStore) -> None:
    claim = _begin(store)
    assert isinstance(claim, Claim)
    store.finish(claim, _saved())
    assert isinstance(_begin(store, api_key="sk_test_b", fp="different"), Claim)


def test_a_key_over_255_characters_is_refused(store: IdempotencyStore) -> None:
    assert isinstance(_begin(store, key="k" * 255), Claim)
    with pytest.raises(errors.StripeError) as caught:
        _begin(store, key="k" * 256)
    assert caught.value.status == 400


def test_a_key_is_forgotten_after_24_hours(store: IdempotencyStore, clock: SandboxClock) -> None:
    claim = _begin(store)
    assert isinstance(claim, Claim)
    store.finish(claim, _saved())
    clock.advance(DAY - 1)
    assert isinstance(_begin(store), SavedResponse)
    clock.advance(1)
    assert isinstance(_begin(store, fp="new request"), Claim)


def test_expired_keys_are_pruned_as_new_ones_come(
    store: IdempotencyStore, clock: SandboxClock
) -> None:
    for n in range(5):
        claim = _begin(store, key=f"old-{n}")
        assert isinstance(claim, Claim)
        store.finish(claim, _saved())
    clock.advance(DAY)
    _begin(store, key="new")
    assert len(store) == 1


def test_the_clock_never_goes_back(clock: SandboxClock) -> None:
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
