"""Decoding Stripe's form encoding: bracket nesting (literal and percent-encoded),
arrays by index and by `[]`, booleans read as booleans only where asked, empty
values unsetting metadata, and JSON bodies read the same way."""

from __future__ import annotations

import pytest

from orderdesk.sandbox import errors
from orderdesk.sandbox.forms import Params, apply_metadata, canonical, decode_body, decode_form


def test_literal_brackets_nest() -> None:
    decoded = decode_form(
        "metadata[order_id]=o+1%2F%C3%A4&automatic_payment_methods[enabled]=true&amount=100"
    )
    assert decoded == {
        "metadata": {"order_id": "o 1/ä"},
        "automatic_payment_methods": {"enabled": "true"},
        "amount": "100",
    }


def test_percent_encoded_brackets_nest_the_same() -> None:
    assert decode_form("metadata%5Border%5D=x&expand%5B%5D=latest_charge") == {
        "metadata": {"order": "x"},
        "expand": ["latest_charge"],
    }


def test_indexed_arrays_keep_index_order() -> None:
    assert decode_form("expand[1]=b&expand[0]=a") == {"expand": ["a", "b"]}


def test_empty_bracket_arrays_append() -> None:
    assert decode_form("t[]=card&t[]=sepa_debit") == {"t": ["card", "sepa_debit"]}


def test_deep_nesting() -> None:
    assert decode_form("a[b][c]=1&a[b][d]=2") == {"a": {"b": {"c": "1", "d": "2"}}}


def test_unbalanced_brackets_stay_one_name() -> None:
    assert decode_form("a[b=1") == {"a[b": "1"}


def test_booleans_are_read_as_booleans_only_where_asked() -> None:
    params = Params(decode_form("confirm=true&off=false&metadata[flag]=true"))
    assert params.boolean("confirm") is True
    assert params.boolean("off") is False
    assert params.metadata() == {"flag": "true"}


def test_a_bad_boolean_is_refused_naming_the_param() -> None:
    with pytest.raises(errors.StripeError) as caught:
        Params({"confirm": "yes"}).boolean("confirm")
    assert caught.value.param == "confirm"


def test_an_empty_metadata_value_unsets_the_key() -> None:
    changes = Params(decode_form("metadata[gone]=&metadata[kept]=1")).metadata()
    assert changes == {"gone": None, "kept": "1"}
    assert apply_metadata({"gone": "x", "other": "y"}, changes) == {"other": "y", "kept": "1"}


def test_empty_metadata_unsets_every_key() -> None:
    assert apply_metadata({"a": "1"}, Params(decode_form("metadata=")).metadata()) == {}


def test_more_than_fifty_metadata_keys_are_refused() -> None:
    changes = {f"k{i}": "v" for i in range(51)}
    with pytest.raises(errors.StripeError) as caught:
        apply_metadata({}, dict(changes))
    assert caught.value.param == "metadata"


def test_a_metadata_key_over_40_characters_is_refused() -> None:
    with pytest.raises(errors.StripeError):
        Params({"metadata": {"k" * 41: "v"}}).metadata()


def test_integers_are_checked() -> None:
    params = Params({"amount": "12", "bad": "1.5", "low": "0"})
    assert params.integer("amount") == 12
    with pytest.raises(errors.StripeError) as bad:
        params.integer("bad")
    assert bad.value.code == "parameter_invalid_integer"
    with pytest.raises(errors.StripeError) as low:
        params.integer("low", minimum=1)
    assert low.value.param == "low"


def test_a_missing_required_param_is_parameter_missing_and_not_saved() -> None:
    with pytest.raises(errors.StripeError) as caught:
        Params({}).string("currency", required=True)
    assert (caught.value.code, caught.value.param, caught.value.saved) == (
        "parameter_missing",
        "currency",
        False,
    )


def test_nested_params_name_their_path_in_errors() -> None:
    nested = Params({"automatic_payment_methods": {"enabled": "maybe"}}).nested(
        "automatic_payment_methods"
    )
    assert nested is not None
    with pytest.raises(errors.StripeError) as caught:
        nested.boolean("enabled")
    assert caught.value.param == "automatic_payment_methods[enabled]"


def test_json_bodies_are_accepted() -> None:
    decoded = decode_body(b'{"amount": 100, "confirm": true}', "application/json; charset=utf-8")
    params = Params(decoded)
    assert (params.integer("amount"), params.boolean("confirm")) == (100, True)


def test_canonical_form_ignores_key_order() -> None:
    assert canonical(decode_form("a=1&b[x]=2")) == canonical(decode_form("b[x]=2&a=1"))
    assert canonical(decode_form("a=1")) != canonical(decode_form("a=2"))
