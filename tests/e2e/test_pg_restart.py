"""PostgreSQL crashes and comes back under a running warroom (R5): 503 while down, never 500,
recovery without restarting warroom, nothing acknowledged lost.

A private throwaway cluster is used so the shared one on 5432 is never restarted.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASE_CONFIG
from tests.pgcluster import Cluster, as_postgres, init_cluster, owned_tempdir
from tests.support import direct_token, free_port, run_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def private_pg() -> Iterator[Cluster]:
    base = owned_tempdir("warroom_pgrestart_")
    cluster = Cluster(base / "data", free_port(), base)
    try:
        init_cluster(
            cluster,
            settings=(
                "\nlisten_addresses = '127.0.0.1'\n"
                f"port = {cluster.port}\n"
                f"unix_socket_directories = '{base}'\n"
                "shared_buffers = 16MB\nmax_connections = 40\n"
            ),
        )
        cluster.query("CREATE DATABASE warroom")
        yield cluster
    finally:
        cluster.stop_immediate()
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_crash_gives_503_then_recovers_without_a_warroom_restart(
    tmp_path: Path, private_pg: Cluster
) -> None:
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:{private_pg.port}/warroom"
    with run_server(tmp_path, db_url=db_url, config=BASE_CONFIG) as server:
        token = direct_token(db_url, "resp", "responder")
        with server.client(token) as c:
            before = c.post(
                "/api/v1/incidents", json={"title": "before the crash", "severity": "P3"}
            )
            assert before.status_code == 201, before.text

            private_pg.stop_immediate()  # the crash: no clean shutdown
            down = c.post("/api/v1/incidents", json={"title": "while down", "severity": "P3"})
            assert down.status_code == 503, down.text
            assert int(down.headers["retry-after"]) >= 1
            assert down.json()["error"]["code"] == "unavailable"
            assert httpx.get(f"{server.url}/healthz").status_code == 200  # the process is fine
            assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 503

            as_postgres(
                "/usr/lib/postgresql/15/bin/pg_ctl",
                "start",
                "-D",
                str(private_pg.datadir),
                "-w",
                "-t",
                "60",
                "-l",
                str(private_pg.datadir.parent / "restart.log"),
            )
            codes = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # bounded: recovery needs no warroom restart
                r = c.post(
                    "/api/v1/incidents", json={"title": "after the restart", "severity": "P3"}
                )
                codes.append(r.status_code)
                if r.status_code == 201:
                    break
                time.sleep(0.5)
            assert codes[-1] == 201, codes
            assert set(codes) <= {201, 503}, codes
            titles = [i["title"] for i in c.get("/api/v1/incidents").json()["items"]]
            assert "before the crash" in titles and "after the restart" in titles
            assert "while down" not in titles  # answered 503, so the sender knows to retry
        log = server.log()
        assert "Traceback" not in log
        assert " 500 " not in log
