"""The one rule for text: the validators themselves, and a structure test that walks
every route of the app and fails when a string input (query, header, path, cookie,
form or body field, at any depth of a body model) is not one of the shared text types
or has no maximum length, so a new field cannot forget either."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

import pytest
from annotated_types import MaxLen
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import AfterValidator, BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from orderdesk.app import create_app
from orderdesk.core.text import TEXT_RULES, MultiLineText, SingleLineText
from tests.helpers import make_settings

SINGLE = TypeAdapter(SingleLineText)
MULTI = TypeAdapter(MultiLineText)

REFUSED_EVERYWHERE = {
    "nul": "a\x00b",
    "bell": "a\x07b",
    "escape": "\x1b[31mred",
    "unit-separator": "a\x1fb",
    "delete": "a\x7fb",
    "lone-high-surrogate": "a\ud800b",
    "lone-low-surrogate": "a\udfffb",
    "noncharacter-fffe": "a\ufffeb",
    "noncharacter-ffff": "a\uffffb",
    "vertical-tab": "a\x0bb",
    "form-feed": "a\x0cb",
}
LINE_BREAKS = {"tab": "a\tb", "newline": "a\nb", "carriage-return": "a\r\nb"}
ACCEPTED = ["", "plain", "Ünïcödé ✓", "emoji 🧉", "CJK 漢字", "a\u00a0b", "\u200d", "\U0010fffd"]


@pytest.mark.parametrize("name", sorted(REFUSED_EVERYWHERE))
def test_forbidden_characters_are_refused_in_single_and_multi_line_text(name: str) -> None:
    for adapter in (SINGLE, MULTI):
        with pytest.raises(ValidationError) as caught:
            adapter.validate_python(REFUSED_EVERYWHERE[name])
        assert caught.value.errors()[0]["type"] in {"forbidden_character", "string_unicode"}


@pytest.mark.parametrize("name", sorted(LINE_BREAKS))
def test_tab_and_line_breaks_are_multi_line_text_only(name: str) -> None:
    assert MULTI.validate_python(LINE_BREAKS[name]) == LINE_BREAKS[name]
    with pytest.raises(ValidationError):
        SINGLE.validate_python(LINE_BREAKS[name])


@pytest.mark.parametrize("text", ACCEPTED)
def test_ordinary_unicode_is_accepted(text: str) -> None:
    assert SINGLE.validate_python(text) == text
    assert MULTI.validate_python(text) == text


def test_the_error_names_the_code_point_and_its_position() -> None:
    with pytest.raises(ValidationError) as caught:
        SINGLE.validate_python("abc\x00")

    assert "U+0000 at position 3" in caught.value.errors()[0]["msg"]


# --- structure: every string input of every route --------------------------------------


def _is_text_rule(meta: object) -> bool:
    return isinstance(meta, AfterValidator) and meta.func in TEXT_RULES


def _has_bound(meta: object) -> bool:
    return isinstance(meta, MaxLen) or getattr(meta, "max_length", None) is not None


def string_problems(annotation: Any, metadata: tuple[Any, ...], where: str) -> Iterator[str]:
    """Why `annotation` (with the field's own `metadata`) holds a string without the
    text rule or a length bound; descends into unions, containers and models."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *extra = typing.get_args(annotation)
        # A `Field(...)` inside an `Annotated` arm keeps its constraints in its metadata.
        flat = [
            m for meta in extra for m in (meta.metadata if isinstance(meta, FieldInfo) else [meta])
        ]
        yield from string_problems(inner, (*metadata, *flat), where)
    elif origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(annotation):
            yield from string_problems(arm, metadata, where)
    elif origin is typing.Literal:
        return
    elif origin is not None:  # list[...], dict[...], tuple[...]
        for arg in typing.get_args(annotation):
            yield from string_problems(arg, (), f"{where}[]")
    elif annotation is str:
        if not any(_is_text_rule(meta) for meta in metadata):
            yield f"{where}: a str without SingleLineText/MultiLineText"
        if not any(_has_bound(meta) for meta in metadata):
            yield f"{where}: a str without a max_length"
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        return
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            yield from string_problems(field.annotation, tuple(field.metadata), f"{where}.{name}")


def dependant_problems(dependant: Dependant, route: str) -> Iterator[str]:
    kinds = {
        "path": dependant.path_params,
        "query": dependant.query_params,
        "header": dependant.header_params,
        "cookie": dependant.cookie_params,
        "body": dependant.body_params,
    }
    for kind, fields in kinds.items():
        for field in fields:
            info = field.field_info
            where = f"{route} {kind} {field.alias}"
            yield from string_problems(info.annotation, tuple(info.metadata), where)
    for sub in dependant.dependencies:
        yield from dependant_problems(sub, route)


def test_every_string_input_of_every_route_has_the_text_rule_and_a_bound() -> None:
    app = create_app(make_settings())
    # Through the included routers, as FastAPI itself finds them.
    routes = [
        (f"{sorted(context.methods or ())} {context.path}", context.route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.route, APIRoute)
    ]
    assert len(routes) > 30  # the walk found the API, not an empty app

    problems = [
        problem for name, route in routes for problem in dependant_problems(route.dependant, name)
    ]

    assert not problems, "\n".join(problems)


class _Nested(BaseModel):
    bare: str


class _Outer(BaseModel):
    ok: Annotated[SingleLineText, MaxLen(10)]
    items: list[_Nested]
    maybe: str | None = None


def test_the_structure_walk_finds_bare_strings_at_any_depth() -> None:
    # The walk above must be able to fail: nested models, lists and optionals.
    found = list(string_problems(_Outer, (), "body"))

    assert any(problem.startswith("body.items[].bare: a str without Single") for problem in found)
    assert any(problem.startswith("body.maybe: a str without a max_length") for problem in found)
    assert not any(problem.startswith("body.ok") for problem in found)
