"""Webhook target validation against SSRF: in production a URL must not reach
loopback, link-local, private or otherwise internal addresses, unless
`ORDERDESK_WEBHOOK_ALLOW_PRIVATE_TARGETS` says so. Checked when a subscription is
made and again before every delivery (DNS can change in between)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from orderdesk.core.errors import InvalidInput


class UnsafeTarget(InvalidInput):
    code = "unsafe_webhook_target"
    title = "The webhook URL is not allowed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field=["url"])


async def check_target(url: str, *, allow_private: bool, require_https: bool) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:  # also an unclosed "[" around an IPv6 address
        raise UnsafeTarget("Use an http or https URL with a host name.") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeTarget("Use an http or https URL with a host name.")
    if require_https and parts.scheme != "https":
        raise UnsafeTarget("Webhook URLs must use https.")
    if parts.username or parts.password:
        raise UnsafeTarget("Put credentials in the signature secret, not the URL.")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except (OSError, UnicodeError) as exc:  # UnicodeError: a label IDNA cannot encode
        raise UnsafeTarget(f"The host {parts.hostname} does not resolve.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UnsafeTarget(f"The host {parts.hostname} resolves to a non-public address.")
