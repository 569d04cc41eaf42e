"""The one redactor: every string warroom stores, prints or sends passes through it.

Built-in patterns cover the usual secret shapes (cloud keys, chat and forge
tokens, JWTs, private-key blocks, credentials in URLs and DSNs, bearer
headers, `password=` pairs). Known secret *values* (every `env:NAME` the
config resolved, plus configured literals) are removed too, together with
their base64 and URL-encoded forms, because tools love to echo them encoded.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"

_BUILTIN: list[tuple[str, str]] = [
    # PEM private keys, whole block (also a block cut short at the end of the text)
    (
        "private_key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.|\n)*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    ),
    ("aws_access_key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),
    (
        "aws_secret",
        r"(?i)(aws_secret_access_key|aws_session_token)(\s*[=:]\s*)[\"']?[A-Za-z0-9/+=]{20,}",
    ),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{8,}"),
    ("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    ("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{16,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{30,}"),
    ("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    ("warroom_token", r"\bwr[tsi]_[A-Za-z0-9_-]{20,}"),
    # scheme://user:password@host  -> keep the user, hide the password
    # (the user may be empty, as in redis://:password@host)
    ("url_password", r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)([^\s@'\"/]+)(@)"),
    ("authorization", r"(?i)\b(authorization\s*[:=]\s*(?:bearer|basic|token)?\s*)([^\s'\",]+)"),
    ("bearer", r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"),
    (
        "secret_pair",
        r"(?i)\b((?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token"
        r"|client[_-]?secret|private[_-]?key|token)[\"']?\s*[=:]\s*[\"']?)([^\s'\",;&]+)",
    ),
    # libpq keyword form: password=... handled above; PGPASSWORD env dumps too
    ("pgpassword", r"(?i)\b(PGPASSWORD\s*=\s*)(\S+)"),
]


class Redactor:
    """Replaces secrets in text with MASK; safe to share across threads."""

    def __init__(
        self,
        *,
        secrets: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        min_secret_len: int = 6,
    ) -> None:
        self._patterns: list[re.Pattern[str]] = [re.compile(p) for _, p in _BUILTIN]
        self._patterns += [re.compile(p) for p in extra_patterns]
        literals: set[str] = set()
        for value in secrets:
            if not value or len(value) < min_secret_len:
                continue
            literals.update(_encoded_forms(value))
        # longest first so a secret that contains another is removed whole
        self._literals = sorted(literals, key=len, reverse=True)
        self._literal_re = (
            re.compile("|".join(re.escape(x) for x in self._literals)) if self._literals else None
        )

    def add_secret(self, value: str) -> Redactor:
        """A new redactor that also removes `value` (and its encodings)."""
        clone = Redactor.__new__(Redactor)
        clone._patterns = list(self._patterns)
        lits = set(self._literals) | (_encoded_forms(value) if len(value) >= 6 else set())
        clone._literals = sorted(lits, key=len, reverse=True)
        clone._literal_re = (
            re.compile("|".join(re.escape(x) for x in clone._literals)) if clone._literals else None
        )
        return clone

    def redact(self, text: str) -> str:
        if not text:
            return text
        if self._literal_re is not None:
            text = self._literal_re.sub(MASK, text)
        for pattern in self._patterns:
            text = pattern.sub(_replacement, text)
        return text

    def redact_obj(self, value: object) -> object:
        """Redact every string inside JSON-like data (dicts, lists, scalars)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_obj(v) for v in value]
        return value


def _replacement(match: re.Match[str]) -> str:
    groups = match.groups()
    if len(groups) >= 2:
        # keep the prefix (the key or scheme), hide the value; keep a trailing '@'
        tail = groups[2] if len(groups) >= 3 and groups[2] else ""
        return f"{groups[0]}{MASK}{tail}"
    return MASK


def _encoded_forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value)}
    b64 = base64.b64encode(raw).decode()
    forms.add(b64)
    forms.add(b64.rstrip("="))
    forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return {f for f in forms if f}


_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")


def _open_key_block(text: str) -> int:
    """Offset of a private-key BEGIN line with no END after it, else -1."""
    last = -1
    for match in _KEY_BEGIN.finditer(text):
        last = match.start()
    if last < 0 or _KEY_END.search(text, last):
        return -1
    return last


class StreamRedactor:
    """Redacts a stream that arrives in chunks, holding back a partial last line.

    A secret split across two chunks is still caught because text is only
    released line by line (and the held-back tail is redacted on flush).
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._pending = ""

    def feed(self, chunk: str) -> str:
        self._pending += chunk
        if "\n" not in self._pending:
            if len(self._pending) > 65536:  # a pathological unbroken line: release it
                out, self._pending = self._pending, ""
                return self._redactor.redact(out)
            return ""
        head, _, self._pending = self._pending.rpartition("\n")
        head += "\n"
        # A private key arrives over many lines: hold an open block back until
        # its END line (or the cap) so no line of it is released on its own.
        start = _open_key_block(head)
        if start >= 0 and len(head) - start + len(self._pending) <= 65536:
            self._pending = head[start:] + self._pending
            head = head[:start]
        return self._redactor.redact(head)

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return self._redactor.redact(out)


_default = Redactor()


def default_redactor() -> Redactor:
    return _default
