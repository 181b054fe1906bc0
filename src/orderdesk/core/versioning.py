"""Optimistic concurrency over HTTP: `ETag` carries a resource's version and updates
must send it back in `If-Match` (missing → 428, stale → 412)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Header

from orderdesk.core.errors import PreconditionFailed, PreconditionRequired
from orderdesk.core.text import SingleLineText

IfMatch = Annotated[SingleLineText | None, Header(alias="If-Match", max_length=64)]
_VERSION = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def etag(version: int) -> str:
    return f'"{version}"'


async def expected_version(
    if_match: IfMatch = None,
) -> int:
    if if_match is None:
        raise PreconditionRequired()
    return _parse(if_match)


def _parse(if_match: str) -> int:
    match = _VERSION.match(if_match)
    if match is None:
        raise PreconditionFailed('If-Match must be the resource\'s version, e.g. "3".')
    return int(match.group(1))


def check_version(current: int, expected: int) -> None:
    if current != expected:
        raise PreconditionFailed()


async def optional_expected_version(
    if_match: IfMatch = None,
) -> int | None:
    """For operations where `If-Match` is allowed but not required (deletes)."""
    return None if if_match is None else _parse(if_match)
