"""Run a runbook's steps: shell, PromQL, SQL, HTTP and manual, recorded in the database.

`execute()` is the one entry point: the CLI (interactive, with Rich), the
worker (automatic diagnostics) and the web API all call it. It owns its
transactions because a run is long: the run row is committed before the
first step and each step run as soon as it ends, so a crash mid-run still
leaves the record of what already happened.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from warroom.config.loader import resolve_secret
from warroom.config.schema import Connection
from warroom.core.errors import InvalidInput, WarroomError
from warroom.core.logging import get_logger
from warroom.core.redact import Redactor, StreamRedactor
from warroom.jobs.runtime import Runtime
from warroom.runbooks import params as prm
from warroom.runbooks.model import Runbook, Step, StepKind
from warroom.runbooks.models import RunbookRun, StepRun
from warroom.runbooks.tables import render_table
from warroom.settings import environ_snapshot

log = get_logger(__name__)

MAX_OUTPUT = 64 * 1024  # characters stored per step (head and tail kept)
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a step's process group
DRAIN_GRACE = 2.0  # after the shell exits, how long a background child may hold the output
MAX_ROWS = 200
MAX_HTTP_BODY = 1024 * 1024
BASH = shutil.which("bash") or "/bin/bash"
# our own credentials never reach a step's environment
_SCRUB_ENV = ("WARROOM_SECRET_KEY", "WARROOM_TOKEN")

EventCallback = Callable[[Step, str, str], None]
"""on_event(step, kind, text); kind is start | output | done | refused | skipped."""


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    SKIPPED = "skipped"
    TICKED = "ticked"
    RUNNING = "running"
    INTERRUPTED = "interrupted"


@dataclass
class Planned:
    """One step ready to run: what will execute, and how it reads to a person."""

    step: Step
    display: str
    shell: str = ""
    sql: str = ""
    binds: dict[str, Any] = field(default_factory=dict)
    promql: str = ""
    http: prm.HttpRequest | None = None
    connection: Connection | None = None


@dataclass
class Result:
    outcome: str
    exit_status: int | None
    output: str
    truncated: bool
    duration_ms: int
    note: str = ""


class OutputBuffer:
    """Redacted, size-capped capture: the head and the tail survive, with a visible note."""

    def __init__(self, redactor: Redactor, sink: Callable[[str], None] | None) -> None:
        self._stream = StreamRedactor(redactor)
        self._redactor = redactor
        self._sink = sink
        self._head: list[str] = []
        self._head_len = 0
        self._tail = ""
        self._dropped = 0

    def feed(self, chunk: str) -> None:
        self._emit(self._stream.feed(chunk))

    def close(self) -> None:
        self._emit(self._stream.flush())

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self._sink is not None:
            self._sink(text)
        half = MAX_OUTPUT // 2
        if self._head_len < half:
            take = text[: half - self._head_len]
            self._head.append(take)
            self._head_len += len(take)
            text = text[len(take) :]
        if text:
            self._tail += text
            if len(self._tail) > half:
                self._dropped += len(self._tail) - half
                self._tail = self._tail[-half:]

    @property
    def truncated(self) -> bool:
        return self._dropped > 0

    def text(self) -> str:
        head = "".join(self._head)
        if self._dropped:
            note = f"\n[... output truncated: {self._dropped} characters not kept ...]\n"
            return self._redactor.redact(head + note + self._tail)
        return self._redactor.redact(head + self._tail)


# ---- planning --------------------------------------------------------------


def select_steps(
    runbook: Runbook,
    *,
    select: Collection[str] | Callable[[Step], bool] | None,
    trigger: str,
) -> list[Step]:
    """The steps a run will consider, in file order. Raises InvalidInput for an unknown id."""
    steps = list(runbook.steps)
    if callable(select):
        steps = [s for s in steps if select(s)]
    elif select is not None:
        wanted = set(select)
        unknown = sorted(wanted - {s.id for s in steps})
        if unknown:
            raise InvalidInput(
                f"runbook {runbook.id} has no step {unknown[0]!r}",
                field="step",
                hint="`warroom runbook show " + runbook.id + "` lists the step ids",
            )
        steps = [s for s in steps if s.id in wanted]
    if trigger == "auto":
        # automatic runs take read-only diagnostics only, whatever was selected
        steps = [s for s in steps if s.auto and not s.mutates and s.kind is not StepKind.MANUAL]
    return steps


def plan(
    connections: Mapping[str, Connection],
    step: Step,
    values: Mapping[str, Any],
    *,
    declared: Collection[str] = (),
) -> Planned:
    """Render one step with validated values. Raises InvalidInput; runs nothing."""
    used = {n: values[n] for n in step.placeholders() if n in values}
    missing = sorted(set(step.placeholders()) - set(values))
    if missing:
        raise InvalidInput(f"step {step.id}: parameter {missing[0]!r} is used but not declared")
    if step.kind is StepKind.SHELL:
        script = prm.render_shell(step.code, declared={*declared, *values})
        header = "".join(f"# {prm.ENV_PREFIX}{k}={prm.shell_text(v)!r}\n" for k, v in used.items())
        return Planned(step=step, display=header + script, shell=script)
    if step.kind is StepKind.MANUAL:
        return Planned(step=step, display="[ ] " + step.code)
    conn_name = step.conn or ("prometheus" if step.kind is StepKind.PROMQL else None)
    connection = connections.get(conn_name) if conn_name else None
    if step.kind is StepKind.SQL:
        if not conn_name:
            raise InvalidInput(f"step {step.id}: a sql step needs conn=NAME")
        if connection is None or connection.type != "sql":
            raise InvalidInput(f"step {step.id}: no sql connection {conn_name!r} in warroom.yaml")
        sql, binds = prm.render_sql(step.code, values)
        shown = "".join(f"-- :{k} = {v!r}\n" for k, v in binds.items())
        return Planned(
            step=step, display=shown + step.code, sql=sql, binds=binds, connection=connection
        )
    if step.kind is StepKind.PROMQL:
        if connection is None or connection.type != "prometheus":
            raise InvalidInput(
                f"step {step.id}: no prometheus connection {conn_name!r} in warroom.yaml"
            )
        query = prm.render_promql(step.code.strip(), values)
        return Planned(step=step, display=query, promql=query, connection=connection)
    # http
    if conn_name and connection is None:
        raise InvalidInput(f"step {step.id}: no connection {conn_name!r} in warroom.yaml")
    request = prm.render_http(step.code, values, base_url=connection.url if connection else None)
    shown = f"{request.method} {request.url}\n" + "".join(f"{k}: {v}\n" for k, v in request.headers)
    if request.body:
        shown += "\n" + request.body
    return Planned(step=step, display=shown, http=request, connection=connection)


def dry_run(
    runbook: Runbook,
    connections: Mapping[str, Connection],
    *,
    params: Mapping[str, Any],
    select: Collection[str] | Callable[[Step], bool] | None = None,
    labels: Mapping[str, str] | None = None,
    trigger: str = "manual",
) -> list[Planned]:
    """Render every chosen step exactly as a run would; nothing runs, nothing is recorded."""
    _refuse_broken(runbook)
    steps = select_steps(runbook, select=select, trigger=trigger)
    values = prm.resolve(runbook, params, labels=labels, needed=_needed(steps))
    return [plan(connections, s, values, declared=runbook.params) for s in steps]


def _needed(steps: list[Step]) -> set[str]:
    return {name for s in steps for name in s.placeholders()}


def _refuse_broken(runbook: Runbook) -> None:
    errors = [p for p in runbook.problems if p.level == "error"]
    if errors:
        raise InvalidInput(
            f"runbook {runbook.id} has {len(errors)} lint error(s), first: {errors[0]}",
            hint="fix them (warroom runbook lint) before running it",
        )


# ---- the run -------------------------------------------------------------------


def execute(
    rt: Runtime,
    runbook: Runbook,
    *,
    params: Mapping[str, Any],
    actor: str,
    trigger: str = "manual",
    incident_id: int | None = None,
    labels: Mapping[str, str] | None = None,
    select: Collection[str] | Callable[[Step], bool] | None = None,
    confirmed: Collection[str] = frozenset(),
    confirm: Callable[[Step], bool] | None = None,
    on_event: EventCallback | None = None,
    on_step: Callable[[Step, StepRun], None] | None = None,
    cwd: Path | None = None,
) -> RunbookRun:
    """Run the chosen steps of `runbook` and record the run; return the finished run row.

    - `params` are the run's inputs; missing values come from `labels` (the
      alert's), then defaults. All are validated before anything runs
      (InvalidInput otherwise, and nothing is recorded).
    - `select`: step ids or a predicate; None means every step. With
      `trigger="auto"` only `auto` steps run and a `mutates` step never does.
    - A mutating step runs only when its id is in `confirmed` or `confirm(step)`
      returns True; otherwise it is recorded as refused and the run stops there
      (outcome "refused"). A manual step is ticked the same way (by `actor`) or
      recorded as skipped.
    - A failing step stops the run (outcome "failed") unless it has
      `continue_on_error`, or the run is automatic (diagnostics only, so the
      rest still run; the outcome is then "failed" if any step failed).
    - `on_event(step, kind, text)` receives start/output/done/refused/skipped;
      output chunks are redacted before the callback sees them. `on_step` gets
      each committed StepRun (for timelines).
    - `incident_id` is the incidents.id (not the number) to attach the run to.
    Output and rendered commands are redacted and capped before they are stored.
    """
    _refuse_broken(runbook)
    steps = select_steps(runbook, select=select, trigger=trigger)
    values = prm.resolve(runbook, params, labels=labels, needed=_needed(steps))
    plans = [plan(rt.config.connections, s, values, declared=runbook.params) for s in steps]
    redactor = rt.redactor
    with rt.db.transaction() as s:
        run = RunbookRun(
            runbook_id=runbook.id,
            runbook_path=str(runbook.path)[-500:],
            file_hash=runbook.file_hash,
            actor=actor[:100],
            params=redactor.redact_obj(dict(values)),
            trigger=trigger,
            dry_run=False,
            incident_id=incident_id,
            outcome=Outcome.RUNNING,
            started_at=rt.now(),
            finished_at=None,
        )
        s.add(run)
        s.flush()
    log.info("runbook.run.started", runbook=runbook.id, run_id=run.id, trigger=trigger, actor=actor)
    emit = on_event or (lambda _s, _k, _t: None)
    outcome = Outcome.SUCCEEDED
    try:
        for planned in plans:
            step = planned.step
            allowed = step.id in confirmed or (confirm is not None and confirm(step))
            started = rt.now()
            if step.mutates and (trigger == "auto" or not allowed):
                why = (
                    f"step {step.id} changes things (mutates) and was not confirmed; "
                    "the run stops here (confirm it, or pass --yes)"
                )
                emit(step, "refused", why)
                result = Result(Outcome.REFUSED, None, why, False, 0)
                outcome = Outcome.REFUSED
            elif step.kind is StepKind.MANUAL:
                if allowed:
                    result = Result(Outcome.TICKED, None, f"ticked by {actor}", False, 0)
                    emit(step, "done", result.output)
                else:
                    result = Result(Outcome.SKIPPED, None, "not ticked", False, 0)
                    emit(step, "skipped", result.output)
            else:
                emit(step, "start", redactor.redact(planned.display))
                result = _run_one(rt, planned, values, run.id, incident_id, emit, cwd)
                emit(step, "done", f"{result.outcome} {result.note}".strip())
            step_run = _record(rt, run.id, planned, result, actor, started)
            if on_step is not None:
                on_step(step, step_run)
            if result.outcome == Outcome.REFUSED:
                break
            # an automatic run holds read-only diagnostics only: one failing must not hide the rest
            keep_going = step.continue_on_error or trigger == "auto"
            if result.outcome in (Outcome.FAILED, Outcome.TIMEOUT) and not step.continue_on_error:
                outcome = Outcome.FAILED
            if result.outcome in (Outcome.FAILED, Outcome.TIMEOUT) and not keep_going:
                break
    except BaseException:
        # Ctrl-C, a lost database, a crashing callback: the record must not stay "running"
        with contextlib.suppress(Exception):  # never mask the original error
            _finish(rt, run.id, Outcome.INTERRUPTED)
        log.warning("runbook.run.interrupted", runbook=runbook.id, run_id=run.id)
        raise
    run = _finish(rt, run.id, outcome)
    log.info("runbook.run.finished", runbook=runbook.id, run_id=run.id, outcome=outcome)
    return run


def _finish(rt: Runtime, run_id: int, outcome: str) -> RunbookRun:
    with rt.db.transaction() as s:
        row = s.get(RunbookRun, run_id)
        assert row is not None
        row.outcome = outcome
        row.finished_at = rt.now()
    return row


def _record(
    rt: Runtime, run_id: int, planned: Planned, result: Result, actor: str, started: Any
) -> StepRun:
    step = planned.step
    with rt.db.transaction() as s:
        row = StepRun(
            run_id=run_id,
            step_id=step.id,
            phase=step.phase.value,
            kind=step.kind.value,
            title=rt.redactor.redact(step.title)[:300],
            rendered=rt.redactor.redact(planned.display)[:MAX_OUTPUT],
            actor=actor[:100],
            outcome=result.outcome,
            exit_status=result.exit_status,
            output=rt.redactor.redact(result.output),
            truncated=result.truncated,
            started_at=started,
            finished_at=rt.now(),
            duration_ms=result.duration_ms,
        )
        s.add(row)
        s.flush()
    return row


def _run_one(
    rt: Runtime,
    planned: Planned,
    values: Mapping[str, Any],
    run_id: int,
    incident_id: int | None,
    emit: EventCallback,
    cwd: Path | None,
) -> Result:
    step = planned.step
    buf = OutputBuffer(rt.redactor, lambda chunk: emit(step, "output", chunk))
    t0 = time.monotonic()
    note = ""
    try:
        if step.kind is StepKind.SHELL:
            env = {k: v for k, v in environ_snapshot().items() if k not in _SCRUB_ENV}
            env.update(prm.shell_env(values))
            env["WARROOM_RUN_ID"] = str(run_id)
            env["WARROOM_STEP_ID"] = step.id
            if incident_id is not None:
                env["WARROOM_INCIDENT_ID"] = str(incident_id)
            status, timed_out, note = run_shell(
                planned.shell, env=env, timeout=step.timeout.total_seconds(), feed=buf.feed, cwd=cwd
            )
            outcome = (
                Outcome.TIMEOUT
                if timed_out
                else Outcome.SUCCEEDED
                if status == 0
                else Outcome.FAILED
            )
        elif step.kind is StepKind.PROMQL:
            status = _run_promql(rt, planned, buf.feed)
            outcome = Outcome.SUCCEEDED if status == 0 else Outcome.FAILED
        elif step.kind is StepKind.SQL:
            status = _run_sql(rt, planned, buf.feed)
            outcome = Outcome.SUCCEEDED if status == 0 else Outcome.FAILED
        else:
            status = _run_http(rt, planned, buf.feed)
            outcome = Outcome.SUCCEEDED if status < 400 else Outcome.FAILED
    except WarroomError as exc:
        buf.feed(f"error: {exc}\n")
        status, outcome = 1, Outcome.FAILED
    except Exception as exc:  # a step's failure must never end the run unrecorded
        log.warning("runbook.step.error", step=step.id, error=type(exc).__name__)
        buf.feed(f"error: {type(exc).__name__}: {exc}\n")
        status, outcome = 1, Outcome.FAILED
    if note:
        buf.feed(f"\n[{note}]\n")
    buf.close()
    return Result(
        outcome=outcome,
        exit_status=status,
        output=buf.text(),
        truncated=buf.truncated,
        duration_ms=int((time.monotonic() - t0) * 1000),
        note=note,
    )


# ---- shell -----------------------------------------------------------------


def run_shell(
    script: str,
    *,
    env: Mapping[str, str],
    timeout: float,
    feed: Callable[[str], None],
    cwd: Path | None = None,
) -> tuple[int | None, bool, str]:
    """Run `script` under `bash -euo pipefail` in its own process group.

    Output (stdout and stderr together) goes to `feed` as it arrives. At the
    timeout the whole group gets SIGTERM, then SIGKILL. When the shell exits
    but a background child still holds the output open, that child is given
    DRAIN_GRACE seconds and then its group is killed, so nothing is left
    behind (a daemon that redirects its output, like `pg_ctl start -l`, is
    not holding it and survives). Returns (exit status, timed out, note).
    """
    proc = subprocess.Popen(
        [BASH, "-euo", "pipefail", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(env),
        cwd=cwd,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    deadline = time.monotonic() + timeout
    drain_until: float | None = None
    timed_out = False
    note = ""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while True:
            now = time.monotonic()
            if drain_until is None and proc.poll() is not None:
                drain_until = now + DRAIN_GRACE
            if now >= deadline:
                timed_out = True
                note = f"timed out after {timeout:g}s: process group killed"
                _kill_group(proc)
                break
            if drain_until is not None and now >= drain_until:
                note = "background processes still holding the output were killed"
                _kill_group(proc)
                break
            limit = deadline if drain_until is None else min(deadline, drain_until)
            events = sel.select(timeout=min(0.2, max(0.0, limit - now)))
            if not events:
                continue
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                break  # EOF: every writer has closed the pipe
            feed(decoder.decode(data))
        tail = decoder.decode(b"", final=True)
        if tail:
            feed(tail)
        try:
            status = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            note = f"timed out after {timeout:g}s: process group killed"
            _kill_group(proc)
            status = proc.wait()
    finally:
        sel.close()
        proc.stdout.close()
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
    return (None if timed_out else status), timed_out, note


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    pgid = proc.pid  # start_new_session: the shell leads its own group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + (KILL_GRACE if sig == signal.SIGTERM else 1.0)
        while time.monotonic() < end:
            proc.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)


# ---- PromQL ------------------------------------------------------------------


def _headers(rt: Runtime, connection: Connection) -> dict[str, str]:
    return {
        k: resolve_secret(v, rt.env, field=f"connections.headers.{k}") or ""
        for k, v in connection.headers.items()
    }


def _run_promql(rt: Runtime, planned: Planned, feed: Callable[[str], None]) -> int:
    conn = planned.connection
    assert conn is not None
    base = resolve_secret(conn.url, rt.env, field="connections.url") or ""
    timeout = min(planned.step.timeout.total_seconds(), conn.timeout.total_seconds())
    try:
        resp = httpx.get(
            base.rstrip("/") + "/api/v1/query",
            params={"query": planned.promql},
            headers=_headers(rt, conn),
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        feed(f"error: prometheus at {base} unreachable: {type(exc).__name__}: {exc}\n")
        return 1
    try:
        body = resp.json()
    except ValueError:
        feed(f"error: prometheus answered HTTP {resp.status_code} without JSON\n")
        return 1
    if body.get("status") != "success":
        feed(f"error: {body.get('errorType', 'error')}: {body.get('error', resp.text[:500])}\n")
        return 1
    data = body.get("data", {})
    kind = data.get("resultType")
    result = data.get("result", [])
    if kind in ("scalar", "string"):
        feed(f"{result[1]}\n")
        return 0
    if not result:
        feed("(no series)\n")
        return 0
    names: list[str] = []
    for series in result:
        for key in series.get("metric", {}):
            if key not in names:
                names.append(key)
    names.sort(key=lambda n: (n != "__name__", n))
    rows = []
    for series in result[:MAX_ROWS]:
        metric = series.get("metric", {})
        value = (
            series.get("value", [None, ""])[1]
            if "value" in series
            else (
                f"{len(series.get('values', []))} samples, last {series.get('values', [[None, '']])[-1][1]}"
            )
        )
        rows.append([metric.get(n, "") for n in names] + [value])
    feed(render_table([*names, "value"], rows))
    if len(result) > MAX_ROWS:
        feed(f"({len(result) - MAX_ROWS} more series not shown)\n")
    return 0


# ---- SQL -------------------------------------------------------------------


def _sql_statements(sql: str) -> list[str]:
    """Split on `;` outside quotes and comments (enough for runbook queries)."""
    out: list[str] = []
    cur: list[str] = []
    i, quote_char = 0, ""
    while i < len(sql):
        ch = sql[i]
        if quote_char:
            if ch == quote_char:
                quote_char = ""
        elif ch in ("'", '"'):
            quote_char = ch
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            i = end
            continue
        elif ch == ";":
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip()]


def _engine_url(url: str) -> str:
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _run_sql(rt: Runtime, planned: Planned, feed: Callable[[str], None]) -> int:
    conn_cfg = planned.connection
    assert conn_cfg is not None
    url = _engine_url(resolve_secret(conn_cfg.url, rt.env, field="connections.url") or "")
    timeout = min(planned.step.timeout.total_seconds(), conn_cfg.timeout.total_seconds())
    kwargs: dict[str, Any] = {"poolclass": NullPool}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": max(1, int(min(timeout, 10)))}
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:
        feed(f"error: cannot use connection {planned.step.conn!r}: {type(exc).__name__}\n")
        return 1
    statements = _sql_statements(planned.sql)
    read_only = not planned.step.mutates
    timer: threading.Timer | None = None
    try:
        with engine.connect() as conn:
            dialect = engine.dialect.name
            if dialect == "sqlite":
                raw: Any = conn.connection.dbapi_connection
                timer = threading.Timer(timeout, raw.interrupt)
                timer.daemon = True
                timer.start()
            with conn.begin():
                if dialect == "sqlite" and read_only:
                    conn.exec_driver_sql("PRAGMA query_only = ON")
                if dialect == "postgresql":
                    if read_only:
                        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                for stmt in statements:
                    binds = {k: v for k, v in planned.binds.items() if f":{k}" in stmt}
                    result = conn.execute(text(stmt), binds)
                    if result.returns_rows:
                        columns = list(result.keys())
                        rows = result.fetchmany(MAX_ROWS + 1)
                        feed(render_table(columns, [list(r) for r in rows[:MAX_ROWS]]))
                        feed(
                            f"({len(rows[:MAX_ROWS])} row{'s' if len(rows) != 1 else ''}"
                            f"{', more not shown' if len(rows) > MAX_ROWS else ''})\n"
                        )
                    else:
                        feed(f"({result.rowcount} row(s) affected)\n")
    except Exception as exc:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        feed(f"error: {type(exc).__name__}: {message[0] if message else ''}\n")
        return 1
    finally:
        if timer is not None:
            timer.cancel()
        engine.dispose()
    return 0


# ---- HTTP ------------------------------------------------------------------


def _run_http(rt: Runtime, planned: Planned, feed: Callable[[str], None]) -> int:
    request = planned.http
    assert request is not None
    headers = _headers(rt, planned.connection) if planned.connection else {}
    for key, value in request.headers:
        headers[key] = value
    timeout = planned.step.timeout.total_seconds()
    body = bytearray()
    cut = False
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream(
                request.method, request.url, headers=headers, content=request.body or None
            ) as resp,
        ):
            # read at most MAX_HTTP_BODY: a runaway endpoint must not fill our memory
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_HTTP_BODY:
                    cut = True
                    break
    except httpx.HTTPError as exc:
        feed(f"error: {request.method} {request.url}: {type(exc).__name__}: {exc}\n")
        return 599
    feed(f"HTTP {resp.status_code} {resp.reason_phrase}\n")
    content = bytes(body[:MAX_HTTP_BODY]).decode(resp.encoding or "utf-8", errors="replace")
    if content:
        feed(content if content.endswith("\n") else content + "\n")
    if cut:
        feed(f"[response body cut at {MAX_HTTP_BODY // 1024} KiB]\n")
    return resp.status_code
