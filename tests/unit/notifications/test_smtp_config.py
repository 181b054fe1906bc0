"""`ORDERDESK_SMTP_URL` parsed into the SMTP adapter's settings."""

from __future__ import annotations

import pytest

from orderdesk.notifications.mailer import (
    DEFAULT_SENDER,
    LogMailer,
    SmtpConfig,
    SmtpMailer,
    mailer_from_url,
)


def test_a_plain_smtp_url_names_the_host_and_defaults_to_port_25() -> None:
    config = SmtpConfig.from_url("smtp://mail.example.com")

    assert config.host == "mail.example.com"
    assert config.port == 25
    assert config.use_tls is False


def test_smtps_means_implicit_tls_on_port_465() -> None:
    config = SmtpConfig.from_url("smtps://mail.example.com")

    assert config.use_tls is True
    assert config.port == 465


@pytest.mark.parametrize(
    ("url", "port"),
    [("smtp://mail.example.com:2525", 2525), ("smtps://mail.example.com:4650", 4650)],
)
def test_an_explicit_port_wins(url: str, port: int) -> None:
    assert SmtpConfig.from_url(url).port == port


def test_an_ip_address_host_is_kept() -> None:
    config = SmtpConfig.from_url("smtp://127.0.0.1:1025")

    assert (config.host, config.port) == ("127.0.0.1", 1025)


def test_without_credentials_there_is_no_login() -> None:
    config = SmtpConfig.from_url("smtp://mail.example.com")

    assert config.username is None
    assert config.password is None


def test_credentials_come_from_the_userinfo() -> None:
    config = SmtpConfig.from_url("smtp://mailer:hunter22@mail.example.com:587")

    assert config.username == "mailer"
    assert config.password == "hunter22"
    assert config.host == "mail.example.com"


def test_url_encoded_credentials_are_decoded() -> None:
    config = SmtpConfig.from_url("smtp://shop%40example.com:p%40ss%3Aw%2Frd%25@mail.example.com")

    assert config.username == "shop@example.com"
    assert config.password == "p@ss:w/rd%"


def test_starttls_is_left_to_the_server_when_not_given() -> None:
    assert SmtpConfig.from_url("smtp://mail.example.com").start_tls is None


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE", "Yes"])
def test_starttls_can_be_required(value: str) -> None:
    assert SmtpConfig.from_url(f"smtp://mail.example.com?starttls={value}").start_tls is True


@pytest.mark.parametrize("value", ["false", "0", "no"])
def test_starttls_can_be_turned_off(value: str) -> None:
    assert SmtpConfig.from_url(f"smtp://mail.example.com?starttls={value}").start_tls is False


@pytest.mark.parametrize("value", ["ture", "enabled", "2"])
def test_an_unrecognised_starttls_value_is_refused(value: str) -> None:
    # A typo must not quietly turn STARTTLS off and send the password in clear text.
    with pytest.raises(ValueError, match="starttls"):
        SmtpConfig.from_url(f"smtp://mailer:secret@mail.example.com:587?starttls={value}")


def test_the_sender_defaults_to_orderdesks_no_reply_address() -> None:
    assert SmtpConfig.from_url("smtp://mail.example.com").sender == DEFAULT_SENDER


def test_the_sender_comes_from_the_query_url_decoded() -> None:
    url = "smtp://mail.example.com?sender=Shop%20Team%20%3Cshop%40example.com%3E"

    assert SmtpConfig.from_url(url).sender == "Shop Team <shop@example.com>"


def test_the_timeout_defaults_to_ten_seconds_and_can_be_set() -> None:
    assert SmtpConfig.from_url("smtp://mail.example.com").timeout == 10.0
    assert SmtpConfig.from_url("smtp://mail.example.com?timeout=2.5").timeout == 2.5


def test_every_option_together() -> None:
    url = "smtp://u:p@mail.example.com:587?starttls=true&sender=a%40example.com&timeout=3"

    assert SmtpConfig.from_url(url) == SmtpConfig(
        host="mail.example.com",
        port=587,
        username="u",
        password="p",
        use_tls=False,
        start_tls=True,
        sender="a@example.com",
        timeout=3.0,
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mail.example.com",
        "http://mail.example.com",
        "smtpx://mail.example.com",
        "smtp://",
        "smtp:///path-only",
        "smtp://:25",
        "smtp://user:pass@",
    ],
)
def test_urls_that_name_no_smtp_server_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="ORDERDESK_SMTP_URL"):
        SmtpConfig.from_url(url)


@pytest.mark.parametrize("url", ["smtp://mail.example.com:smtp", "smtp://mail.example.com:70000"])
def test_a_bad_port_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"[Pp]ort"):
        SmtpConfig.from_url(url)


def test_a_bad_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="soon"):
        SmtpConfig.from_url("smtp://mail.example.com?timeout=soon")


def test_an_smtp_url_selects_the_smtp_mailer() -> None:
    assert isinstance(mailer_from_url("smtp://127.0.0.1:1025"), SmtpMailer)


@pytest.mark.parametrize("url", [None, ""])
def test_no_smtp_url_selects_the_log_mailer(url: str | None) -> None:
    assert isinstance(mailer_from_url(url), LogMailer)


def test_a_bad_smtp_url_fails_when_the_mailer_is_chosen() -> None:
    with pytest.raises(ValueError, match="ORDERDESK_SMTP_URL"):
        mailer_from_url("http://mail.example.com")
