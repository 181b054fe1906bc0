"""The generated development secret key: no key from the source signs anything, the
key is made once per install (mode 0600) and every process in one place agrees on it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orderdesk.auth.tokens import InvalidToken, TokenCodec
from orderdesk.core import secret_key
from orderdesk.core.settings import Settings
from tests.helpers import access_claims, sign_claims

# The key that was once the default in the source: what an attacker would try first.
PUBLISHED_KEY = "orderdesk-development-secret-key-do-not-use-in-production"
KEY_FILE = ".orderdesk-secret-key"


@pytest.fixture(autouse=True)
def fresh_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory of its own and no ORDERDESK_* from the shell."""
    for name in list(os.environ):
        if name.startswith("ORDERDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def default_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def forged_token(settings: Settings, key: str) -> str:
    return sign_claims(access_claims(settings, role="admin"), key)


def test_a_token_signed_with_the_published_key_is_refused_by_default_settings() -> None:
    settings = default_settings()
    codec = TokenCodec(settings)

    with pytest.raises(InvalidToken):
        codec.decode_access_token(forged_token(settings, PUBLISHED_KEY))


def test_the_generated_key_signs_tokens_the_codec_accepts() -> None:
    settings = default_settings()
    key = settings.secret_key.get_secret_value()

    claims = TokenCodec(settings).decode_access_token(forged_token(settings, key))

    assert claims.token_version == 0


def test_a_key_is_generated_into_the_working_directory_readable_by_the_owner_only(
    fresh_directory: Path,
) -> None:
    settings = default_settings()

    path = fresh_directory / KEY_FILE
    assert path.read_text().strip() == settings.secret_key.get_secret_value()
    assert len(settings.secret_key.get_secret_value()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_two_settings_in_one_directory_agree_on_the_key() -> None:
    first, second = default_settings(), default_settings()

    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()


def test_installs_in_different_directories_get_different_keys(
    fresh_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = default_settings().secret_key.get_secret_value()
    elsewhere = fresh_directory / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert default_settings().secret_key.get_secret_value() != here


def test_an_existing_key_file_is_used(fresh_directory: Path) -> None:
    (fresh_directory / KEY_FILE).write_text("kept-" + "x" * 40 + "\n")

    assert default_settings().secret_key.get_secret_value() == "kept-" + "x" * 40


def test_the_key_file_setting_chooses_where_the_key_is_kept(fresh_directory: Path) -> None:
    path = fresh_directory / "keys" / "orderdesk.key"
    path.parent.mkdir()

    settings = default_settings(secret_key_file=path)

    assert path.read_text().strip() == settings.secret_key.get_secret_value()
    assert not (fresh_directory / KEY_FILE).exists()


def test_the_test_environment_generates_a_key_too(fresh_directory: Path) -> None:
    settings = default_settings(env="test")

    assert (fresh_directory / KEY_FILE).read_text().strip() == (
        settings.secret_key.get_secret_value()
    )


def test_a_set_key_wins_and_no_file_is_made(fresh_directory: Path) -> None:
    settings = default_settings(secret_key="set-explicitly-" + "y" * 30)

    assert settings.secret_key.get_secret_value() == "set-explicitly-" + "y" * 30
    assert not (fresh_directory / KEY_FILE).exists()


def test_a_key_file_holding_a_short_key_is_refused(fresh_directory: Path) -> None:
    (fresh_directory / KEY_FILE).write_text("short\n")

    with pytest.raises(ValidationError, match="fewer than 32 characters"):
        default_settings()


def test_an_unwritable_key_file_location_is_a_clear_refusal(fresh_directory: Path) -> None:
    with pytest.raises(ValidationError, match="cannot create ORDERDESK_SECRET_KEY_FILE"):
        default_settings(secret_key_file=fresh_directory / "missing" / "key")


def test_a_process_that_loses_the_race_uses_the_winners_key(
    fresh_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process writes the file after this one found none and before it writes
    # its own: this one must end up with the other's key, not overwrite it.
    path = fresh_directory / KEY_FILE
    winner = "winner-" + "w" * 40
    real_token = secret_key.secrets.token_urlsafe

    def generate_while_another_process_wins(nbytes: int) -> str:
        path.write_text(winner + "\n")
        return real_token(nbytes)

    monkeypatch.setattr(secret_key.secrets, "token_urlsafe", generate_while_another_process_wins)

    assert secret_key.load_or_create(path) == winner
    assert path.read_text().strip() == winner
    assert [p.name for p in fresh_directory.iterdir()] == [KEY_FILE]  # no temporary left
