"""The one exception tree of warroom.

    WarroomError                 base: message, field, hint
    ├── InvalidInput             malformed input (file, line, field named)
    │   └── ConfigError          warroom.yaml problems, one per `problems` entry
    ├── NotFound                 the thing named does not exist
    ├── Conflict                 state does not allow the change (already resolved, ...)
    ├── Unauthenticated          no or bad credentials
    ├── PermissionDenied         authenticated, but the role does not allow it
    ├── TooLarge                 body or value over a documented limit
    ├── RateLimited              over a rate limit; `retry_after` seconds
    └── Unavailable              a dependency (database, disk) is down; retry later

Errors say what failed and which input, never an HTTP status: `web/errors.py`
and `cli/errors.py` each map the tree once.
"""

from __future__ import annotations


class WarroomError(Exception):
    """Base of every error warroom raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InvalidInput(WarroomError):
    code = "invalid_input"


class ConfigError(InvalidInput):
    """A configuration file has one or more problems; each is one line."""

    code = "invalid_config"

    def __init__(self, problems: list[str], *, source: str = "warroom.yaml") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: {len(problems)} problem(s): " + "; ".join(problems))


class NotFound(WarroomError):
    code = "not_found"


class Conflict(WarroomError):
    code = "conflict"


class Unauthenticated(WarroomError):
    code = "unauthenticated"


class PermissionDenied(WarroomError):
    code = "forbidden"


class TooLarge(WarroomError):
    code = "too_large"


class RateLimited(WarroomError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(WarroomError):
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float = 2.0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
