"""Strict JSON decoding of inbound bodies: UTF-8, no NaN/Infinity, no duplicate keys, bounded depth."""

from __future__ import annotations

import json
import math
from typing import Any

from warroom.core.errors import InvalidInput

MAX_DEPTH = 32


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"body contains {name}, which is not valid JSON", field="body")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidInput(f"number {text[:40]} is out of range", field="body")
    return value


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidInput(f"duplicate key {key[:80]!r} in a JSON object", field=key[:80])
        out[key] = value
    return out


def decode(raw: bytes) -> Any:
    """Parse a request body. Raises InvalidInput naming what is wrong with it."""
    if not raw.strip():
        raise InvalidInput("request body is empty", field="body", hint="send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not valid UTF-8 (byte {exc.start})", field="body") from None
    try:
        data = json.loads(
            text, parse_constant=_no_constant, parse_float=_float, object_pairs_hook=_pairs
        )
    except RecursionError:
        raise InvalidInput(f"JSON nested deeper than {MAX_DEPTH} levels", field="body") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field="body",
        ) from None
    check(data)
    return data


def check(data: Any) -> None:
    """Reject nesting deeper than MAX_DEPTH and strings with NUL or lone surrogates."""
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"JSON nested deeper than {MAX_DEPTH} levels", field=path or "body")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_str(key, path or "body")
                stack.append((item, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                stack.append((item, depth + 1, f"{path}[{i}]"))
        elif isinstance(value, str):
            _check_str(value, path or "body")


def _check_str(value: str, path: str) -> None:
    if "\x00" in value:
        raise InvalidInput("string contains a NUL character", field=path[:200])
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("string contains a lone UTF-16 surrogate", field=path[:200]) from None
