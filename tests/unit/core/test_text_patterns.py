"""The document's patterns for text say exactly what the validators accept, code
point by code point, so a client that validates against the document agrees with
the server."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from orderdesk.core.text import MULTI_LINE, NOT_BLANK, SINGLE_LINE

BMP = [chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF]


def accepts(check: Callable[[str], str], value: str) -> bool:
    try:
        check(value)
    except (PydanticCustomError, ValueError, ValidationError):
        return False
    return True


@pytest.mark.parametrize("rule", [SINGLE_LINE, MULTI_LINE], ids=["single", "multi"])
def test_a_text_pattern_admits_exactly_the_characters_its_rule_does(rule: object) -> None:
    pattern = re.compile(rule.pattern)  # type: ignore[attr-defined]
    check = rule.func  # type: ignore[attr-defined]

    disagree = [
        hex(ord(ch))
        for ch in BMP
        if bool(pattern.fullmatch(f"a{ch}b")) != accepts(check, f"a{ch}b")
    ]

    assert disagree == []


def test_the_not_blank_pattern_calls_blank_exactly_what_the_server_does() -> None:
    pattern = re.compile(NOT_BLANK.pattern)
    single = re.compile(SINGLE_LINE.pattern)

    disagree = [
        hex(ord(ch))
        for ch in BMP
        if single.fullmatch(ch)
        and bool(pattern.fullmatch(ch + ch)) != accepts(NOT_BLANK.func, ch + ch)
    ]

    assert disagree == []
    assert not accepts(NOT_BLANK.func, "\u0085\u3000")
    assert accepts(NOT_BLANK.func, "\ufeff")
