"""`warroom serve` as a real process: health, readiness with the worker, JSON errors."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASE_CONFIG
from tests.support import run_server

pytestmark = pytest.mark.integration


def test_serve_answers_health_and_becomes_ready(tmp_path: Path, db_url: str) -> None:
    with run_server(tmp_path, db_url=db_url, config=BASE_CONFIG) as server:
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        deadline = time.monotonic() + 15
        ready = httpx.get(f"{server.url}/readyz")
        while ready.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "worker": "ok"}
        assert "nosniff" in ready.headers["x-content-type-options"]


def test_readyz_reports_a_missing_worker(tmp_path: Path, sqlite_url: str) -> None:
    with run_server(tmp_path, db_url=sqlite_url, config=BASE_CONFIG, worker=False) as server:
        r = httpx.get(f"{server.url}/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["worker"] == "no worker has checked in"


def test_unknown_route_is_a_json_404(tmp_path: Path, sqlite_url: str) -> None:
    with run_server(tmp_path, db_url=sqlite_url, config=BASE_CONFIG) as server:
        r = httpx.get(f"{server.url}/nope")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
