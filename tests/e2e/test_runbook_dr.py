"""The disaster-recovery runbook fails a real PostgreSQL 15 primary over to its streaming replica."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from tests.support import ROOT, free_port, unavailable
from warroom.jobs.runtime import Runtime
from warroom.runbooks.executor import execute
from warroom.runbooks.loader import load_file
from warroom.runbooks.models import StepRun

pytestmark = pytest.mark.e2e
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and pg_ctl refuse to run as root
    return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else args


def _run(args: list[str]) -> None:
    subprocess.run(_as_postgres(args), check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def primary_and_replica() -> Iterator[dict[str, str]]:
    if not (PG_BIN / "pg_ctl").exists():
        unavailable("PostgreSQL 15 binaries are missing (apt-get install postgresql-15)")
    base = Path(tempfile.mkdtemp(prefix="wr-dr-", dir="/tmp"))
    base.chmod(0o755)
    if os.getuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary, replica = base / "primary", base / "replica"
    pport, rport = free_port(), free_port()
    started: list[Path] = []
    opts = f"-c listen_addresses=127.0.0.1 -k {base} -c fsync=off"
    try:
        _run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(primary),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]
        )
        _run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(primary),
                "-o",
                f"-p {pport} {opts}",
                "-l",
                str(base / "primary.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        started.append(primary)
        _run(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(pport),
                "-U",
                "postgres",
                "-D",
                str(replica),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ]
        )
        _run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(replica),
                "-o",
                f"-p {rport} {opts}",
                "-l",
                str(base / "replica.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        started.append(replica)
        yield {
            "pg_bin": str(PG_BIN),
            "pg_host": "127.0.0.1",
            "pg_user": "postgres",
            "primary_port": str(pport),
            "replica_port": str(rport),
            "primary_datadir": str(primary),
            "replica_datadir": str(replica),
            "state_dir": str(base / "state"),
            "rto_target_seconds": "600",
        }
    finally:
        for datadir in started:
            with contextlib.suppress(Exception):
                subprocess.run(
                    _as_postgres(
                        [
                            str(PG_BIN / "pg_ctl"),
                            "-D",
                            str(datadir),
                            "-m",
                            "immediate",
                            "-w",
                            "stop",
                        ]
                    ),
                    capture_output=True,
                    timeout=60,
                )
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_failover_section_promotes_the_replica_and_keeps_committed_rows(
    make_runtime: Callable[..., Runtime], sqlite_url: str
) -> None:
    rt = make_runtime(sqlite_url)
    rb = load_file(ROOT / "runbooks" / "disaster-recovery.md")
    steps = [
        "pg-canary-write",
        "pg-primary-status",
        "pg-replica-status",
        "pg-fence-old-primary",
        "pg-promote",
        "pg-verify-writes",
        "pg-verify-data",
        "rto-rpo-check",
    ]
    with primary_and_replica() as params:
        # the replica needs a moment to replay the canary; the runbook checks, we only wait
        run = execute(
            rt,
            rb,
            params=params,
            actor="alice",
            select=steps[:1],
            confirmed={"pg-canary-write"},
        )
        assert run.outcome == "succeeded"
        # the drill fails over once the replica has replayed the canary (bounded wait)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(
                    host="127.0.0.1",
                    port=int(params["replica_port"]),
                    user="postgres",
                    dbname="postgres",
                    connect_timeout=2,
                ) as conn,
            ):
                row = conn.execute("SELECT count(*) FROM warroom_dr_canary").fetchone()
                if row and row[0] >= 1:
                    break
            time.sleep(0.1)
        run = execute(
            rt,
            rb,
            params=params,
            actor="alice",
            select=steps[1:],
            confirmed={"pg-fence-old-primary", "pg-promote"},
        )
        with rt.db.read() as s:
            rows = s.scalars(
                select(StepRun).where(StepRun.run_id == run.id).order_by(StepRun.id)
            ).all()
        outcomes = {r.step_id: (r.outcome, r.output) for r in rows}
        assert run.outcome == "succeeded", "\n".join(f"{k}: {v}" for k, v in outcomes.items())
        assert [r.step_id for r in rows] == steps[1:]
        assert "t" in outcomes["pg-replica-status"][1]  # in_recovery before the promotion
        assert "replica promoted" in outcomes["pg-promote"][1]
        assert "after failover" in outcomes["pg-verify-writes"][1]
        assert "written before the failure is present" in outcomes["pg-verify-data"][1]
        assert "RTO:" in outcomes["rto-rpo-check"][1]
        assert "RPO: 0s" in outcomes["rto-rpo-check"][1]
