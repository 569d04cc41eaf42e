"""Test helpers: free ports, a `warroom serve` subprocess, PostgreSQL databases, requirements."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("WARROOM_TEST_REQUIRE") == "1"
PG_HOST = os.environ.get("WARROOM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("WARROOM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("WARROOM_TEST_PG_USER", "postgres")
TEST_SECRET_KEY = "test-" + "k" * 40


def unavailable(reason: str) -> None:
    """Skip locally when a service or tool is missing; fail in CI (WARROOM_TEST_REQUIRE=1)."""
    if REQUIRE:
        pytest.fail(f"required for CI but unavailable: {reason}")
    pytest.skip(reason)


def need_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (apt-get install {name})")
        raise AssertionError  # unreachable
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_available() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (or session), dropped afterwards."""
    if not pg_available():
        unavailable(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}")
    name = f"warroom_test_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with contextlib.suppress(Exception):
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Server:
    """A real `warroom serve` process on a loopback port."""

    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    args: list[str]
    log_path: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def kill(self) -> None:
        """SIGKILL the whole process group, like a crash."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.process = _spawn(self.args, self.env, self.log_path)
        wait_healthy(self.url, self.process, self.log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def warroom_bin() -> str:
    return str(Path(sys.executable).parent / "warroom")


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
    )


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"warroom exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"warroom did not become healthy:\n{log_path.read_text()[-3000:]}")


def base_env(db_url: str, config_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    env.update(
        WARROOM_DATABASE_URL=db_url,
        WARROOM_CONFIG=str(config_path),
        WARROOM_RUNBOOKS=str(ROOT / "runbooks"),
        WARROOM_SECRET_KEY=TEST_SECRET_KEY,
        WARROOM_WORKER_POLL="0.1",
        WARROOM_LOG_LEVEL="info",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def run_server(
    tmp_path: Path,
    *,
    db_url: str,
    config: dict[str, Any],
    extra_env: dict[str, str] | None = None,
    worker: bool = True,
) -> Iterator[Server]:
    config_path = write_config(tmp_path / f"warroom-{uuid.uuid4().hex[:6]}.yaml", config)
    port = free_port()
    env = base_env(db_url, config_path, **(extra_env or {}))
    env.setdefault("WARROOM_PUBLIC_URL", f"http://127.0.0.1:{port}")
    # migrate explicitly first, like an operator would
    subprocess.run(
        [warroom_bin(), "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT
    )
    args = [warroom_bin(), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"]
    if not worker:
        args.append("--no-worker")
    log_path = tmp_path / f"server-{port}.log"
    proc = _spawn(args, env, log_path)
    server = Server(
        url=f"http://127.0.0.1:{port}", process=proc, env=env, args=args, log_path=log_path
    )
    try:
        wait_healthy(server.url, proc, log_path)
        yield server
    finally:
        server.stop()


def cli(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `warroom` command."""
    return subprocess.run(
        [warroom_bin(), *args],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def create_user_token(env: dict[str, str], name: str, role: str) -> str:
    """Create a user and an API token through the real CLI; returns the token."""
    r = cli("user", "add", name, "--email", f"{name}@example.com", "--role", role, env=env)
    assert r.returncode == 0, r.stderr
    r = cli("token", "create", name, "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def direct_token(db_url: str, name: str, role: str) -> str:
    """Create a user and token straight in the database (no CLI start-up cost).

    Use it where the CLI path is not what the test is about; `create_user_token`
    drives the real `warroom user add` / `warroom token create`.
    """
    from datetime import UTC, datetime

    from warroom.auth import service as auth
    from warroom.bootstrap import metadata
    from warroom.store.db import Database

    metadata()  # every table's model registered, as in the server
    db = Database(db_url)
    try:
        with db.transaction() as s:
            now = datetime.now(UTC)
            user = auth.get_user(s, name=name) or auth.create_user(s, name=name, role=role, now=now)
            return auth.create_token(s, user=user, name="test", now=now)
    finally:
        db.dispose()
