"""Optimistic concurrency over HTTP: `ETag` carries a resource's version and updates
must send it back in `If-Match` (missing → 428, stale → 412)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header

from orderdesk.core.errors import PreconditionFailed, PreconditionRequired
from orderdesk.core.openapi import required_headers
from orderdesk.core.text import SingleLineText

_VERSION = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """The `If-Match` header as sent. Judged only when the route asks for the version,
    which it does after FastAPI has validated the path and the body: a request with a
    bad body learns about the body first, whatever its precondition."""

    header: str | None

    def version(self) -> int:
        if self.header is None:
            raise PreconditionRequired()
        return _parse(self.header)

    def version_if_sent(self) -> int | None:
        return None if self.header is None else _parse(self.header)


_IfMatchHeader = Annotated[SingleLineText | None, Header(alias="If-Match", max_length=64)]


@required_headers("If-Match")
async def required_if_match(if_match: _IfMatchHeader = None) -> IfMatch:
    """For updates: `If-Match` is required (the document says so; a missing one is 428)."""
    return IfMatch(if_match)


async def optional_if_match(if_match: _IfMatchHeader = None) -> IfMatch:
    """For operations where `If-Match` is allowed but not required (deletes)."""
    return IfMatch(if_match)


def _parse(if_match: str) -> int:
    match = _VERSION.match(if_match)
    if match is None:
        raise PreconditionFailed('If-Match must be the resource\'s version, e.g. "3".')
    return int(match.group(1))


def check_version(current: int, expected: int) -> None:
    if current != expected:
        raise PreconditionFailed()
