"""Durations, matchers, redaction, signed links."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warroom.core.durations import format_duration, parse_duration
from warroom.core.errors import InvalidInput, Unauthenticated
from warroom.core.matchers import matches_all, parse_matchers
from warroom.core.redact import MASK, Redactor, StreamRedactor
from warroom.core.security import sign, unsign

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("4h", 14400), ("1d", 86400), ("1h30m", 5400)]
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "15", "m15", "1h 30x", "-5m", "99999999999d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_format_duration_is_short() -> None:
    assert format_duration(timedelta(hours=1, minutes=5)) == "1h 5m"


def test_matchers_follow_alertmanager_syntax() -> None:
    ms = parse_matchers('alertname=~"KubePod.*", namespace="production", team!="x"')
    assert matches_all(ms, {"alertname": "KubePodCPU", "namespace": "production"})
    assert not matches_all(ms, {"alertname": "KubePodCPU", "namespace": "staging"})
    # regexes are anchored
    assert not matches_all(parse_matchers('a=~"b"'), {"a": "abc"})
    assert matches_all(parse_matchers('{a!~"x|y"}'), {"a": "z"})


@pytest.mark.parametrize("text", ["alertname", 'a=="b"', 'a="unterminated', '1a="b"', 'a=~"("'])
def test_bad_matchers_name_the_column(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_matchers(text)
    assert "column" in info.value.message


PLANTED = [
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2" * 9,
    "xoxb-12345678-abcdefgh",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "postgres://app:s3cretpass@db.internal:5432/app",
    "Authorization: Bearer abcdef0123456789abcdef",
    "password=hunter2hunter2",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----",
]


@pytest.mark.parametrize("text", PLANTED)
def test_redactor_hides_common_secret_shapes(text: str) -> None:
    out = Redactor().redact(f"before {text} after")
    assert MASK in out
    for secret in ("AKIAIOSFODNN7EXAMPLE", "s3cretpass", "hunter2hunter2", "MIIEow", "a1B2a1B2"):
        assert secret not in out


def test_redactor_hides_known_values_and_their_encodings() -> None:
    secret = "Zq9-very-secret-value"
    r = Redactor(secrets=[secret])
    for form in (
        secret,
        base64.b64encode(secret.encode()).decode(),
        "Zq9-very-secret-value".replace("-", "%2D"),
    ):
        text = r.redact(f"x {form} y")
        assert secret not in text


@given(st.integers(min_value=1, max_value=40), st.text(alphabet="ab \n", max_size=30))
def test_stream_redactor_never_leaks_a_secret_split_across_chunks(cut: int, filler: str) -> None:
    secret = "Zq9-very-secret-value"
    r = StreamRedactor(Redactor(secrets=[secret]))
    text = f"{filler}token {secret} end\n{filler}"
    cut = min(cut, len(text))
    out = r.feed(text[:cut]) + r.feed(text[cut:]) + r.flush()
    assert secret not in out


def test_signed_links_verify_and_expire() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = sign({"i": 7, "exp": int(now.timestamp()) + 60}, key="k" * 40, purpose="ack")
    assert unsign(token, key="k" * 40, purpose="ack", now=now)["i"] == 7
    with pytest.raises(Unauthenticated):
        unsign(token, key="k" * 40, purpose="other", now=now)
    with pytest.raises(Unauthenticated):
        unsign(token[:-2] + "xx", key="k" * 40, purpose="ack", now=now)
    with pytest.raises(Unauthenticated):
        unsign(token, key="k" * 40, purpose="ack", now=now + timedelta(minutes=2))
