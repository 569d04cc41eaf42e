"""Redaction of step output, also when a secret arrives in pieces."""

from __future__ import annotations

import pytest

from warroom.core.redact import Redactor, StreamRedactor
from warroom.runbooks.executor import MAX_OUTPUT, OutputBuffer

pytestmark = pytest.mark.unit

KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq1\nZmFrZWtleWJvZHk=\n-----END RSA PRIVATE KEY-----\n"
PLANTED = (
    "aws AKIAIOSFODNN7EXAMPLE\n"
    "url postgresql://app:s3cr3tPass@db.internal:5432/app\n"
    "Authorization: Bearer abcdefghijklmnop123456\n"
    "password=hunter2hunter2\n" + KEY + "custom TOPSECRET-1234\n"
)
CLEAR = [
    "AKIAIOSFODNN7EXAMPLE",
    "s3cr3tPass",
    "abcdefghijklmnop123456",
    "hunter2hunter2",
    "MIIEowIBAAKCAQEAq1",
    "ZmFrZWtleWJvZHk=",
    "TOPSECRET-1234",
]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 10_000])
def test_stream_redaction_catches_secrets_split_across_chunks(chunk: int) -> None:
    redactor = Redactor(extra_patterns=[r"TOPSECRET-\d+"])
    stream = StreamRedactor(redactor)
    out = "".join(stream.feed(PLANTED[i : i + chunk]) for i in range(0, len(PLANTED), chunk))
    out += stream.flush()
    for secret in CLEAR:
        assert secret not in out
    assert "postgresql://app:[REDACTED]@db.internal" in out


def test_output_buffer_caps_with_a_visible_note_and_keeps_head_and_tail() -> None:
    seen: list[str] = []
    buf = OutputBuffer(Redactor(), seen.append)
    buf.feed("FIRST\n" + "x" * 100 + "\n")
    for _ in range(2000):
        buf.feed("y" * 99 + "\n")
    buf.feed("LAST\n")
    buf.close()
    text = buf.text()
    assert buf.truncated
    assert len(text) < MAX_OUTPUT + 200
    assert text.startswith("FIRST") and text.rstrip().endswith("LAST")
    assert "output truncated" in text
    assert "".join(seen).count("\n") == 2003  # the live stream is not cut
