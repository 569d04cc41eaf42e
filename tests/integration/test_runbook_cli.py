"""`warroom runbook …` end to end through the real command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support import ROOT, cli, write_config
from warroom.alerts.models import Alert
from warroom.bootstrap import metadata
from warroom.core.clock import SystemClock
from warroom.incidents import service as incidents
from warroom.incidents.models import TimelineEvent
from warroom.store.db import Database
from warroom.store.migrate import upgrade

pytestmark = pytest.mark.integration
LINT = ROOT / "tests" / "fixtures" / "runbooks" / "lint"

EXPECTED = [
    ("auto-mutates.md", 11, "error", "'auto' and 'mutates' together"),
    ("bad-front-matter.md", 3, "error", "invalid front matter"),
    ("bad-timeout.md", 11, "error", "unparsable timeout 'soon'"),
    ("bad-trigger.md", 7, "error", "bad matcher"),
    ("duplicate-step.md", 15, "error", "duplicate step id 'same'"),
    ("review-overdue.md", 6, "warning", "review overdue since 2020-01-31"),
    ("sql-no-conn.md", 11, "error", "sql step without conn="),
    ("twin-b.md", 2, "error", "duplicate runbook id 'twin'"),
    ("undeclared-param.md", 11, "error", "parameter 'namespace' is used but not declared"),
    ("unknown-key.md", 7, "error", "unknown front matter key 'colour'"),
    ("unknown-owner.md", 4, "error", "owner 'nobody-team' is not a person or team"),
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = write_config(
        tmp_path / "warroom.yaml",
        {
            "people": [{"id": "carol", "name": "Carol", "email": "carol@example.com"}],
            "teams": [
                {"id": "devops-team", "name": "DevOps", "lead": "carol", "members": ["carol"]}
            ],
            "redact_patterns": [r"TOPSECRET-\d+"],
        },
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    base.update(
        WARROOM_CONFIG=str(config),
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'warroom.db'}",
        WARROOM_RUNBOOKS=str(ROOT / "runbooks"),
        WARROOM_LOG_LEVEL="warning",
    )
    return base


def test_lint_reports_each_mistake_class_at_its_line(env: dict[str, str]) -> None:
    r = cli("runbook", "lint", str(LINT), env=env)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    for name, line, level, text in EXPECTED:
        prefix = f"{LINT / name}:{line}: {level}: "
        assert any(ln.startswith(prefix) and text in ln for ln in lines), (prefix, text, lines)
    assert len(lines) == len(EXPECTED)
    r = cli("runbook", "lint", "--format", "json", str(LINT), env=env)
    data = json.loads(r.stdout)
    assert r.returncode == 1 and data["errors"] == 10 and data["warnings"] == 1
    assert {p["file"].rsplit("/", 1)[1] for p in data["problems"]} == {e[0] for e in EXPECTED}


def test_starter_folder_is_lint_clean_with_the_sample_config(env: dict[str, str]) -> None:
    env = {**env, "WARROOM_CONFIG": str(ROOT / "warroom.yaml")}
    r = cli("runbook", "lint", "runbooks/", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""
    assert "6 runbook(s), 0 error(s), 0 warning(s)" in r.stderr
    r = cli("runbook", "index", "--check", env=env)
    assert r.returncode == 0, r.stdout
    r = cli("runbook", "lint", str(ROOT / "runbooks" / "README.md"), env=env)
    assert r.returncode == 0  # the quick-reference blocks are valid steps


def test_list_show_and_bad_input(env: dict[str, str]) -> None:
    r = cli("runbook", "list", "--json", env=env)
    assert r.returncode == 0
    assert len(json.loads(r.stdout)["runbooks"]) == 6
    r = cli("runbook", "show", "high-cpu-usage", "--json", env=env)
    data = json.loads(r.stdout)
    assert data["owner"] == "devops-team" and any(s["mutates"] for s in data["step_list"])
    r = cli("runbook", "show", "nope", env=env)
    assert r.returncode == 4 and "no runbook 'nope'" in r.stderr
    r = cli("runbook", "run", "high-cpu-usage", "--param", "namespace=x;id", "--dry-run", env=env)
    assert r.returncode == 2 and "does not match the pattern" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("runbook", "run", "high-cpu-usage", "--param", "nonsense", env=env)
    assert r.returncode == 2 and "expected NAME=VALUE" in r.stderr
    r = cli("runbook", "show", str(LINT / "bad-front-matter.md"), env=env)
    assert r.returncode == 2 and "bad-front-matter.md:3: invalid front matter" in r.stderr


def test_dry_run_renders_and_runs_nothing(env: dict[str, str], tmp_path: Path) -> None:
    r = cli(
        "runbook",
        "run",
        "high-cpu-usage",
        "--dry-run",
        "--phase",
        "mitigate",
        "--param",
        "replicas=12",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert 'kubectl -n "${WR_namespace}" scale deployment/"${WR_deployment}"' in r.stdout
    assert "# WR_replicas='12'" in r.stdout
    assert not (tmp_path / "warroom.db").exists()


def _runbook(tmp_path: Path) -> Path:
    path = tmp_path / "leaky.md"
    path.write_text(
        "---\nid: leaky\ntitle: Leaky\nparams:\n  who: {default: ops}\n---\n## Investigate\n"
        "```bash {id=look auto}\necho hello {{ who }}\necho AKIAIOSFODNN7EXAMPLE TOPSECRET-77\n"
        "echo 'redis://:hunter2hunter2@cache:6379/0'\n```\n"
        f"## Mitigate\n```bash {{id=change mutates}}\ntouch {tmp_path / 'CHANGED'}\n```\n"
    )
    return path


def test_mutating_step_without_terminal_or_yes_is_refused(
    env: dict[str, str], tmp_path: Path
) -> None:
    rb = _runbook(tmp_path)
    r = cli("runbook", "run", str(rb), env=env, input="")
    assert r.returncode == 1
    assert "changes things (mutates) and was not confirmed" in r.stdout
    assert not (tmp_path / "CHANGED").exists()
    for secret in ("AKIAIOSFODNN7EXAMPLE", "TOPSECRET-77", "hunter2hunter2"):
        assert secret not in r.stdout + r.stderr
    assert "hello ops" in r.stdout
    r = cli("runbook", "run", str(rb), "--yes", "--json", "--as", "alice", env=env, input="")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["run"]["outcome"] == "succeeded" and data["run"]["actor"] == "alice"
    assert [s["outcome"] for s in data["steps"]] == ["succeeded", "succeeded"]
    assert (tmp_path / "CHANGED").exists()
    for secret in ("AKIAIOSFODNN7EXAMPLE", "TOPSECRET-77", "hunter2hunter2"):
        assert secret not in r.stdout
    db = Database(env["WARROOM_DATABASE_URL"])
    try:
        with db.read() as s:
            from warroom.runbooks.models import StepRun

            outputs = " ".join(row.output for row in s.scalars(select(StepRun)))
        assert "[REDACTED]" in outputs and "AKIA" not in outputs and "hunter2" not in outputs
    finally:
        db.dispose()


def test_run_with_incident_posts_on_its_timeline(env: dict[str, str], tmp_path: Path) -> None:
    metadata()
    db = Database(env["WARROOM_DATABASE_URL"])
    upgrade(db)
    from warroom.config.schema import Config

    try:
        with db.transaction() as s:
            inc = incidents.create(
                s,
                config=Config(),
                title="CPU",
                severity="P2",
                actor="alice",
                now=SystemClock().now(),
            )
            number, incident_id = inc.number, inc.id
            now = SystemClock().now()
            s.add(
                Alert(
                    integration_id="am",
                    fingerprint="f1",
                    status="firing",
                    name="HighCPU",
                    labels={"alertname": "HighCPU", "who": "db-7"},
                    first_seen=now,
                    last_seen=now,
                    incident_id=incident_id,
                )
            )
        rb = _runbook(tmp_path)
        r = cli(
            "runbook",
            "run",
            str(rb),
            "--step",
            "look",
            "--incident",
            str(number),
            env=env,
            input="",
        )
        assert r.returncode == 0, r.stdout + r.stderr
        with db.read() as s:
            events = s.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == incident_id)
                .order_by(TimelineEvent.id)
            ).all()
        kinds = [e.kind for e in events if e.kind.startswith("runbook.")]
        assert kinds == ["runbook.started", "runbook.step", "runbook.finished"]
        step = next(e for e in events if e.kind == "runbook.step")
        # `who` was not given: the incident's alert label fills it
        assert step.data["outcome"] == "succeeded" and "hello db-7" in step.data["output"]
        assert "AKIA" not in json.dumps(step.data)
        r = cli("runbook", "run", str(rb), "--incident", "999", env=env, input="")
        assert r.returncode == 4 and "incident 999 does not exist" in r.stderr
    finally:
        db.dispose()


def test_stale_and_review(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "rb"
    folder.mkdir()
    text = "---\nid: old\ntitle: Old\nreview_every: 30d\nlast_reviewed: 2020-01-01\nreviewed_by: bob\n---\nbody\n"
    (folder / "old.md").write_text(text)
    r = cli("runbook", "stale", "--runbooks", str(folder), env=env)
    assert r.returncode == 1 and "review overdue: old" in r.stdout
    r = cli(
        "runbook",
        "review",
        "old",
        "--by",
        "carol",
        "--on",
        "2026-11-29",
        "--runbooks",
        str(folder),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert (folder / "old.md").read_text() == text.replace("2020-01-01", "2026-11-29").replace(
        "bob", "carol"
    )
    r = cli("runbook", "stale", "--runbooks", str(folder), "--at", "2026-12-01", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["overdue"] == []


def test_interactive_terminal_asks_before_mutating_and_for_manual_steps(
    env: dict[str, str], tmp_path: Path
) -> None:
    import pty
    import select as select_
    import subprocess
    import time

    from tests.support import warroom_bin

    rb = tmp_path / "ask.md"
    rb.write_text(
        "---\nid: ask\ntitle: Ask\n---\n## Investigate\n- [ ] Told the team\n"
        f"## Mitigate\n```bash {{id=change mutates}}\ntouch {tmp_path / 'CHANGED'}\n```\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [warroom_bin(), "runbook", "run", str(rb), "--as", "dana"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "COLUMNS": "200"},
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    answers = [(b"done?", b"y\n"), (b"run it?", b"y\n")]
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select_.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
            if answers and answers[0][0] in seen:
                os.write(master, answers.pop(0)[1])
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "CHANGES THINGS" in text and (tmp_path / "CHANGED").exists()
    assert "investigate-check ticked" in text and "change succeeded" in text
    assert "run 1 of ask: succeeded" in text
