"""Communications templates: sandboxed, values never rendered as template text, config overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warroom.config.loader import parse_config
from warroom.core.errors import InvalidInput
from warroom.incidents import comms
from warroom.incidents.models import Incident

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 10, 30, tzinfo=UTC)
CONFIG: dict[str, Any] = {
    "organization": "Example Corp",
    "war_room": {
        "video": "https://meet.example.com/x",
        "chat": "#inc",
        "status_page": "https://status.example.com",
    },
    "contacts": [{"role": "Security team", "reach": "security@example.com"}],
}


def make_incident(**kw: Any) -> Incident:
    fields: dict[str, Any] = {
        "number": 7,
        "title": "Checkout errors",
        "severity": "P1",
        "status": "investigating",
        "summary": "",
        "customer_impact": "",
        "services": ["checkout"],
        "runbooks": [],
        "responders": [],
        "declared_at": NOW - timedelta(minutes=45),
        "detected_at": NOW - timedelta(minutes=50),
        "is_drill": False,
    }
    fields.update(kw)
    return Incident(**fields)


@pytest.mark.parametrize("template", [t.value for t in comms.Template])
def test_every_default_template_renders_with_the_war_room_details(template: str) -> None:
    cfg = parse_config(CONFIG)
    out = comms.render(cfg, make_incident(), template, now=NOW, message="rollback started")
    assert out.body.strip()
    assert "rollback started" in out.body
    if template in ("internal_update",):
        assert "https://meet.example.com/x" in out.body and "Security team" in out.body
        assert "45m" in out.body  # open for 45 minutes
    if template == "customer_notice":
        assert "https://status.example.com" in out.body and "Example Corp" in out.body


@pytest.mark.parametrize(
    "payload",
    [
        "{{ 7*7 }}",
        "{{ ''.__class__.__mro__ }}",
        "{% for x in range(3) %}x{% endfor %}",
        "{{ cycler.__init__.__globals__ }}",
        "${7*7}",
        "#{7*7}",
    ],
)
def test_user_and_alert_data_are_printed_literally(payload: str) -> None:
    cfg = parse_config(CONFIG)
    inc = make_incident(title=payload, summary=payload, services=[payload])
    out = comms.render(cfg, inc, "internal_update", now=NOW, message=payload)
    assert out.body.count(payload) >= 3
    assert "49" not in out.body and "<class" not in out.body


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_rendering_never_evaluates_a_title(title: str) -> None:
    cfg = parse_config({**CONFIG, "templates": {"internal_update": "T={{ title }}|"}})
    out = comms.render(cfg, make_incident(title=title), "internal_update", now=NOW)
    assert out.body == f"T={title}|"  # no second render: the value comes back unchanged


def test_templates_from_config_replace_the_defaults_and_stay_sandboxed() -> None:
    cfg = parse_config(
        {**CONFIG, "templates": {"executive_summary": "#{{ number }} {{ severity_name }}"}}
    )
    assert comms.render(cfg, make_incident(), "executive-summary", now=NOW).body == "#7 High"
    evil = parse_config(
        {**CONFIG, "templates": {"status_page": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}
    )
    with pytest.raises(InvalidInput) as err:  # the sandbox refuses, and it is a clean error
        comms.render(evil, make_incident(), "status_page", now=NOW)
    assert err.value.field == "templates.status_page"
    broken = parse_config({**CONFIG, "templates": {"status_page": "{{ nope }}"}})
    with pytest.raises(InvalidInput) as bad:
        comms.render(broken, make_incident(), "status_page", now=NOW)
    assert bad.value.field == "templates.status_page"


def test_unknown_template_and_oversize_message_name_their_field() -> None:
    cfg = parse_config(CONFIG)
    with pytest.raises(InvalidInput) as err:
        comms.render(cfg, make_incident(), "press_release", now=NOW)
    assert err.value.field == "template"
    with pytest.raises(InvalidInput) as err:
        comms.render(cfg, make_incident(), "internal_update", now=NOW, message="m" * 5001)
    assert err.value.field == "message"
