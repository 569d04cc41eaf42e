"""Alertmanager matcher syntax: `name="value"`, `!=`, `=~`, `!~`, comma-separated.

One string may hold several matchers (`alertname=~"KubePod.*", namespace="production"`),
optionally wrapped in braces as amtool accepts. All matchers of a string must
match (AND). Regexes are anchored, as in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from warroom.core.errors import InvalidInput

_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")
MAX_REGEX_LEN = 1024


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matchers(text: str, *, field: str | None = None) -> list[Matcher]:
    """Parse one matcher string into a list of matchers (all must match).

    Raises InvalidInput with the position and what was expected.
    """
    src = text.strip()
    if src.startswith("{") and src.endswith("}"):
        src = src[1:-1].strip()
    out: list[Matcher] = []
    pos = 0
    n = len(src)

    def fail(msg: str) -> InvalidInput:
        return InvalidInput(
            f"bad matcher {text!r} at column {pos + 1}: {msg}",
            field=field,
            hint='write e.g. alertname="HighCPU", namespace=~"prod|staging"',
        )

    while pos < n:
        while pos < n and src[pos] in " \t":
            pos += 1
        m = _LABEL.match(src, pos)
        if not m:
            raise fail("expected a label name")
        name = m.group(0)
        pos = m.end()
        while pos < n and src[pos] in " \t":
            pos += 1
        op = next((o for o in _OPS if src.startswith(o, pos)), None)
        if op is None:
            raise fail("expected one of = != =~ !~")
        pos += len(op)
        while pos < n and src[pos] in " \t":
            pos += 1
        value, pos = _read_value(src, pos, fail)
        regex = None
        if op in ("=~", "!~"):
            if len(value) > MAX_REGEX_LEN:
                raise fail(f"regex longer than {MAX_REGEX_LEN} characters")
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise fail(f"invalid regex: {exc}") from None
        out.append(Matcher(name, op, value, regex))
        while pos < n and src[pos] in " \t":
            pos += 1
        if pos < n:
            if src[pos] != ",":
                raise fail("expected ',' between matchers")
            pos += 1
    if not out and text.strip() not in ("", "{}"):
        raise fail("no matcher found")
    return out


def _read_value(src: str, pos: int, fail: object) -> tuple[str, int]:
    n = len(src)
    if pos < n and src[pos] == '"':
        pos += 1
        buf = []
        while pos < n:
            ch = src[pos]
            if ch == "\\" and pos + 1 < n:
                nxt = src[pos + 1]
                buf.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                pos += 2
                continue
            if ch == '"':
                return "".join(buf), pos + 1
            buf.append(ch)
            pos += 1
        raise fail("unterminated quoted value")  # type: ignore[operator]
    start = pos
    while pos < n and src[pos] not in ",":
        pos += 1
    value = src[start:pos].strip()
    if any(ch in value for ch in '"=!~{}'):
        raise fail("unquoted value has a reserved character; quote it")  # type: ignore[operator]
    if not value and start == n:
        return "", pos
    return value, pos


def matches_all(matchers: list[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
