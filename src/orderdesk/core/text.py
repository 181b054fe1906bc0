"""The one rule for text that enters the API: every string field, query, header, path
and form parameter, and every imported row, is one of these types.

A string must be valid Unicode without characters that the databases cannot store
or that no legitimate value contains: NUL and the other C0 controls (U+0000-U+001F),
DEL (U+007F), lone surrogates (U+D800-U+DFFF) and the noncharacters U+FFFE and
U+FFFF. Multi-line text (descriptions) may also hold tab, line feed and carriage
return. PostgreSQL refuses NUL outright (the driver's error would be a 500) and
SQLite stores it but compares oddly (a NUL search matched every product), so the
rule runs before either sees the value and answers the same 422 on both.

The types carry no length: every field adds its own bound, and a structure test
(tests/unit/core/test_text_rule.py) checks that every string input has this rule and a
maximum length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

_SINGLE_LINE_FORBIDDEN = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_MULTI_LINE_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
ERROR_TYPE = "forbidden_character"


def _refuse(found: re.Match[str]) -> PydanticCustomError:
    return PydanticCustomError(
        ERROR_TYPE,
        "must not contain control characters, lone surrogates or noncharacters "
        "(U+{code} at position {position})",
        {"code": f"{ord(found.group()):04X}", "position": found.start()},
    )


def check_single_line(value: str) -> str:
    found = _SINGLE_LINE_FORBIDDEN.search(value)
    if found is not None:
        raise _refuse(found)
    return value


def check_multi_line(value: str) -> str:
    found = _MULTI_LINE_FORBIDDEN.search(value)
    if found is not None:
        raise _refuse(found)
    return value


# White space outside the C0 controls (which single-line text refuses anyway), listed
# rather than `\s`, which means different things to Python and to JavaScript-style
# validators reading the document's pattern.
_SPACES = r" \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_CHARACTERS = (
    " \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def check_not_blank(value: str) -> str:
    """Names: at least one character that is not white space; stored trimmed. The
    length bound applies to the value as sent, so the document's `maxLength` holds."""
    trimmed = value.strip(_SPACE_CHARACTERS)
    if not trimmed:
        raise PydanticCustomError("blank", "must not be blank")
    return trimmed


# The validators themselves, so the structure test can recognise the rule.
TEXT_RULES = (check_single_line, check_multi_line, check_not_blank)

# The same rules as JSON Schema patterns, so the API document allows exactly what the
# server does (what a client generates from it is accepted).
_ALLOWED_SINGLE_LINE = "[^\\x00-\\x1f\\x7f\\ufffe\\uffff]"
_ALLOWED_MULTI_LINE = "[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ufffe\\uffff]"
_VISIBLE_SINGLE_LINE = f"[^{_SPACES}\\x00-\\x1f\\x7f\\ufffe\\uffff]"


@dataclass(frozen=True)
class _TextRule(AfterValidator):
    """A text validator that also writes its rule into the JSON Schema as a `pattern`
    (unless the field has a stricter pattern of its own, like a SKU's, other than
    the one this rule `narrows`)."""

    pattern: str = ""
    narrows: str | None = None

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if json_schema.get("type") == "string":
            current = json_schema.get("pattern")
            if current is None or current == self.narrows:
                json_schema["pattern"] = self.pattern
        return json_schema


# Placed after a field's length constraints (`Annotated[str, Field(max_length=…),
# SINGLE_LINE]`): pydantic then checks the length on the plain string first, with its
# usual messages, and never scans an oversized value.
SINGLE_LINE = _TextRule(check_single_line, pattern=f"^{_ALLOWED_SINGLE_LINE}*$")
MULTI_LINE = _TextRule(check_multi_line, pattern=f"^{_ALLOWED_MULTI_LINE}*$")
# After SINGLE_LINE: a name must show something, and is stored without the spaces
# around it.
NOT_BLANK = _TextRule(
    check_not_blank,
    pattern=f"^{_ALLOWED_SINGLE_LINE}*{_VISIBLE_SINGLE_LINE}{_ALLOWED_SINGLE_LINE}*$",
    narrows=f"^{_ALLOWED_SINGLE_LINE}*$",
)

SingleLineText = Annotated[str, SINGLE_LINE]
"""Names, e-mails, tokens, search terms, headers: no control characters at all."""

MultiLineText = Annotated[str, MULTI_LINE]
"""Free text that may span lines (descriptions): tab, LF and CR are allowed."""
