"""Parameters are validated first and can never change a command's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.core.errors import InvalidInput
from warroom.runbooks import params as prm
from warroom.runbooks.loader import parse_param, parse_text

pytestmark = pytest.mark.unit

HOSTILE = ["x; id", "$(id)", "`id`", "a\nb", "' OR 1=1 --", "v\r\nX-Injected: 1", "a b", "*"]


def runbook(params: str, body: str = "") -> object:
    text = f"---\nid: t\ntitle: t\nparams:\n{params}\n---\n## Investigate\n{body}"
    return parse_text(text.encode(), path=Path("t.md"))


@pytest.mark.parametrize("value", HOSTILE)
def test_default_pattern_rejects_hostile_values(value: str) -> None:
    param = parse_param("name", {"default": "ok"})
    with pytest.raises(InvalidInput, match="parameter name"):
        prm.coerce(param, value)


@pytest.mark.parametrize("value", ["production", "api-v2", "10.0.0.1:5432", "a/b@c+d_e.f"])
def test_default_pattern_accepts_ordinary_values(value: str) -> None:
    assert prm.coerce(parse_param("name", {}), value) == value


def test_control_characters_are_refused_even_by_a_permissive_pattern() -> None:
    param = parse_param("name", {"pattern": ".*"})
    assert prm.coerce(param, "x; id") == "x; id"
    for bad in ("a\nb", "a\rb", "a\x00b", "a\x1bb"):
        with pytest.raises(InvalidInput, match="control characters"):
            prm.coerce(param, bad)


def test_types_bounds_and_choices() -> None:
    replicas = parse_param("replicas", {"type": "int", "min": 1, "max": 50})
    assert prm.coerce(replicas, "10") == 10
    for bad in ("0", "51", "ten", "1.5", True):
        with pytest.raises(InvalidInput):
            prm.coerce(replicas, bad)
    mode = parse_param("mode", {"choices": ["fast", "slow"]})
    assert prm.coerce(mode, "slow") == "slow"
    with pytest.raises(InvalidInput, match="not one of"):
        prm.coerce(mode, "medium")
    flag = parse_param("force", {"type": "bool"})
    assert prm.coerce(flag, "yes") is True
    with pytest.raises(InvalidInput):
        parse_param("x", {"type": "int", "default": "many"})
    with pytest.raises(InvalidInput, match="reserved"):
        parse_param("path", {})


def test_resolve_order_inputs_labels_defaults() -> None:
    rb = runbook("  ns: {default: prod}\n  pod: {}\n  n: {type: int, default: 3}")
    values = prm.resolve(rb, {"n": "5"}, labels={"pod": "web-1", "ns": "lab"})  # type: ignore[arg-type]
    assert values == {"ns": "lab", "pod": "web-1", "n": 5}
    with pytest.raises(InvalidInput, match="unknown parameter 'nope'"):
        prm.resolve(rb, {"nope": "1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="pod has no value"):
        prm.resolve(rb, {})  # type: ignore[arg-type]
    assert prm.resolve(rb, {}, needed={"ns"}) == {"ns": "prod", "n": 3}  # type: ignore[arg-type]


def test_shell_placeholders_become_quoted_env_references_in_every_context() -> None:
    code = (
        'echo {{ a }} "in {{a}} quotes" $(echo {{a}}) "$(echo {{a}})" `echo {{a}}`\n'
        "cat <<EOF\nbody {{ a }}\nEOF\n"
    )
    out = prm.render_shell(code)
    assert "{{" not in out
    assert out.splitlines()[0] == (
        'echo "${WR_a}" "in ${WR_a} quotes" $(echo "${WR_a}") "$(echo "${WR_a}")" `echo "${WR_a}"`'
    )
    assert "body ${WR_a}" in out
    for where in ("echo '{{a}}'", "cat <<'X'\n{{a}}\nX\n"):
        with pytest.raises(InvalidInput, match="never be expanded"):
            prm.render_shell(where, declared={"a"})
    with pytest.raises(InvalidInput, match="unsupported placeholder"):
        prm.render_shell("echo {{ a | upper }}")


def test_go_templates_in_single_quotes_are_left_alone() -> None:
    code = "kubectl get pods -o go-template='{{range .items}}{{.metadata.name}}{{\"\\n\"}}{{end}}' -n {{ ns }}"
    out = prm.render_shell(code, declared={"ns"})
    assert out.endswith('{{end}}\' -n "${WR_ns}"')
    assert "{{range .items}}" in out
    assert prm.shell_names(code) == ["ns"]


def test_sql_placeholders_are_bound_parameters() -> None:
    sql, binds = prm.render_sql(
        "SELECT x::int FROM t WHERE a = {{ a }} AND b = ':lit' AND c = {{a}}", {"a": "' OR 1=1 --"}
    )
    assert sql == "SELECT x::int FROM t WHERE a = :a AND b = ':lit' AND c = :a"
    assert binds == {"a": "' OR 1=1 --"}
    with pytest.raises(InvalidInput, match="quoted SQL literal"):
        prm.render_sql("SELECT '{{ a }}'", {"a": "x"})


def test_promql_values_are_escaped_inside_strings_and_checked_outside() -> None:
    q = prm.render_promql('up{job="{{ j }}"}[{{ w }}]', {"j": 'a"} or vector(1) #', "w": "5m"})
    assert q == 'up{job="a\\"} or vector(1) #"}[5m]'
    with pytest.raises(InvalidInput, match="outside quotes"):
        prm.render_promql("rate(x[{{ w }}])", {"w": "5m] or vector(1"})


def test_http_host_is_fixed_and_headers_cannot_gain_lines() -> None:
    req = prm.render_http(
        'POST https://api.example.com/v1/{{ p }}?q={{ p }}\nX-Trace: {{ t }}\n\n{"v": "{{ p }}"}',
        {"p": "a/../b c", "t": "abc"},
        base_url=None,
    )
    assert req.url == "https://api.example.com/v1/a%2F..%2Fb%20c?q=a%2F..%2Fb%20c"
    assert req.headers == [("X-Trace", "abc")]
    assert req.body == '{"v": "a/../b c"}'
    with pytest.raises(InvalidInput, match="scheme or host"):
        prm.render_http("GET https://{{ host }}/x", {"host": "evil.example"}, base_url=None)
    with pytest.raises(InvalidInput, match="CR/LF"):
        prm.render_http(
            "GET https://a.example/x\nX-A: {{ t }}", {"t": "v\r\nX-Evil: 1"}, base_url=None
        )
    relative = prm.render_http("GET /api/v1/query", {}, base_url="http://127.0.0.1:9090")
    assert relative.url == "http://127.0.0.1:9090/api/v1/query"
