"""Throwaway PostgreSQL 15 clusters for tests, run as the `postgres` OS user (initdb refuses root).

They listen on free loopback ports in temp dirs; the shared cluster on 5432
is never touched.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = list(args)
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args[:2])} failed: {proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Cluster:
    datadir: Path
    port: int
    socket_dir: Path

    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=5"

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def start(self) -> None:
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            "start",
            "-D",
            str(self.datadir),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.datadir.parent / f"{self.datadir.name}.log"),
        )

    def stop_immediate(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                as_postgres(
                    str(PG_BIN / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.datadir),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                )


def init_cluster(cluster: Cluster, *, settings: str) -> None:
    """initdb with trust auth on loopback, append `settings`, start it."""
    as_postgres(
        str(PG_BIN / "initdb"),
        "-D",
        str(cluster.datadir),
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    )
    with (cluster.datadir / "postgresql.conf").open("a") as conf:
        conf.write(settings)
    cluster.start()


def owned_tempdir(prefix: str) -> Path:
    """A temp dir the postgres OS user owns; skips (fails in CI) when clusters cannot run here."""
    import pwd
    import tempfile

    from tests.support import unavailable

    for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (PG_BIN / tool).exists():
            unavailable(f"{PG_BIN / tool} missing (apt-get install postgresql-15)")
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        unavailable("no postgres OS user to run initdb as")
        raise
    if os.geteuid() not in (0, pg_user.pw_uid):
        unavailable("needs root (to run PostgreSQL as the postgres user) or the postgres user")
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
    return base
