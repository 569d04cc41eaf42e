"""A real disaster-recovery drill: PostgreSQL primary + streaming replica, failover through warroom.

Debian's PostgreSQL 15 binaries run two throwaway clusters on free loopback
ports in a temp dir owned by the `postgres` OS user (initdb refuses root).
Rows are written on the primary, the primary is killed (the failure), and
the disaster-recovery runbook's failover steps run through `warroom runbook
run ... --incident N` on the drill's incident. The promoted replica must
serve every row written before the failure; the drill records the measured
RTO and RPO. The shared cluster on 5432 is never touched.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from tests.conftest import BASE_CONFIG
from tests.pgcluster import PG_BIN, Cluster, as_postgres, init_cluster, owned_tempdir
from tests.support import ROOT, base_env, cli, free_port, write_config
from warroom.incidents.models import TimelineEvent
from warroom.jobs.runtime import Runtime
from warroom.postmortems import drills
from warroom.postmortems.runbookrefs import find, load_catalog
from warroom.runbooks.models import RunbookRun

pytestmark = pytest.mark.e2e

ROWS = 500
FAILOVER_STEPS = (
    "pg-fence-old-primary",
    "pg-promote",
    "pg-verify-writes",
    "pg-verify-data",
    "rto-rpo-check",
)


def _settings(cluster: Cluster) -> str:
    return (
        "\n# warroom DR drill test\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {cluster.port}\n"
        f"unix_socket_directories = '{cluster.socket_dir}'\n"
        "shared_buffers = 16MB\n"
        "max_connections = 20\n"
        "fsync = on\n"
        "wal_level = replica\n"
        "max_wal_senders = 4\n"
        "hot_standby = on\n"
        "wal_receiver_status_interval = 1s\n"
    )


@pytest.fixture
def pg_pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and a streaming replica in a temp dir owned by postgres; always torn down."""
    base = owned_tempdir("warroom_dr_")
    primary = Cluster(base / "primary", free_port(), base)
    replica = Cluster(base / "replica", free_port(), base)
    try:
        init_cluster(primary, settings=_settings(primary))
        as_postgres(
            str(PG_BIN / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(replica.datadir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        )
        with (replica.datadir / "postgresql.conf").open("a") as conf:
            conf.write(_settings(replica))
        replica.start()
        yield primary, replica
    finally:
        replica.stop_immediate()
        primary.stop_immediate()
        shutil.rmtree(base, ignore_errors=True)


def _wait(predicate: Callable[[], bool], what: str, tries: int = 200) -> None:
    for _ in range(tries):
        with contextlib.suppress(psycopg.Error):
            if predicate():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _run_steps(
    env: dict[str, str], number: int, params: dict[str, str], steps: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    args = [
        "runbook",
        "run",
        "disaster-recovery",
        "--yes",
        "--incident",
        str(number),
        "--as",
        "alice",
    ]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    for step in steps:
        args += ["--step", step]
    return cli(*args, env=env, timeout=300)


def test_dr_drill_fails_over_to_the_replica_and_records_rto_rpo(
    pg_pair: tuple[Cluster, Cluster],
    tmp_path: Path,
    make_runtime: Callable[..., Runtime],
) -> None:
    primary, replica = pg_pair
    runbooks = ROOT / "runbooks"
    if not (runbooks / "disaster-recovery.md").exists():
        pytest.fail("runbooks/disaster-recovery.md is missing from the repository")
    db_url = f"sqlite:///{tmp_path / 'warroom.db'}"
    rt = make_runtime(db_url)
    rt.settings = rt.settings.with_(runbooks_path=runbooks)
    env = base_env(db_url, write_config(tmp_path / "warroom.yaml", BASE_CONFIG))
    state_dir = tmp_path / "dr-state"
    params = {
        "pg_bin": str(PG_BIN),
        "pg_host": "127.0.0.1",
        "pg_user": "postgres",
        "primary_port": str(primary.port),
        "replica_port": str(replica.port),
        "primary_datadir": str(primary.datadir),
        "replica_datadir": str(replica.datadir),
        "state_dir": str(state_dir),
        "rto_target_seconds": "300",
        "rpo_target_seconds": "5",
    }

    # the drill: an incident flagged as a drill, no pages
    ref = find(load_catalog(runbooks), "disaster-recovery")
    with rt.db.transaction() as s:
        drill, incident = drills.start(
            s, config=rt.config, runbook=ref, actor="alice", now=rt.now()
        )
        drill_id, number, incident_id = drill.id, incident.number, incident.id

    # replication is streaming; from now on every commit waits for the replica (no data loss)
    _wait(
        lambda: primary.query("SELECT state FROM pg_stat_replication") == [("streaming",)],
        "the replica to stream",
    )
    primary.query("ALTER SYSTEM SET synchronous_standby_names = '*'")
    primary.query("SELECT pg_reload_conf()")
    _wait(
        lambda: primary.query("SELECT sync_state FROM pg_stat_replication") == [("sync",)],
        "synchronous replication",
    )

    # before the failure: the runbook checks the replica and writes its canary, then the app writes
    before = _run_steps(env, number, params, ("pg-replica-status", "pg-canary-write"))
    assert before.returncode == 0, before.stdout + before.stderr
    primary.query(
        "CREATE TABLE orders (id int PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    for start in range(0, ROWS, 100):
        primary.query(
            f"INSERT INTO orders (id) SELECT g FROM generate_series({start + 1}, {start + 100}) g"
        )
    last_written = primary.query("SELECT max(written_at) FROM orders")[0][0]
    assert isinstance(last_written, datetime)

    # the failure: the primary dies without a clean shutdown
    failed_at = time.monotonic()
    primary.stop_immediate()
    with pytest.raises(psycopg.OperationalError):
        primary.query("SELECT 1")

    # the failover, through warroom, on the drill's incident
    failover = _run_steps(env, number, params, FAILOVER_STEPS)
    output = failover.stdout + failover.stderr
    assert failover.returncode == 0, output
    assert replica.query("SELECT pg_is_in_recovery()") == [(False,)]
    rto = time.monotonic() - failed_at

    # the promoted replica serves every row written before the failure, and takes writes
    assert replica.query("SELECT count(*), max(id) FROM orders") == [(ROWS, ROWS)]
    newest = replica.query("SELECT max(written_at) FROM orders")[0][0]
    assert isinstance(newest, datetime)
    rpo = max((last_written - newest).total_seconds(), 0.0)
    assert rpo == 0.0
    replica.query("INSERT INTO orders (id) VALUES (100000)")
    assert re.search(r"canary id=\d+ written before the failure is present", output)
    reported = re.search(r"RTO: (\d+)s .*\n.*RPO: (\d+)s of committed writes lost", output)
    assert reported is not None, output
    assert int(reported.group(2)) == 0

    # the drill records what was measured; the runs sit on the drill's timeline
    with rt.db.transaction() as s:
        d = drills.get_or_raise(s, drill_id)
        drills.finish(
            s,
            d,
            actor="alice",
            now=datetime.now(UTC),
            rto=rto,
            rpo=rpo,
            notes=f"promoted replica on port {replica.port}; {ROWS} rows intact",
        )
    with rt.db.read() as s:
        d = drills.get_or_raise(s, drill_id)
        assert d.outcome == "passed"
        assert d.rto_seconds == pytest.approx(rto) and d.rpo_seconds == 0.0
        assert d.rto_seconds is not None and d.rto_seconds > 0
        runs = s.scalars(select(RunbookRun).where(RunbookRun.incident_id == incident_id)).all()
        assert [(r.runbook_id, r.outcome) for r in runs] == [("disaster-recovery", "succeeded")] * 2
        kinds = [
            e.kind
            for e in s.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == incident_id)
                .order_by(TimelineEvent.id)
            )
        ]
        assert kinds[0] == "incident.declared" and kinds[-1] == "incident.resolved"
        assert "drill.finished" in kinds
        assert any(k.startswith("runbook") for k in kinds)
    print(
        f"DR drill: RTO {rto:.2f}s (runbook says {reported.group(1)}s), RPO {rpo:.1f}s, {ROWS} rows"
    )
