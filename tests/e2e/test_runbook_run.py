"""A runbook with every step kind against real services: Prometheus, PostgreSQL, SQLite, HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from tests.support import ROOT, free_port, pg_database, unavailable
from warroom.jobs.runtime import Runtime
from warroom.runbooks.executor import execute
from warroom.runbooks.loader import load_file
from warroom.runbooks.models import RunbookRun, StepRun

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def prometheus(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        unavailable("prometheus is not installed (apt-get install prometheus)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(
                    f"{url}/api/v1/query", params={"query": 'up{job="prometheus"}'}, timeout=2
                )
                if r.status_code == 200 and r.json()["data"]["result"]:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("prometheus did not scrape itself within 60s")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@contextlib.contextmanager
def http_receiver() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(
                {"path": self.path, "headers": dict(self.headers), "body": body.decode()}
            )
            payload = b'{"ok": true}'
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


RUNBOOK = """---
id: everything
title: Every step kind
owner: devops-team
params:
  job: {default: prometheus}
  ticket: {default: INC-1, pattern: "[A-Z]+-[0-9]+"}
---
# Every step kind

## Investigate

```bash {id=shell auto}
echo "shell says {{ job }}"
```

```promql {id=scrape auto}
up{job="{{ job }}"}
```

```sql {id=sqlite-db conn=lite auto}
SELECT name, qty FROM stock WHERE name = {{ job }} OR qty > 1 ORDER BY name
```

```sql {id=postgres-db conn=pg auto}
SELECT current_database() AS db, {{ ticket }} AS ticket
```

- [ ] Page the database team

## Mitigate

```http {id=notify conn=hook mutates}
POST /tickets/{{ ticket }}
Content-Type: application/json
X-Ticket: {{ ticket }}

{"ticket": "{{ ticket }}", "job": "{{ job }}"}
```
"""


def test_every_step_kind_runs_and_is_recorded(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    lite = tmp_path / "stock.db"
    engine = create_engine(f"sqlite:///{lite}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE stock (name text, qty int)"))
        conn.execute(text("INSERT INTO stock VALUES ('prometheus', 1), ('bolts', 5), ('nuts', 0)"))
    engine.dispose()
    path = tmp_path / "everything.md"
    path.write_text(RUNBOOK)
    rb = load_file(path)
    with prometheus(tmp_path) as prom, pg_database() as pg_url, http_receiver() as (hook, received):
        rt = make_runtime(
            sqlite_url,
            {
                "connections": {
                    "prometheus": {"type": "prometheus", "url": prom},
                    "lite": {"type": "sql", "url": f"sqlite:///{lite}"},
                    "pg": {"type": "sql", "url": pg_url},
                    "hook": {"type": "http", "url": hook},
                }
            },
        )
        events: list[tuple[str, str]] = []
        run = execute(
            rt,
            rb,
            params={"ticket": "OPS-42"},
            actor="alice",
            confirmed={"notify", "investigate-check"},
            on_event=lambda step, kind, _text: events.append((step.id, kind)),
        )
    with rt.db.read() as s:
        stored = s.get(RunbookRun, run.id)
        rows = {r.step_id: r for r in s.scalars(select(StepRun).where(StepRun.run_id == run.id))}
    assert stored is not None and stored.outcome == "succeeded"
    assert stored.file_hash == rb.file_hash and stored.params == {
        "job": "prometheus",
        "ticket": "OPS-42",
    }
    assert stored.finished_at is not None
    assert set(rows) == {
        "shell",
        "scrape",
        "sqlite-db",
        "postgres-db",
        "investigate-check",
        "notify",
    }
    assert all(r.outcome in ("succeeded", "ticked") for r in rows.values())
    assert rows["shell"].output == "shell says prometheus\n"
    scrape = rows["scrape"].output.splitlines()
    assert (
        scrape[0].split()[:3] == ["__name__", "instance", "job"]
        and scrape[0].split()[-1] == "value"
    )
    assert scrape[2].split()[0] == "up" and scrape[2].split()[-1] == "1"
    assert [ln.split() for ln in rows["sqlite-db"].output.splitlines()[2:4]] == [
        ["bolts", "5"],
        ["prometheus", "1"],
    ]
    pg_name = make_url(pg_url).database
    assert rows["postgres-db"].output.splitlines()[2].split() == [pg_name, "OPS-42"]
    assert (
        rows["investigate-check"].actor == "alice" and rows["investigate-check"].outcome == "ticked"
    )
    assert rows["notify"].exit_status == 201 and "HTTP 201" in rows["notify"].output
    assert received == [
        {
            "path": "/tickets/OPS-42",
            "headers": received[0]["headers"],
            "body": '{"ticket": "OPS-42", "job": "prometheus"}',
        }
    ]
    assert received[0]["headers"]["X-Ticket"] == "OPS-42"  # type: ignore[index]
    assert rows["notify"].rendered.startswith(f"POST {hook}/tickets/OPS-42")
    assert ("shell", "start") in events and ("shell", "output") in events


def test_pool_runbook_shows_twenty_idle_connections_by_state(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rb = load_file(ROOT / "runbooks" / "database-connection-pool-exhaustion.md")
    with pg_database() as pg_url, contextlib.ExitStack() as stack:
        url = make_url(pg_url)
        conns = [
            stack.enter_context(
                psycopg.connect(
                    host=url.host,
                    port=url.port,
                    user=url.username,
                    dbname=url.database,
                    application_name="pool-test",
                    autocommit=True,
                )
            )
            for _ in range(20)
        ]
        assert len(conns) == 20
        rt = make_runtime(
            sqlite_url, {"connections": {"primary-db": {"type": "sql", "url": pg_url}}}
        )
        run = execute(
            rt,
            rb,
            params={},
            actor="alice",
            select={
                "connection-usage",
                "connections-by-state",
                "connections-by-client",
                "idle-in-transaction",
            },
        )
        # the mitigation runs too (nothing is old enough to terminate: the SQL and binds are valid)
        fix = execute(
            rt,
            rb,
            params={"application": "pool-test", "idle_minutes": "5"},
            actor="carol",
            select=["terminate-idle-in-transaction"],
            confirmed={"terminate-idle-in-transaction"},
        )
        with rt.db.read() as s:
            rows = {
                r.step_id: r for r in s.scalars(select(StepRun).where(StepRun.run_id == run.id))
            }
            (fixed,) = s.scalars(select(StepRun).where(StepRun.run_id == fix.id)).all()
        assert all(not c.closed for c in conns)
    assert fix.outcome == "succeeded", fixed.output
    assert "(0 rows)" in fixed.output
    assert run.outcome == "succeeded", {k: r.output for k, r in rows.items()}
    by_state = {
        line.rsplit(None, 1)[0].strip(): int(line.rsplit(None, 1)[1])
        for line in rows["connections-by-state"].output.splitlines()[2:]
        if line and not line.startswith("(")
    }
    assert by_state["idle"] >= 20
    client_lines = [
        ln for ln in rows["connections-by-client"].output.splitlines() if "pool-test" in ln
    ]
    assert client_lines and client_lines[0].split()[-2:] == ["idle", "20"]
    usage = rows["connection-usage"].output.splitlines()[2].split()
    assert int(usage[0]) >= 21


def test_runbook_output_json_is_stable(tmp_path: Path) -> None:
    """`show --json` keys are the documented contract for tools built on it."""
    from tests.support import cli

    r = cli(
        "runbook",
        "show",
        "disaster-recovery",
        "--json",
        env={**os.environ, "WARROOM_RUNBOOKS": str(ROOT / "runbooks")},
    )
    data = json.loads(r.stdout)
    assert {
        "id",
        "title",
        "owner",
        "severity",
        "triggers",
        "params",
        "step_list",
        "file_hash",
    } <= set(data)
