"""Alert ingestion throughput: alerts/s through the Alertmanager endpoint vs a raw-insert baseline.

Starts a real `warroom serve --no-worker` on SQLite and on PostgreSQL, and in
the same run a baseline server: a minimal FastAPI app (same uvicorn, same
database) whose endpoint parses the JSON and upserts the alerts in one
transaction (`INSERT .. ON CONFLICT DO UPDATE`), nothing else. The load
generator sends batches of 1, 10 and 100 alerts per request from 8 threads
for a fixed time; every alert is new (fingerprints never repeat), and like
Alertmanager each request carries one group's alerts, 50 groups in turn, so
warroom also opens and joins incidents, writes timeline events and jobs. Prints alerts/s and the ratio warroom/baseline.

    .venv/bin/python bench/ingest.py [--seconds 5] [--concurrency 8] [--sizes 1,10,100] [--db sqlite,postgres]
    .venv/bin/python bench/ingest.py --baseline-server PORT DB_URL   (internal)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import Request

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent / "warroom")
TOKEN = "bench-ingest-" + "x" * 30
PG = os.environ.get("WARROOM_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/")
GROUPS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ baseline server
def baseline_server(port: int, db_url: str) -> None:
    """A minimal FastAPI endpoint: parse, then one transaction of upserts. Nothing else."""
    import uvicorn
    from fastapi import FastAPI
    from sqlalchemy import (
        JSON,
        Column,
        DateTime,
        Integer,
        MetaData,
        String,
        Table,
        create_engine,
        func,
    )
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    engine = (
        create_engine(db_url, pool_size=10)
        if "postgresql" in db_url
        else create_engine(db_url, connect_args={"check_same_thread": False, "timeout": 30})
    )
    meta = MetaData()
    alerts = Table(
        "bench_alerts",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("integration_id", String(100), nullable=False),
        Column("fingerprint", String(200), nullable=False),
        Column("status", String(20)),
        Column("labels", JSON),
        Column("annotations", JSON),
        Column("count", Integer, default=1),
        Column("last_seen", DateTime(timezone=True)),
        sqlite_autoincrement=True,
    )
    from sqlalchemy import UniqueConstraint

    alerts.append_constraint(UniqueConstraint("integration_id", "fingerprint"))
    meta.create_all(engine)
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    app = FastAPI()

    @app.post("/ingest")
    async def ingest(request: Request) -> dict[str, Any]:
        body = await request.json()
        rows = [
            {
                "integration_id": "bench",
                "fingerprint": a["fingerprint"],
                "status": a["status"],
                "labels": a["labels"],
                "annotations": a.get("annotations", {}),
                "count": 1,
            }
            for a in body["alerts"]
        ]

        def write() -> None:
            stmt = insert(alerts).values(rows)
            stmt = stmt.on_conflict_do_update(
                index_elements=["integration_id", "fingerprint"],
                set_={
                    "count": alerts.c.count + 1,
                    "last_seen": func.now(),
                    "status": stmt.excluded.status,
                },
            )
            with engine.begin() as conn:
                conn.execute(stmt)

        from fastapi.concurrency import run_in_threadpool

        await run_in_threadpool(write)
        return {"status": "ok", "received": len(rows)}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ------------------------------------------------------------------ processes
@contextlib.contextmanager
def spawn(args: list[str], env: dict[str, str], log: Path, health: str) -> Iterator[None]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextlib.contextmanager
def database(kind: str, tmp: Path, tag: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'{tag}.db'}"
        return
    import psycopg

    name = f"warroom_bench_{tag}_{uuid.uuid4().hex[:8]}"
    admin = {
        "host": "127.0.0.1",
        "port": 5432,
        "user": "postgres",
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield PG.rstrip("/") + "/" + name
    finally:
        with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@contextlib.contextmanager
def warroom(db_url: str, tmp: Path) -> Iterator[str]:
    port = free_port()
    config = tmp / f"warroom-{port}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "integrations": [
                    {
                        "id": "bench",
                        "type": "alertmanager",
                        "token": TOKEN,
                        "rate_limit_per_second": 1_000_000,
                    }
                ],
                "routes": [{"match": [], "severity": "P3", "group_by": ["alertname"]}],
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    env.update(
        WARROOM_DATABASE_URL=db_url,
        WARROOM_CONFIG=str(config),
        WARROOM_RUNBOOKS=str(tmp),
        WARROOM_SECRET_KEY="bench-" + "k" * 40,
        WARROOM_LOG_LEVEL="warning",
    )
    subprocess.run([BIN, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    args = [BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-worker", "--no-migrate"]
    with spawn(args, env, tmp / f"warroom-{port}.log", url + "/healthz"):
        yield url + "/api/v1/integrations/alertmanager"


@contextlib.contextmanager
def baseline(db_url: str, tmp: Path) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, __file__, "--baseline-server", str(port), db_url]
    with spawn(
        args, dict(os.environ), tmp / f"baseline-{port}.log", f"http://127.0.0.1:{port}/healthz"
    ):
        yield f"http://127.0.0.1:{port}/ingest"


# ------------------------------------------------------------------ load
def run_load(
    url: str, *, size: int, seconds: float, concurrency: int, prefix: str
) -> tuple[float, int, int]:
    """(alerts/s, alerts accepted, failed requests) over `seconds` from `concurrency` threads."""
    counter = itertools.count()
    lock = threading.Lock()
    done = [0, 0]
    stop = time.monotonic() + seconds

    def body() -> bytes:
        with lock:
            n = next(counter)
        start = n * size
        # like Alertmanager: one notification carries the alerts of one group
        alerts = [
            {
                "status": "firing",
                "labels": {
                    "alertname": f"Bench{n % GROUPS:02d}",
                    "instance": f"i{start + i}",
                },
                "annotations": {"summary": "bench"},
                "startsAt": "2026-11-29T00:00:00Z",
                "fingerprint": f"{prefix}-{start + i}",
            }
            for i in range(size)
        ]
        return json.dumps({"version": "4", "alerts": alerts}).encode()

    def worker() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        with httpx.Client(headers=headers, timeout=60) as client:
            while time.monotonic() < stop:
                try:
                    r = client.post(url, content=body())
                    ok = r.status_code < 300
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        done[0] += size
                    else:
                        done[1] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return done[0] / elapsed, done[0], done[1]


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline-server":
        baseline_server(int(sys.argv[2]), sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--sizes", default="1,10,100")
    ap.add_argument("--db", default="sqlite,postgres")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    print(
        f"ingest bench: {args.concurrency} threads, {args.seconds:g}s per cell, {GROUPS} groups, "
        f"every alert new; cpus={os.cpu_count()}"
    )
    print(
        f"{'db':<9} {'alerts/req':>10} {'warroom a/s':>12} {'baseline a/s':>13} {'ratio':>7} {'errors':>7}"
    )
    with tempfile.TemporaryDirectory(prefix="warroom-bench-") as t:
        tmp = Path(t)
        for kind in args.db.split(","):
            for size in sizes:
                with database(kind, tmp, "w") as wurl, warroom(wurl, tmp) as endpoint:
                    w_rate, _n, w_err = run_load(
                        endpoint,
                        size=size,
                        seconds=args.seconds,
                        concurrency=args.concurrency,
                        prefix="w",
                    )
                with database(kind, tmp, "b") as burl, baseline(burl, tmp) as endpoint:
                    b_rate, _n, b_err = run_load(
                        endpoint,
                        size=size,
                        seconds=args.seconds,
                        concurrency=args.concurrency,
                        prefix="b",
                    )
                ratio = w_rate / b_rate if b_rate else float("nan")
                print(
                    f"{kind:<9} {size:>10} {w_rate:>12.0f} {b_rate:>13.0f} {ratio:>7.2f} "
                    f"{w_err + b_err:>7}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
