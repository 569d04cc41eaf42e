"""Pure parts of alert ingestion: translation, routing, group keys, runbook choice, rate buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.alerts import payload, sources
from warroom.alerts.ratelimit import Buckets
from warroom.alerts.routing import decide, group_key
from warroom.config.loader import parse_config
from warroom.core.errors import InvalidInput, RateLimited
from warroom.runbooks.model import Catalog, Runbook

pytestmark = pytest.mark.unit

CONFIG = parse_config(
    {
        "integrations": [
            {"id": "am", "type": "alertmanager", "token": "t-am-0123456789"},
            {"id": "other", "type": "alertmanager", "token": "t-other-0123456789"},
        ],
        "routes": [
            {
                "match": ['severity="critical"'],
                "severity": "P0",
                "group_by": ["alertname", "service"],
            },
            {
                "match": ['alertname=~"HighErrorRate|High5xxRate"'],
                "severity": "P1",
                "runbook": "hey",
            },
            {"match": ['team="db"'], "integration": "other", "severity": "P1"},
        ],
    }
)


def alert(**labels: str) -> sources.Normalized:
    return sources.Normalized(
        fingerprint=sources.fingerprint_of(labels),
        status=sources.AlertStatus.FIRING,
        labels=labels,
        annotations={},
        name=labels.get("alertname", ""),
        source_severity=labels.get("severity", ""),
    )


def catalog(*books: tuple[str, list[str]]) -> Catalog:
    from warroom.core.matchers import parse_matchers

    cat = Catalog(root=Path("."))
    for rid, triggers in books:
        cat.runbooks[rid] = Runbook(
            id=rid,
            title=rid,
            path=Path(f"{rid}.md"),
            file_hash="",
            body="",
            triggers=[parse_matchers(t) for t in triggers],
        )
    return cat


def test_first_matching_route_wins() -> None:
    d = decide(
        CONFIG,
        alert(alertname="HighErrorRate", severity="critical", service="api"),
        integration="am",
        catalog=None,
    )
    assert d.route_index == 0 and d.severity == "P0"
    assert d.group_key == "r0|alertname=HighErrorRate,service=api"


def test_route_limited_to_an_integration_is_skipped_for_others() -> None:
    d = decide(CONFIG, alert(alertname="X", team="db"), integration="am", catalog=None)
    assert d.route_index is None and d.severity == "P2"
    d = decide(CONFIG, alert(alertname="X", team="db"), integration="other", catalog=None)
    assert d.route_index == 2 and d.severity == "P1"


def test_unrouted_alert_maps_source_severity() -> None:
    d = decide(CONFIG, alert(alertname="X", severity="warning"), integration="am", catalog=None)
    assert d.severity == "P3" and d.group_key == "rd|alertname=X"


def test_runbook_by_route_then_trigger_then_runbook_url() -> None:
    cat = catalog(("disk-full", ['alertname="DiskFull"']), ("cpu", []))
    assert (
        decide(CONFIG, alert(alertname="HighErrorRate"), integration="am", catalog=cat).runbook
        == "hey"
    )
    d = decide(CONFIG, alert(alertname="DiskFull"), integration="am", catalog=cat)
    assert (d.runbook, d.runbook_source) == ("disk-full", "trigger")
    a = alert(alertname="Other")
    a.annotations["runbook_url"] = "https://git.example.com/ops/runbooks/blob/main/cpu.md"
    d = decide(CONFIG, a, integration="am", catalog=cat)
    assert (d.runbook, d.runbook_source) == ("cpu", "runbook_url")
    assert decide(CONFIG, alert(alertname="Nope"), integration="am", catalog=cat).runbook is None


def test_long_group_keys_are_hashed_to_fit() -> None:
    route = CONFIG.routes[0]
    key, _ = group_key(0, route, {"alertname": "x" * 400, "service": "s"})
    assert len(key) <= 300 and key.startswith("r0|sha256:")


def test_alertmanager_zero_end_time_means_still_firing() -> None:
    [a] = sources.alertmanager(
        {
            "version": "4",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "A"},
                    "startsAt": "2026-11-02T10:00:00+01:00",
                    "endsAt": "0001-01-01T00:00:00Z",
                }
            ],
        }
    )
    assert a.ends_at is None and a.starts_at is not None and a.starts_at.hour == 9
    assert a.fingerprint == sources.fingerprint_of({"alertname": "A"})


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"a": 1, "a": 2}', "duplicate"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": 1e400}', "range"),
        (b"[" * 50 + b"]" * 50, "nested"),
        (b'{"a": "\\u0000"}', "NUL"),
        (b"\xff", "UTF-8"),
        (b"  ", "empty"),
    ],
)
def test_strict_json_decoding(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        payload.decode(raw)
    assert words.lower() in info.value.message.lower()


def test_pagerduty_translation_lists_every_problem() -> None:
    with pytest.raises(sources.PdError) as info:
        sources.pagerduty({"routing_key": "k", "event_action": "trigger", "payload": {}})
    text = " ".join(info.value.errors)
    assert "summary" in text and "source" in text and "severity" in text


def test_bucket_refuses_over_rate_and_refills() -> None:
    b = Buckets()
    b.take("x", rate=2, now=0.0)
    b.take("x", rate=2, now=0.0)
    with pytest.raises(RateLimited) as info:
        b.take("x", rate=2, now=0.1)
    assert info.value.retry_after >= 1
    b.take("x", rate=2, now=1.0)  # refilled
    b.take("y", rate=2, now=0.1)  # another integration has its own bucket


def test_catalog_cache_reloads_only_when_a_file_changes(tmp_path: Path) -> None:
    from warroom.alerts.routing import CatalogCache

    book = tmp_path / "disk.md"
    text = '---\nid: disk\ntitle: Disk\nowner: ops\ntriggers:\n  - alertname="{name}"\n---\n## Investigate\n'
    book.write_text(text.format(name="DiskFull"))
    cache = CatalogCache(tmp_path, check_every=2.0)
    first = cache.get(monotonic=0.0)
    assert first.matching({"alertname": "DiskFull"})
    assert cache.get(monotonic=1.0) is first  # within check_every: no disk access at all
    assert cache.get(monotonic=3.0) is first  # checked, nothing changed: same catalog
    book.write_text(text.format(name="DiskAlmostFull") + "\n")
    second = cache.get(monotonic=6.0)
    assert second is not first
    assert second.matching({"alertname": "DiskAlmostFull"}) and not second.matching(
        {"alertname": "DiskFull"}
    )
