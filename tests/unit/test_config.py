"""warroom.yaml validation: the sample is valid; each mistake is one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT, cli
from warroom.config.loader import load_config, parse_config
from warroom.core.errors import ConfigError

pytestmark = pytest.mark.unit


def test_sample_config_is_valid() -> None:
    cfg = load_config(ROOT / "warroom.yaml")
    assert cfg.severities["P0"].respond_within.total_seconds() == 15 * 60
    assert cfg.severities["P1"].escalation == "notify-lead"


def test_defaults_follow_the_readme_severity_table() -> None:
    cfg = parse_config({})
    assert [p.respond_within.total_seconds() for p in cfg.severities.values()] == [
        900,
        3600,
        4 * 3600,
        24 * 3600,
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"organisation": "x"}, "organisation: unknown key"),
        ({"severities": {"P0": {"respond_within": "soon"}}}, "severities.P0.respond_within"),
        ({"severities": {"P7": {"name": "x", "respond_within": "1h"}}}, "severities.P7"),
        ({"people": [{"id": "a"}]}, "people[0].name: required key is missing"),
        ({"people": [{"id": "Bad Id", "name": "x"}]}, "people[0].id"),
        (
            {"teams": [{"id": "t", "name": "T", "members": ["ghost"]}]},
            "teams[0].members: unknown person 'ghost'",
        ),
        ({"routes": [{"match": ['alertname=~"(unclosed"']}]}, "routes[0].match"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        (
            {"escalation_policies": {"p": {"levels": [{"notify": ["pager:x"]}]}}},
            "escalation_policies.p.levels[0].notify",
        ),
        ({"channels": {"mail": {"type": "smtp"}}}, "channels.mail"),
        (
            {"integrations": [{"id": "hb", "type": "heartbeat", "token": "x"}]},
            "integrations[0]: a heartbeat integration needs 'expect_every'",
        ),
    ],
)
def test_each_mistake_names_its_key(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_config_check_cli_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("organisation: x\npeople:\n  - {id: a}\n")
    r = cli("config", "check", str(bad))
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 2
    assert all(line.startswith(str(bad)) for line in lines)


def test_config_check_cli_reports_yaml_syntax_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("people:\n  - id: a\n    name: [unclosed\n")
    r = cli("config", "check", str(bad))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "line 4:" in r.stderr


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text("organization: a\norganization: b\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "duplicate key 'organization'" in info.value.problems[0]


def test_config_check_cli_ok_on_sample() -> None:
    r = cli("config", "check", str(ROOT / "warroom.yaml"))
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
