"""Token generation, hashing and signed links (stdlib crypto only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

from warroom.core.errors import Unauthenticated


def new_token(prefix: str) -> str:
    """A random bearer token with a recognisable prefix (so redaction and scanners find it)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """Tokens are high-entropy, so one SHA-256 is enough; passwords use scrypt."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        # still spend the time so a missing user is not faster than a wrong password
        hashlib.scrypt(password.encode(), salt=b"0" * 16, n=2**14, r=8, p=1, dklen=32)
        return False
    _, salt_b64, digest_b64 = stored.split("$", 2)
    digest = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt_b64), n=2**14, r=8, p=1, dklen=32
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], *, key: str, purpose: str) -> str:
    """Compact signed token `body.sig`; `purpose` is bound into the MAC."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(token: str, *, key: str, purpose: str, now: datetime) -> dict[str, Any]:
    """Verify and decode a token made by sign(); checks `exp` (epoch seconds).

    Raises Unauthenticated for anything forged, altered, expired or malformed.
    """
    try:
        body, mac_text = token.split(".", 1)
        expected = hmac.new(key.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac_text)):
            raise Unauthenticated("the link's signature does not match")
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise Unauthenticated("the link is malformed") from exc
    if not isinstance(payload, dict):
        raise Unauthenticated("the link is malformed")
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or now.timestamp() > exp:
        raise Unauthenticated("the link has expired", hint="ask for a new page or use the web UI")
    return payload


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
