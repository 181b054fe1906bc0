"""The outbox's settings under their names, and under the ORDERDESK_JOB_* names they
had before (deprecated aliases)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orderdesk.core.settings import Settings

RENAMED = [
    ("event_max_attempts", "JOB_MAX_ATTEMPTS", "3", 3),
    ("event_lease_seconds", "JOB_LEASE_SECONDS", "17", 17),
    ("event_backoff_base_seconds", "JOB_BACKOFF_BASE_SECONDS", "0.5", 0.5),
    ("event_backoff_max_seconds", "JOB_BACKOFF_MAX_SECONDS", "90", 90.0),
    ("handler_concurrency", "JOB_CONCURRENCY", "5", 5),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ORDERDESK_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("field", "old", "raw", "value"), RENAMED)
def test_an_old_job_setting_name_still_works(
    monkeypatch: pytest.MonkeyPatch, field: str, old: str, raw: str, value: object
) -> None:
    monkeypatch.setenv(f"ORDERDESK_{old}", raw)

    assert getattr(Settings(_env_file=None), field) == value


@pytest.mark.parametrize(("field", "old", "raw", "value"), RENAMED)
def test_the_new_setting_name_works(
    monkeypatch: pytest.MonkeyPatch, field: str, old: str, raw: str, value: object
) -> None:
    monkeypatch.setenv(f"ORDERDESK_{field.upper()}", raw)

    assert getattr(Settings(_env_file=None), field) == value


def test_the_new_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERDESK_JOB_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("ORDERDESK_EVENT_MAX_ATTEMPTS", "5")

    assert Settings(_env_file=None).event_max_attempts == 5


def test_an_old_name_in_the_env_file_still_works(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ORDERDESK_JOB_LEASE_SECONDS=42\n")

    assert Settings(_env_file=env_file).event_lease_seconds == 42


def test_settings_take_the_new_names_as_keywords() -> None:
    assert Settings(_env_file=None, handler_concurrency=2).handler_concurrency == 2


def test_an_unprefixed_name_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("JOB_MAX_ATTEMPTS", "3")

    assert Settings(_env_file=None).event_max_attempts == 8


@pytest.mark.parametrize(("field", "old", "raw", "value"), RENAMED)
def test_an_old_keyword_sets_the_new_setting_with_a_warning(
    field: str, old: str, raw: str, value: object
) -> None:
    with pytest.warns(DeprecationWarning, match=f"{old.lower()} is renamed {field}"):
        settings = Settings(_env_file=None, **{old.lower(): raw})

    assert getattr(settings, field) == value
