"""The store under stress: a locked SQLite file and a full disk give 503, never 500, and lose nothing."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG
from tests.support import create_user_token, run_server, unavailable

pytestmark = pytest.mark.integration


def _declare(client: object, title: str) -> int:
    r = client.post("/api/v1/incidents", json={"title": title, "severity": "P3"})  # type: ignore[attr-defined]
    return int(r.status_code)


def test_locked_sqlite_answers_503_with_retry_after_and_recovers(tmp_path: Path) -> None:
    db_file = tmp_path / "locked.db"
    with run_server(tmp_path, db_url=f"sqlite:///{db_file}", config=BASE_CONFIG) as server:
        token = create_user_token(server.env, "resp", "responder")
        with server.client(token) as c:
            assert _declare(c, "before the lock") == 201
            held = threading.Event()
            release = threading.Event()

            def hold_lock() -> None:
                conn = sqlite3.connect(db_file, timeout=30, isolation_level=None)
                conn.execute("BEGIN EXCLUSIVE")
                held.set()
                release.wait(30)
                conn.execute("ROLLBACK")
                conn.close()

            t = threading.Thread(target=hold_lock)
            t.start()
            try:
                assert held.wait(10)
                r = c.post("/api/v1/incidents", json={"title": "during the lock", "severity": "P3"})
                assert r.status_code == 503, r.text
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error"]["code"] == "unavailable"
            finally:
                release.set()
                t.join(10)
            assert _declare(c, "after the lock") == 201
            titles = [i["title"] for i in c.get("/api/v1/incidents").json()["items"]]
            assert "before the lock" in titles and "after the lock" in titles
        assert "Traceback" not in server.log()


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    path.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if r.returncode != 0:
        unavailable(f"cannot mount a tmpfs for the disk-full test: {r.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_answers_503_then_recovers_without_restart(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "data") as data:
        db_file = data / "warroom.db"
        with run_server(tmp_path, db_url=f"sqlite:///{db_file}", config=BASE_CONFIG) as server:
            token = create_user_token(server.env, "resp", "responder")
            with server.client(token) as c:
                assert _declare(c, "before the disk filled") == 201
                filler = data / "filler"
                with filler.open("wb") as f, contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * 65536)
                statuses = []
                for i in range(40):  # bounded: until a write fails
                    code = _declare(c, f"while full {i} " + "x" * 200)
                    statuses.append(code)
                    if code != 201:
                        break
                assert statuses[-1] in (503, 507), statuses
                assert 500 not in statuses
                filler.unlink()
                time.sleep(0.5)
                assert _declare(c, "after space was freed") == 201
            assert "Traceback" not in server.log()
        check = sqlite3.connect(db_file)
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        check.close()
