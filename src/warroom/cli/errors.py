"""The CLI's one table from errors to exit codes and one-line messages.

Exit codes: 0 success; 1 a check found problems; 2 bad usage or bad input;
3 the server or database is unavailable; 4 not found / not allowed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer

from warroom.core import errors as e

T = TypeVar("T")

EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_DENIED = 4


def exit_code(exc: e.WarroomError) -> int:
    if isinstance(exc, e.Unavailable):
        return EXIT_UNAVAILABLE
    if isinstance(exc, e.NotFound | e.PermissionDenied | e.Unauthenticated):
        return EXIT_DENIED
    return EXIT_USAGE


def fail(message: str, *, code: int = EXIT_USAGE, hint: str | None = None) -> NoReturn:
    sys.stderr.write(f"warroom: error: {message}\n")
    if hint:
        sys.stderr.write(f"  hint: {hint}\n")
    raise typer.Exit(code)


@contextmanager
def handled() -> Iterator[None]:
    """Turn WarroomError into a one-line message and an exit code (no traceback)."""
    try:
        yield
    except e.ConfigError as exc:
        sys.stderr.write(f"warroom: error: {exc.source} has {len(exc.problems)} problem(s):\n")
        for problem in exc.problems:
            sys.stderr.write(f"  {exc.source}: {problem}\n")
        raise typer.Exit(EXIT_USAGE) from None
    except e.WarroomError as exc:
        fail(exc.message, code=exit_code(exc), hint=exc.hint)
    except KeyboardInterrupt:
        sys.stderr.write("warroom: interrupted\n")
        raise typer.Exit(130) from None


def run_handled(fn: Callable[[], T]) -> T:
    with handled():
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover
