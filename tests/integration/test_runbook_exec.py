"""The executor on real processes and databases: injection, timeouts, redaction, records."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text

from warroom.core.errors import InvalidInput
from warroom.jobs.runtime import Runtime
from warroom.runbooks import params as prm
from warroom.runbooks.executor import execute, run_shell
from warroom.runbooks.loader import load_file
from warroom.runbooks.model import Runbook
from warroom.runbooks.models import RunbookRun, StepRun

pytestmark = pytest.mark.integration

HOSTILE = [
    "x; touch {m}",
    "$(touch {m})",
    "`touch {m}`",
    "' OR 1=1 --",
    '"; touch {m}; echo "',
    "x' ; touch {m} #",
    "{{{{ v }}}}",
]


def write(tmp_path: Path, name: str, text_: str) -> Runbook:
    path = tmp_path / name
    path.write_text(text_)
    return load_file(path)


def steps_of(rt: Runtime, run_id: int) -> list[StepRun]:
    with rt.db.read() as s:
        return list(s.scalars(select(StepRun).where(StepRun.run_id == run_id).order_by(StepRun.id)))


def pid_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # a zombie has exited; only its parent's bookkeeping is left


@pytest.mark.parametrize("template", HOSTILE)
def test_permissive_pattern_still_executes_nothing_extra(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime], template: str
) -> None:
    marker = tmp_path / "MARKER"
    value = template.format(m="MARKER")  # relative: the steps run in tmp_path
    target = tmp_path / "target.db"
    engine = create_engine(f"sqlite:///{target}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x text)"))
    engine.dispose()
    rt = make_runtime(
        sqlite_url, {"connections": {"target": {"type": "sql", "url": f"sqlite:///{target}"}}}
    )
    rb = write(
        tmp_path,
        "inj.md",
        "---\nid: inj\ntitle: t\nparams:\n  v: {pattern: '.*'}\n---\n## Investigate\n"
        "```bash {id=contexts}\n"
        "echo {{ v }}\n"
        'echo "quoted {{ v }}"\n'
        "echo $(echo {{ v }})\n"
        'echo "$(echo "{{ v }}")"\n'
        "echo `echo {{ v }}`\n"
        "cat <<EOF\n{{ v }}\nEOF\n"
        "```\n"
        "```sql {id=bound conn=target}\nSELECT {{ v }} AS v, (SELECT count(*) FROM t) AS n\n```\n",
    )
    run = execute(rt, rb, params={"v": value}, actor="alice", cwd=tmp_path)
    assert run.outcome == "succeeded"
    assert not marker.exists()
    shell, sql = steps_of(rt, run.id)
    assert shell.output.count(value) == 6
    assert value in sql.output and "(1 row)" in sql.output
    with create_engine(f"sqlite:///{target}").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0


@pytest.mark.parametrize("value", ["a\nb", "v\r\nX-Injected: 1"])
def test_line_breaks_are_refused_before_anything_runs(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime], value: str
) -> None:
    rt = make_runtime(sqlite_url)
    marker = tmp_path / "RAN"
    rb = write(
        tmp_path,
        "nl.md",
        f"---\nid: nl\ntitle: t\nparams:\n  v: {{pattern: '.*'}}\n---\n## Investigate\n"
        f"```bash {{id=a}}\ntouch {marker}\necho {{{{ v }}}}\n```\n",
    )
    with pytest.raises(InvalidInput, match="control characters"):
        execute(rt, rb, params={"v": value}, actor="alice")
    assert not marker.exists()
    with rt.db.read() as s:
        assert s.scalars(select(RunbookRun)).all() == []


def test_timeout_kills_the_whole_process_group(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    pidfile = tmp_path / "bg.pid"
    rb = write(
        tmp_path,
        "hang.md",
        "---\nid: hang\ntitle: t\n---\n## Investigate\n"
        f"```bash {{id=hang timeout=1s}}\nsleep 1000 &\necho $! > {pidfile}\necho started\nsleep 1000\n```\n"
        "```bash {id=after}\necho never\n```\n",
    )
    run = execute(rt, rb, params={}, actor="alice")
    assert run.outcome == "failed"
    (hang,) = steps_of(rt, run.id)
    assert hang.outcome == "timeout" and hang.exit_status is None
    assert "started" in hang.output and "timed out after 1s" in hang.output
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not pid_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_gone(pid)


def test_background_child_holding_the_output_is_killed_after_the_shell_exits(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    pidfile = tmp_path / "bg.pid"
    rb = write(
        tmp_path,
        "bg.md",
        "---\nid: bg\ntitle: t\n---\n## Investigate\n"
        f"```bash {{id=bg timeout=60s}}\nsleep 1000 &\necho $! > {pidfile}\necho done\n```\n",
    )
    run = execute(rt, rb, params={}, actor="alice")
    (step,) = steps_of(rt, run.id)
    assert step.outcome == "succeeded" and step.exit_status == 0
    assert "background processes" in step.output
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not pid_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_gone(pid)


def test_failures_stop_the_run_unless_continue_on_error_and_mutations_need_confirmation(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    marker = tmp_path / "MUTATED"
    rb = write(
        tmp_path,
        "flow.md",
        "---\nid: flow\ntitle: t\n---\n## Investigate\n"
        "```bash {id=soft continue_on_error}\nfalse\n```\n"
        "```bash {id=pipe continue_on_error}\nfalse | true\n```\n"
        "- [ ] Ask the database team\n"
        f"## Mitigate\n```bash {{id=change mutates}}\ntouch {marker}\n```\n"
        "```bash {id=after}\necho after\n```\n",
    )
    run = execute(rt, rb, params={}, actor="alice")
    assert run.outcome == "refused" and not marker.exists()
    assert [(r.step_id, r.outcome) for r in steps_of(rt, run.id)] == [
        ("soft", "failed"),
        ("pipe", "failed"),  # pipefail
        ("investigate-check", "skipped"),
        ("change", "refused"),
    ]
    run = execute(rt, rb, params={}, actor="bob", confirmed={"change", "investigate-check"})
    rows = steps_of(rt, run.id)
    assert marker.exists() and run.outcome == "succeeded"
    assert [(r.step_id, r.outcome, r.actor) for r in rows][2:] == [
        ("investigate-check", "ticked", "bob"),
        ("change", "succeeded", "bob"),
        ("after", "succeeded", "bob"),
    ]
    auto = execute(rt, rb, params={}, actor="warroom", trigger="auto", confirmed={"change"})
    assert steps_of(rt, auto.id) == []  # nothing in this runbook is `auto`


def test_sql_steps_are_read_only_unless_mutating(
    tmp_path: Path, sqlite_url: str, db_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url, {"connections": {"target": {"type": "sql", "url": db_url}}})
    rb = write(
        tmp_path,
        "sql.md",
        "---\nid: sql\ntitle: t\nparams:\n  n: {type: int, default: 2}\n---\n## Investigate\n"
        "```sql {id=create conn=target mutates}\nCREATE TABLE items (id int, name text);\n"
        "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');\n```\n"
        "```sql {id=query conn=target}\nSELECT id, name FROM items WHERE id >= {{ n }} ORDER BY id\n```\n"
        "```sql {id=sneaky conn=target continue_on_error}\nDELETE FROM items\n```\n"
        "```sql {id=count conn=target}\nSELECT count(*) AS n FROM items\n```\n",
    )
    run = execute(rt, rb, params={}, actor="alice", confirmed={"create"})
    rows = {r.step_id: r for r in steps_of(rt, run.id)}
    assert rows["create"].outcome == "succeeded"
    assert rows["query"].output.splitlines()[0].split() == ["id", "name"]
    assert [line.split() for line in rows["query"].output.splitlines()[2:4]] == [
        ["2", "b"],
        ["3", "c"],
    ]
    assert rows["sneaky"].outcome == "failed"
    assert "read" in rows["sneaky"].output.lower()  # read-only transaction / query_only
    assert rows["count"].output.splitlines()[2].strip() == "3"


def test_planted_secrets_never_reach_the_database(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url, {"redact_patterns": [r"TOPSECRET-\d+"]})
    rb = write(
        tmp_path,
        "leak.md",
        "---\nid: leak\ntitle: t\n---\n## Investigate\n"
        "```bash {id=leak}\n"
        "echo AKIAIOSFODNN7EXAMPLE\n"
        "echo 'postgresql://app:s3cr3tPass@db:5432/app'\n"
        "echo 'Authorization: Bearer abcdefghijklmnop123456'\n"
        "printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjE\\n-----END OPENSSH PRIVATE KEY-----\\n'\n"
        "echo TOPSECRET-4242\n"
        "```\n",
    )
    chunks: list[str] = []
    run = execute(rt, rb, params={}, actor="alice", on_event=lambda _s, _k, t: chunks.append(t))
    (row,) = steps_of(rt, run.id)
    streamed = "".join(chunks)
    for secret in (
        "AKIAIOSFODNN7EXAMPLE",
        "s3cr3tPass",
        "abcdefghijklmnop123456",
        "b3BlbnNzaC1rZXktdjE",
        "TOPSECRET-4242",
    ):
        assert secret not in row.output
        assert secret not in streamed
    assert row.output.count("[REDACTED]") >= 5


def test_output_over_the_cap_is_truncated_with_a_note(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    rb = write(
        tmp_path,
        "big.md",
        "---\nid: big\ntitle: t\n---\n## Investigate\n```bash {id=big}\nseq 1 200000\n```\n",
    )
    run = execute(rt, rb, params={}, actor="alice")
    (row,) = steps_of(rt, run.id)
    assert row.truncated and "output truncated" in row.output
    assert row.output.startswith("1\n2\n") and row.output.rstrip().endswith("200000")
    assert len(row.output) < 70_000
    assert os.path.getsize(sqlite_url.removeprefix("sqlite:///")) < 5_000_000


_PRINTABLE = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="\x7f"),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_PRINTABLE)
def test_any_value_reaches_the_command_verbatim_in_every_context(
    tmp_path: Path, value: str
) -> None:
    """Property: whatever the value, each context prints it unchanged and runs nothing else."""
    script = prm.render_shell(
        "printf '[%s]\\n' {{ v }}\n"
        'printf "[%s]\\n" "{{ v }}"\n'
        "printf '[%s]\\n' \"$(printf '%s' {{ v }})\"\n"
        "cat <<EOF\n[{{ v }}]\nEOF\n"
    )
    chunks: list[str] = []
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **prm.shell_env({"v": value})}
    status, timed_out, _note = run_shell(
        script, env=env, timeout=10, feed=chunks.append, cwd=tmp_path
    )
    assert status == 0 and not timed_out
    assert "".join(chunks) == f"[{value}]\n" * 4
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_run_is_not_left_running(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    rb = write(
        tmp_path,
        "int.md",
        "---\nid: int\ntitle: t\n---\n## Investigate\n```bash {id=a}\necho a\n```\n",
    )

    def boom(_step: object, _row: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(rt, rb, params={}, actor="alice", on_step=boom)
    with rt.db.read() as s:
        (run,) = s.scalars(select(RunbookRun)).all()
    assert run.outcome == "interrupted" and run.finished_at is not None


def test_automatic_runs_keep_going_after_a_failed_diagnostic(
    tmp_path: Path, sqlite_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    rt = make_runtime(sqlite_url)
    rb = write(
        tmp_path,
        "diag.md",
        "---\nid: diag\ntitle: t\n---\n## Investigate\n"
        "```bash {id=broken auto}\nexit 3\n```\n"
        "```bash {id=works auto}\necho fine\n```\n"
        "```bash {id=fix mutates}\necho never\n```\n",
    )
    run = execute(rt, rb, params={}, actor="warroom", trigger="auto")
    assert run.outcome == "failed"
    assert [(r.step_id, r.outcome, r.exit_status) for r in steps_of(rt, run.id)] == [
        ("broken", "failed", 3),
        ("works", "succeeded", 0),
    ]
    manual = execute(rt, rb, params={}, actor="alice", select=["broken", "works"])
    assert [r.step_id for r in steps_of(rt, manual.id)] == ["broken"]  # a person's run stops
