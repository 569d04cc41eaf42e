"""Per-integration token buckets (in process): a source over its rate gets 429 + Retry-After."""

from __future__ import annotations

import threading
import time

from warroom.core.errors import RateLimited


class Buckets:
    """One bucket per integration id; capacity = one second of its rate (at least 1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}  # id -> (tokens, last monotonic)

    def take(self, key: str, *, rate: float, cost: float = 1.0, now: float | None = None) -> None:
        """Spend `cost` tokens. Raises RateLimited with the seconds until enough are back."""
        mono = time.monotonic() if now is None else now
        capacity = max(1.0, rate)
        with self._lock:
            tokens, last = self._state.get(key, (capacity, mono))
            tokens = min(capacity, tokens + (mono - last) * rate)
            if tokens < min(cost, capacity):
                wait = (min(cost, capacity) - tokens) / rate
                self._state[key] = (tokens, mono)
                raise RateLimited(
                    f"integration {key!r} is over its rate limit of {rate:g} requests/s",
                    retry_after=max(1.0, wait),
                )
            self._state[key] = (tokens - min(cost, capacity), mono)
