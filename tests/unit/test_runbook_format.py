"""The runbook format: front matter, phases, steps, attributes, checklists, foreign runbooks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warroom.core.errors import InvalidInput
from warroom.runbooks.loader import load_file, load_folder, parse_info, parse_text
from warroom.runbooks.model import Phase, StepKind

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "runbooks"
CORPUS = Path("/work/shared/corpus/prometheus-operator-runbooks")

FULL = """---
id: high-cpu
title: High CPU
owner: devops-team
severity: P1
services: [api, web]
review_every: 30d
last_reviewed: 2026-11-01
reviewed_by: alice
drill_every: 90d
triggers:
  - alertname="HighCPUUsage"
  - alertname=~"KubePodCPU.*", namespace="production"
params:
  namespace: {default: production, description: ns}
  replicas: {type: int, default: 10, min: 1, max: 50}
  mode: {choices: [fast, slow], default: fast}
---

# High CPU

## Detect

```promql {id=node-cpu auto}
rate(node_cpu_seconds_total[5m])
```

## Diagnosis

### Pods

```bash {id=top-pods timeout=30s auto}
kubectl top pods -n {{ namespace }}
```

```sql {conn=primary-db}
SELECT 1;
```

- [ ] Tell the team
- [x] Already done thing

```yaml
not: a step
```

## Mitigate

```sh {id=scale mutates continue_on_error timeout=2m}
kubectl scale deploy/app --replicas={{ replicas }}
```

```http
GET https://example.com/healthz
```

## Verify

Nothing here.

## Prevent

- [ ] Write the postmortem
"""


def parse(text: str, name: str = "rb.md") -> object:
    return parse_text(text.encode(), path=Path(name))


def test_front_matter_phases_steps_and_attributes() -> None:
    rb = parse_text(FULL.encode(), path=Path("high-cpu.md"))
    assert rb.id == "high-cpu" and rb.title == "High CPU" and rb.owner == "devops-team"
    assert rb.severity == "P1" and rb.services == ["api", "web"]
    assert rb.review_every is not None and rb.review_every.days == 30
    assert str(rb.last_reviewed) == "2026-11-01" and rb.reviewed_by == "alice"
    assert rb.drill_every is not None and rb.drill_every.days == 90
    assert rb.matches({"alertname": "HighCPUUsage"})
    assert rb.matches({"alertname": "KubePodCPUHigh", "namespace": "production"})
    assert not rb.matches({"alertname": "KubePodCPUHigh", "namespace": "staging"})
    assert rb.params["replicas"].type.value == "int" and rb.params["replicas"].maximum == 50
    assert [p.value for p in rb.phases] == [
        "identify",
        "investigate",
        "mitigate",
        "verify",
        "prevent",
    ]
    kinds = [(s.id, s.kind, s.phase) for s in rb.steps]
    assert kinds == [
        ("node-cpu", StepKind.PROMQL, Phase.IDENTIFY),
        ("top-pods", StepKind.SHELL, Phase.INVESTIGATE),
        ("pods", StepKind.SQL, Phase.INVESTIGATE),
        ("pods-check", StepKind.MANUAL, Phase.INVESTIGATE),
        ("pods-check-2", StepKind.MANUAL, Phase.INVESTIGATE),
        ("scale", StepKind.SHELL, Phase.MITIGATE),
        ("mitigate", StepKind.HTTP, Phase.MITIGATE),
        ("prevent-check", StepKind.MANUAL, Phase.PREVENT),
    ]
    top = rb.step("top-pods")
    assert top is not None and top.auto and top.timeout.total_seconds() == 30
    assert top.line == FULL.splitlines().index("```bash {id=top-pods timeout=30s auto}") + 1
    scale = rb.step("scale")
    assert scale is not None and scale.mutates and scale.continue_on_error and not scale.auto
    assert rb.step("pods") is not None and rb.step("pods").conn == "primary-db"  # type: ignore[union-attr]
    assert rb.step("pods-check").title == "Tell the team"  # type: ignore[union-attr]
    assert not [p for p in rb.problems if p.level == "error"]
    assert len(rb.file_hash) == 64


def test_info_string_forms() -> None:
    assert parse_info("bash {id=x timeout=5s auto}") == (
        "bash",
        {"id": "x", "timeout": "5s", "auto": "true"},
        None,
    )
    assert parse_info("bash{auto}")[1] == {"auto": "true"}
    assert parse_info("sql conn=db")[1] == {"conn": "db"}
    assert parse_info("bash {id=x")[2] is not None


def test_no_front_matter_loads_with_defaults_and_phase_words() -> None:
    rb = load_file(FIXTURES / "wild" / "QueueBacklogGrowing.md")
    assert rb.id == "queue-backlog-growing"
    assert rb.title == "Queue Backlog Growing"
    assert [s.phase for s in rb.sections] == [
        Phase.IDENTIFY,
        Phase.IDENTIFY,
        Phase.INVESTIGATE,
        Phase.MITIGATE,
    ]
    assert [s.kind for s in rb.steps] == [StepKind.SHELL]  # `console` is documentation
    assert all(p.level == "warning" for p in rb.problems)
    plain = load_file(FIXTURES / "wild" / "plain-notes.md")
    assert plain.id == "plain-notes" and plain.steps == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"---\nid: [x\n---\n", "invalid front matter"),
        (b"---\nid: x\n", "never closed"),
        (b"---\n- a\n- b\n---\n", "must be a mapping"),
        (b"ok\x00binary", "binary"),
    ],
)
def test_unreadable_files_give_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        parse_text(data, path=Path("x.md"))
    assert info.value.message.startswith("x.md:")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=400))
def test_any_utf8_text_is_a_runbook_or_a_clear_error(text: str) -> None:
    for candidate in (text, "---\n" + text, "---\nid: x\n" + text + "\n---\n```bash {" + text):
        try:
            rb = parse_text(candidate.encode(), path=Path("fuzz.md"))
        except InvalidInput as exc:
            assert exc.message.startswith("fuzz.md:")
        else:
            assert rb.id


def test_folder_catalog_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nid: same\ntitle: A\n---\n")
    (tmp_path / "b.md").write_text("---\nid: same\ntitle: B\n---\n")
    (tmp_path / "c.md").write_bytes(b"\xff\xff")
    (tmp_path / "README.md").write_text("# index\n")
    catalog = load_folder(tmp_path)
    assert list(catalog.runbooks) == ["same"]
    assert catalog.get("same") is not None and catalog.get("nope") is None
    messages = sorted(p.message for p in catalog.problems)
    assert any("duplicate runbook id 'same'" in m for m in messages)
    assert any("not UTF-8" in m for m in messages)


def test_starter_runbooks_load() -> None:
    catalog = load_folder(ROOT / "runbooks")
    assert set(catalog.runbooks) == {
        "incident-response-framework",
        "high-cpu-usage",
        "database-connection-pool-exhaustion",
        "high-error-rate",
        "disaster-recovery",
        "security-incident-response",
    }
    for rb in catalog:
        assert rb.owner in ("devops-team", "security-team")
        assert any(s.auto for s in rb.steps)
        assert rb.triggers
    assert catalog.matching({"alertname": "HighErrorRate"})[0].id == "high-error-rate"


def test_real_world_corpus_loads_or_errors_clearly() -> None:
    if not CORPUS.is_dir():
        pytest.skip("the shared runbook corpus is not on this machine")
    files = sorted(CORPUS.rglob("*.md"))
    assert files
    loaded = 0
    for file in files:
        try:
            rb = load_file(file)
        except InvalidInput as exc:
            assert exc.message.startswith(str(file))
        else:
            loaded += 1
            assert rb.id
    assert loaded >= len(files) * 0.9
    load_folder(CORPUS)  # the whole folder at once never crashes either
    from datetime import date

    from warroom.runbooks.lint import lint_paths

    problems, runbooks = lint_paths([CORPUS], today=date(2026, 11, 29))
    assert len(runbooks) >= 100
    # foreign runbooks show and lint with warnings only (kubectl Go templates included)
    assert [str(p) for p in problems if p.level == "error"] == []
