"""Shared fixtures: databases (SQLite and PostgreSQL), runtimes, config builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import pg_database
from warroom.bootstrap import build_runtime
from warroom.config.loader import parse_config
from warroom.core.clock import FrozenClock
from warroom.jobs.runtime import Runtime
from warroom.settings import Settings
from warroom.store.migrate import upgrade

BASE_CONFIG: dict[str, Any] = {
    "organization": "Test Corp",
    "people": [
        {"id": "alice", "name": "Alice", "email": "alice@example.com", "role": "commander"},
        {"id": "bob", "name": "Bob", "email": "bob@example.com"},
        {"id": "carol", "name": "Carol Lead", "email": "carol@example.com", "role": "commander"},
    ],
    "teams": [
        {"id": "devops-team", "name": "DevOps", "lead": "carol", "members": ["alice", "bob"]}
    ],
}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL; the test runs once on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warroom.db'}"
    else:
        with pg_database() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warroom.db'}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Builder: a migrated runtime on a given URL with a config dict (merged over BASE_CONFIG)."""
    made: list[Runtime] = []

    def _make(db_url: str, config: dict[str, Any] | None = None, clock: Any = None) -> Runtime:
        cfg = parse_config({**BASE_CONFIG, **(config or {})})
        settings = Settings(
            database_url=db_url,
            config_path=tmp_path / "warroom.yaml",
            runbooks_path=Path(__file__).resolve().parent.parent / "runbooks",
            secret_key="test-" + "k" * 40,
            public_url="http://127.0.0.1:9",
            worker_poll_seconds=0.05,
        )
        rt = build_runtime(settings, config=cfg, clock=clock)
        upgrade(rt.db)
        made.append(rt)
        return rt

    yield _make
    for rt in made:
        rt.db.dispose()
