"""Alert received -> first page delivered, on SQLite with a local SMTP server (aiosmtpd).

Starts a real `warroom serve` (embedded worker, SQLite) and an in-process
aiosmtpd server, sends N alerts one at a time through the Alertmanager
endpoint (or POST /api/v1/incidents when that endpoint is not built), and
measures from the moment the request is sent to the moment the SMTP server
has the page. The baseline, measured in the same run, is a direct smtplib
send of a message of the same size to the same SMTP server.

    .venv/bin/python bench/page_latency.py [--n 200] [--poll 1.0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent / "warroom")
AM_TOKEN = "bench-am-" + "x" * 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.perf_counter()
        text = (envelope.content or b"").decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("Subject:"):
                tag = next((w for w in line.split() if w.startswith("bench-")), None)
                if tag:
                    with self.event:
                        self.arrived.setdefault(tag, now)
                        self.event.notify_all()
        return "250 OK"

    def wait(self, tag: str, timeout: float = 30) -> float:
        with self.event:
            ok = self.event.wait_for(lambda: tag in self.arrived, timeout=timeout)
        if not ok:
            raise RuntimeError(f"page {tag} never arrived")
        return self.arrived[tag]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="alerts to send")
    ap.add_argument(
        "--poll", type=float, default=1.0, help="WARROOM_WORKER_POLL (default as shipped)"
    )
    args = ap.parse_args()

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    tmp = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    port = free_port()
    cfg = {
        "people": [{"id": "alice", "name": "Alice", "email": "alice@example.com"}],
        "schedules": [{"id": "primary", "layers": [{"rotation": "weekly", "members": ["alice"]}]}],
        "channels": {
            "email": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": "warroom@example.com",
                "rate_limit_per_minute": 100000,
            }
        },
        "escalation_policies": {
            "page-oncall": {"levels": [{"notify": ["schedule:primary"]}]},
            "notify-lead": {"levels": []},
            "ticket": {"levels": []},
            "backlog": {"levels": []},
        },
        "integrations": [{"id": "am", "type": "alertmanager", "token": "env:BENCH_AM_TOKEN"}],
        "routes": [{"match": [], "severity": "P0", "group_by": ["alertname"]}],
    }
    (tmp / "warroom.yaml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    env.update(
        WARROOM_DATABASE_URL=f"sqlite:///{tmp / 'warroom.db'}",
        WARROOM_CONFIG=str(tmp / "warroom.yaml"),
        WARROOM_SECRET_KEY="bench-" + "k" * 40,
        WARROOM_WORKER_POLL=str(args.poll),
        WARROOM_LOG_LEVEL="warning",
        BENCH_AM_TOKEN=AM_TOKEN,
    )
    subprocess.run([BIN, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT)
    subprocess.run(
        [BIN, "user", "add", "bench", "--email", "b@example.com", "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    token = (
        subprocess.run(
            [BIN, "token", "create", "bench", "--quiet"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [BIN, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = httpx.Client(base_url=url, timeout=30)
        am = client.post(
            "/api/v1/integrations/alertmanager",
            json={},
            headers={"Authorization": f"Bearer {AM_TOKEN}"},
        ).status_code not in (404, 405)
        path = (
            "Alertmanager webhook"
            if am
            else "POST /api/v1/incidents (no Alertmanager endpoint yet)"
        )

        def send(i: int) -> str:
            tag = f"bench-{i}"
            if am:
                body = {
                    "version": "4",
                    "status": "firing",
                    "receiver": "warroom",
                    "groupKey": tag,
                    "groupLabels": {"alertname": tag},
                    "commonLabels": {},
                    "commonAnnotations": {},
                    "externalURL": "http://am",
                    "truncatedAlerts": 0,
                    "alerts": [
                        {
                            "status": "firing",
                            "labels": {"alertname": tag, "severity": "critical"},
                            "annotations": {"summary": tag},
                            "startsAt": "2026-11-29T00:00:00Z",
                            "endsAt": "0001-01-01T00:00:00Z",
                            "generatorURL": "http://p",
                        }
                    ],
                }
                r = client.post(
                    "/api/v1/integrations/alertmanager",
                    json=body,
                    headers={"Authorization": f"Bearer {AM_TOKEN}"},
                )
            else:
                r = client.post(
                    "/api/v1/incidents",
                    json={"title": tag, "severity": "P0"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            r.raise_for_status()
            return tag

        send(-1)
        sink.wait("bench--1")  # warm-up
        page: list[float] = []
        for i in range(args.n):
            t0 = time.perf_counter()
            tag = send(i)
            page.append(sink.wait(tag) - t0)
            time.sleep(0.05)
        base: list[float] = []
        for i in range(args.n):
            msg = EmailMessage()
            msg["From"], msg["To"] = "warroom@example.com", "alice@example.com"
            msg["Subject"] = f"[warroom] P0 #{i}: bench-base-{i}"
            msg.set_content("x" * 600)
            t0 = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as s:
                s.send_message(msg)
            base.append(sink.wait(f"bench-base-{i}") - t0)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        controller.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def ms(v: float) -> str:
        return f"{v * 1000:8.1f} ms"

    print(f"alert -> first page delivered, SQLite + aiosmtpd, n={args.n}, worker poll {args.poll}s")
    print(f"  ingest path: {path}")
    print(
        f"  page     p50 {ms(pct(page, 0.5))}  p99 {ms(pct(page, 0.99))}  mean {ms(statistics.mean(page))}"
    )
    print(f"  baseline p50 {ms(pct(base, 0.5))}  p99 {ms(pct(base, 0.99))}  (direct smtplib send)")
    print(
        f"  ratio    p50 {pct(page, 0.5) / pct(base, 0.5):6.1f}x  p99 {pct(page, 0.99) / pct(base, 0.99):6.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
