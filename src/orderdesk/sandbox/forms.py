"""Request parameters the way Stripe reads them.

The SDK sends `application/x-www-form-urlencoded` with brackets left literal
(`metadata[order_id]=o_1&expand[0]=latest_charge`); other clients percent-encode
them (`expand%5B%5D=…`), which `parse_qsl` has already undone by the time a key
is split. Arrays come as `x[0]=…` or `x[]=…`. Values stay strings here, as on the
wire: `metadata[flag]=true` is the string "true", and only a parameter read as a
boolean turns `true`/`false` into one. JSON bodies are accepted too and read
through the same accessors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from typing import Any
from urllib.parse import parse_qsl

from orderdesk.sandbox import errors

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


def decode_form(raw: bytes | str) -> dict[str, Any]:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        _assign(root, _split_key(key), value)
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def decode_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The parameters of a request body (or query string) of either encoding."""
    if not raw.strip():
        return {}
    if content_type and content_type.split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise errors.StripeError(400, "Invalid JSON in the request body.", saved=False) from exc
        if not isinstance(data, dict):
            raise errors.StripeError(400, "The JSON body must be an object.", saved=False)
        return data
    try:
        return decode_form(raw)
    except UnicodeDecodeError as exc:
        raise errors.StripeError(400, "The request body is not UTF-8.", saved=False) from exc


def _split_key(key: str) -> list[str]:
    head, bracket, _ = key.partition("[")
    if not bracket:
        return [key]
    rest = key[len(head) :]
    segments = _SEGMENT.findall(rest)
    if "".join(f"[{s}]" for s in segments) != rest:
        # Unbalanced brackets: keep the whole key as one name, as Stripe's own
        # error will then name it as unknown.
        return [key]
    return [head, *segments]


def _assign(node: dict[str, Any], path: list[str], value: str) -> None:
    for position, segment in enumerate(path):
        last = position == len(path) - 1
        name = segment
        if segment == "":
            # `x[]=` appends: give it the next free index in this container.
            name = str(sum(1 for k in node if k.isdigit()))
        if last:
            node[name] = value
            return
        child = node.get(name)
        if not isinstance(child, dict):
            child = {}
            node[name] = child
        node = child


def _listify(node: Any) -> Any:
    """Containers whose keys are all indexes become lists, in index order."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def canonical(params: dict[str, Any]) -> str:
    """A stable rendering of decoded parameters, the idempotency fingerprint."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


class Params:
    """Typed reads of decoded parameters, each failing the way Stripe's would."""

    def __init__(self, data: dict[str, Any], *, prefix: str = "") -> None:
        self.data = data
        self._prefix = prefix

    def _name(self, name: str) -> str:
        return f"{self._prefix}[{name}]" if self._prefix else name

    def reject_unknown(self, allowed: Collection[str]) -> None:
        for name in self.data:
            if name not in allowed:
                raise errors.parameter_unknown(self._name(name))

    def has(self, name: str) -> bool:
        return name in self.data

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise errors.parameter_missing(self._name(name))
            return None
        if isinstance(value, dict | list | bool):
            raise errors.parameter_invalid(
                self._name(name), f"Invalid string: {value!r}", code="parameter_invalid_string"
            )
        return str(value)

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        raw = self.data.get(name)
        if raw is None or raw == "":
            if required:
                raise errors.parameter_missing(self._name(name))
            return None
        if isinstance(raw, bool) or not re.fullmatch(r"-?\d+", str(raw)):
            raise errors.parameter_invalid(
                self._name(name), f"Invalid integer: {raw}", code="parameter_invalid_integer"
            )
        value = int(str(raw))
        if minimum is not None and value < minimum:
            raise errors.parameter_invalid(
                self._name(name),
                f"This value must be greater than or equal to {minimum}.",
                code="parameter_invalid_integer",
            )
        return value

    def boolean(self, name: str) -> bool | None:
        raw = self.data.get(name)
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool):
            return raw
        if raw in ("true", "false"):
            return bool(raw == "true")
        raise errors.parameter_invalid(self._name(name), f"Invalid boolean: {raw}")

    def choice(self, name: str, choices: Iterable[str]) -> str | None:
        value = self.string(name)
        allowed = tuple(choices)
        if value is not None and value not in allowed:
            raise errors.parameter_invalid(
                self._name(name),
                f"Invalid {name}: must be one of {', '.join(allowed)}",
            )
        return value

    def strings(self, name: str) -> list[str] | None:
        raw = self.data.get(name)
        if raw is None:
            return None
        if raw == "":
            return []
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise errors.parameter_invalid(self._name(name), f"Invalid array: {name}")
        return list(raw)

    def nested(self, name: str) -> Params | None:
        raw = self.data.get(name)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, dict):
            raise errors.parameter_invalid(self._name(name), f"Invalid object: {name}")
        return Params(raw, prefix=self._name(name))

    def expand(self) -> frozenset[str]:
        return frozenset(self.strings("expand") or ())

    def metadata(self) -> dict[str, str | None] | None:
        """The metadata changes sent: a value of None unsets the key (an empty string
        on the wire, as `metadata[key]=`). `metadata=` alone unsets every key, which
        is reported as an empty dict plus `clear_all` by the caller's reading."""
        raw = self.data.get("metadata")
        if raw is None:
            return None
        if raw == "":
            return {}
        if not isinstance(raw, dict):
            raise errors.parameter_invalid("metadata", "Invalid object: metadata")
        changes: dict[str, str | None] = {}
        for key, value in raw.items():
            if isinstance(value, dict | list):
                raise errors.parameter_invalid(
                    f"metadata[{key}]", "Metadata values must be strings."
                )
            if len(key) > METADATA_KEY_MAX:
                raise errors.parameter_invalid(
                    f"metadata[{key}]",
                    f"Metadata keys can have up to {METADATA_KEY_MAX} characters.",
                )
            text = None if value is None or value == "" else _metadata_text(value)
            if text is not None and len(text) > METADATA_VALUE_MAX:
                raise errors.parameter_invalid(
                    f"metadata[{key}]",
                    f"Metadata values can have up to {METADATA_VALUE_MAX} characters.",
                )
            changes[key] = text
        return changes


def _metadata_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply_metadata(
    current: dict[str, str], changes: dict[str, str | None] | None
) -> dict[str, str]:
    """The metadata after `changes`, which must leave at most 50 keys."""
    if changes is None:
        return current
    updated = {} if changes == {} else dict(current)
    for key, value in changes.items():
        if value is None:
            updated.pop(key, None)
        else:
            updated[key] = value
    if len(updated) > METADATA_MAX_KEYS:
        raise errors.parameter_invalid(
            "metadata", f"You can specify up to {METADATA_MAX_KEYS} keys in metadata."
        )
    return updated
