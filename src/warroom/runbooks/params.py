"""Parameters: validation, and rendering into each step kind without changing its shape.

Values never enter shell or SQL text. In shell, `{{ name }}` becomes a
reference to an exported environment variable, quoted to suit where it
stands (bare, inside double quotes, inside `$( )` or a heredoc); in SQL it
becomes a bound parameter; in PromQL and HTTP the value is escaped for the
string it lands in, and an HTTP URL's scheme and host never come from a value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from warroom.core.errors import InvalidInput
from warroom.runbooks.model import ANY_PLACEHOLDER, PLACEHOLDER, Param, ParamType, Runbook, Step

MAX_VALUE_LEN = 1024
ENV_PREFIX = "WR_"
# Characters no value may carry whatever pattern an author declares: they could
# end a header line or confuse a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def coerce(param: Param, value: Any) -> Any:
    """Typed, validated value of one parameter. Raises InvalidInput naming it."""
    name = param.name
    if isinstance(value, str) and len(value) > MAX_VALUE_LEN:
        raise InvalidInput(f"parameter {name}: longer than {MAX_VALUE_LEN} characters", field=name)
    out: Any
    if param.type is ParamType.BOOL:
        text = str(value).lower()
        if text not in ("true", "false", "yes", "no", "1", "0"):
            raise InvalidInput(f"parameter {name}: {value!r} is not true or false", field=name)
        out = text in ("true", "yes", "1")
    elif param.type in (ParamType.INT, ParamType.FLOAT):
        if isinstance(value, bool):
            raise InvalidInput(f"parameter {name}: {value!r} is not a number", field=name)
        try:
            out = int(str(value), 10) if param.type is ParamType.INT else float(str(value))
        except ValueError:
            raise InvalidInput(
                f"parameter {name}: {value!r} is not {'an integer' if param.type is ParamType.INT else 'a number'}",
                field=name,
            ) from None
        if not math.isfinite(out):
            raise InvalidInput(f"parameter {name}: {value!r} is not a finite number", field=name)
        if param.minimum is not None and out < param.minimum:
            raise InvalidInput(
                f"parameter {name}: {out} is below the minimum {param.minimum:g}", field=name
            )
        if param.maximum is not None and out > param.maximum:
            raise InvalidInput(
                f"parameter {name}: {out} is above the maximum {param.maximum:g}", field=name
            )
    else:
        out = str(value)
        if _CONTROL.search(out):
            raise InvalidInput(
                f"parameter {name}: control characters (newline, CR...) are never allowed",
                field=name,
            )
        if not re.fullmatch(param.pattern, out):
            raise InvalidInput(
                f"parameter {name}: {out!r} does not match the pattern {param.pattern!r}",
                field=name,
                hint="allowed by default: letters, digits and _.:/@+-",
            )
    if (
        param.choices
        and out not in param.choices
        and str(out) not in [str(c) for c in param.choices]
    ):
        raise InvalidInput(
            f"parameter {name}: {out!r} is not one of {', '.join(map(str, param.choices))}",
            field=name,
        )
    return out


def resolve(
    runbook: Runbook,
    inputs: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None = None,
    needed: set[str] | None = None,
) -> dict[str, Any]:
    """Values for the declared parameters: inputs, then alert labels, then defaults.

    With `needed`, only those parameters (the ones the chosen steps use) must
    have a value; every input given is validated either way.

    Raises InvalidInput for an unknown input, a missing required value or a
    value that fails validation; nothing has run at that point.
    """
    unknown = sorted(set(inputs) - set(runbook.params))
    if unknown:
        declared = ", ".join(sorted(runbook.params)) or "none"
        raise InvalidInput(
            f"unknown parameter {unknown[0]!r} (declared: {declared})", field=unknown[0]
        )
    values: dict[str, Any] = {}
    for name, param in runbook.params.items():
        if name in inputs:
            raw = inputs[name]
        elif labels and name in labels:
            raw = labels[name]
        elif param.default is not None:
            raw = param.default
        elif needed is not None and name not in needed:
            continue
        else:
            raise InvalidInput(
                f"parameter {name} has no value: pass --param {name}=...", field=name
            )
        values[name] = coerce(param, raw)
    return values


def shell_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shell_env(values: Mapping[str, Any]) -> dict[str, str]:
    """Each value under its own name and under WR_<name> (the name the script references)."""
    env: dict[str, str] = {}
    for name, value in values.items():
        env[name] = shell_text(value)
        env[ENV_PREFIX + name] = shell_text(value)
    return env


# ---- shell ---------------------------------------------------------------

_HEREDOC = re.compile(r"<<(-?)[ \t]*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


def render_shell(code: str, *, declared: Collection[str] = ()) -> str:
    """Replace each placeholder with a reference to its env var, quoted for its context.

    `{{ … }}` inside single quotes or a quoted heredoc is left alone (it is
    often a kubectl or Helm Go template), unless it names a declared
    parameter: that raises InvalidInput, because the value could never reach
    it. Any other `{{ … }}` where the shell expands text raises too.
    """
    return _shell(code, declared=set(declared), used=None)


def shell_names(code: str) -> list[str]:
    """Parameter names a shell step substitutes (not those inside single quotes)."""
    used: list[str] = []
    _shell(code, declared=None, used=used)
    return used


def _shell(code: str, *, declared: set[str] | None, used: list[str] | None) -> str:
    # declared=None: scanning only (collect names into `used`, never raise)
    out: list[str] = []
    stack: list[str] = ["bare"]  # bare | dq | sq | heredoc | qheredoc
    pending: list[tuple[str, bool, bool]] = []  # heredocs opened on this line
    heredoc_end = ""
    strip_tabs = False
    i = 0
    n = len(code)
    line_start = True
    while i < n:
        ctx = stack[-1]
        if ctx in ("heredoc", "qheredoc") and line_start:
            end = code.find("\n", i)
            line = code[i : end if end >= 0 else n]
            if (line.lstrip("\t") if strip_tabs else line) == heredoc_end:
                stack.pop()
                out.append(line)
                i += len(line)
                line_start = False
                if pending:
                    heredoc_end, quoted, strip_tabs = pending.pop(0)
                    stack.append("qheredoc" if quoted else "heredoc")
                continue
        match = ANY_PLACEHOLDER.match(code, i)
        if match:
            ours = PLACEHOLDER.fullmatch(match.group(0))
            name = ours.group(1) if ours else ""
            i = match.end()
            line_start = False
            if ctx in ("sq", "qheredoc"):
                if declared is not None and name and name in declared:
                    where = "single quotes" if ctx == "sq" else "a quoted heredoc"
                    raise InvalidInput(
                        f"placeholder {{{{ {name} }}}} inside {where} would never be "
                        "expanded; use double quotes or an unquoted heredoc"
                    )
                out.append(match.group(0))  # literal text, e.g. a Go template
                continue
            if not ours:
                if declared is not None:
                    raise InvalidInput(
                        f"unsupported placeholder {match.group(0)!r}: only {{{{ name }}}} is "
                        "allowed (quote Go templates in single quotes)"
                    )
                out.append(match.group(0))
                continue
            if used is not None:
                used.append(name)
            ref = "${" + ENV_PREFIX + name + "}"
            out.append(ref if ctx in ("dq", "heredoc") else '"' + ref + '"')
            continue
        ch = code[i]
        out.append(ch)
        i += 1
        if ch == "\n":
            line_start = True
            if pending and stack[-1] == "bare":
                heredoc_end, quoted, strip_tabs = pending.pop(0)
                stack.append("qheredoc" if quoted else "heredoc")
            continue
        line_start = False
        if ctx == "sq":
            if ch == "'":
                stack.pop()
        elif ctx == "qheredoc":
            continue
        elif ctx == "heredoc":
            if ch == "$" and code.startswith("(", i):
                out.append("(")
                i += 1
                stack.append("bare")
        elif ch == "\\" and i < n:
            out.append(code[i])
            i += 1
        elif ctx == "dq":
            if ch == '"':
                stack.pop()
            elif ch == "$" and code.startswith("(", i):
                out.append("(")
                i += 1
                stack.append("bare")
            elif ch == "`":
                stack.append("bare")
        elif ch == "'":  # bare (top level or inside $( ))
            stack.append("sq")
        elif ch == '"':
            stack.append("dq")
        elif ch == "$" and code.startswith("(", i):
            out.append("(")
            i += 1
            stack.append("bare")
        elif (ch == ")" and len(stack) > 1) or (ch == "`" and len(stack) > 1 and stack[-2] == "dq"):
            stack.pop()
        elif ch == "#" and (len(out) < 2 or out[-2] in " \t\n;"):
            end = code.find("\n", i)
            end = n if end < 0 else end
            out.append(code[i:end])
            i = end
        elif ch == "<" and code.startswith("<", i) and not code.startswith("<<", i):
            hd = _HEREDOC.match(code, i - 1)
            if hd:
                pending.append((hd.group(3), bool(hd.group(2)), hd.group(1) == "-"))
                out.append(code[i : hd.end()])
                i = hd.end()
    return "".join(out)


# ---- SQL -----------------------------------------------------------------


def render_sql(code: str, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """`{{ name }}` -> `:name` bound parameter. Raises InvalidInput for one inside quotes."""
    out: list[str] = []
    binds: dict[str, Any] = {}
    quote_char = ""
    i = 0
    while i < len(code):
        match = PLACEHOLDER.match(code, i)
        if match:
            name = match.group(1)
            if quote_char:
                raise InvalidInput(
                    f"placeholder {{{{ {name} }}}} inside a quoted SQL literal; write it bare, "
                    "it becomes a bound parameter"
                )
            binds[name] = values[name]
            out.append(f":{name}")
            i = match.end()
            continue
        ch = code[i]
        if quote_char:
            if ch == quote_char:
                quote_char = ""
        elif ch in ("'", '"'):
            quote_char = ch
        elif (
            ch == ":"
            and not code.startswith("::", i)
            and (i == 0 or code[i - 1] != ":")
            and re.match(r":[A-Za-z_]", code[i:])
        ):
            # a literal ':name' would be read as a bind marker; escape it for text()
            out.append("\\")
        out.append(ch)
        i += 1
    return "".join(out), binds


# ---- PromQL --------------------------------------------------------------

_PROM_BARE = re.compile(r"[A-Za-z0-9_.:]+")


def render_promql(code: str, values: Mapping[str, Any]) -> str:
    """Inside a quoted string the value is escaped; bare it must be a number or duration."""
    out: list[str] = []
    quote_char = ""
    i = 0
    while i < len(code):
        match = PLACEHOLDER.match(code, i)
        if match:
            text = shell_text(values[match.group(1)])
            if quote_char:
                escaped = json.dumps(text)[1:-1]
                if quote_char == "'":
                    escaped = escaped.replace("'", "\\'")
                out.append(escaped)
            elif _PROM_BARE.fullmatch(text):
                out.append(text)
            else:
                raise InvalidInput(
                    f"parameter {match.group(1)}: {text!r} cannot stand outside quotes in PromQL",
                    field=match.group(1),
                )
            i = match.end()
            continue
        ch = code[i]
        if quote_char:
            if ch == "\\":
                out.append(code[i : i + 2])
                i += 2
                continue
            if ch == quote_char:
                quote_char = ""
        elif ch in ("'", '"', "`"):
            quote_char = ch
        out.append(ch)
        i += 1
    return "".join(out)


# ---- HTTP ----------------------------------------------------------------


@dataclass
class HttpRequest:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def render_http(code: str, values: Mapping[str, Any], *, base_url: str | None) -> HttpRequest:
    """Parse `METHOD URL`, headers, blank line, body; fill values safely.

    Raises InvalidInput when the request line is malformed, a placeholder
    sits in the scheme or host, or a header would gain a line.
    """
    head, sep, body = code.replace("\r\n", "\n").partition("\n\n")
    body = body.removesuffix("\n")  # the fence's own line end is not part of the body
    lines = [ln for ln in head.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InvalidInput("http step is empty: write 'METHOD URL' on the first line")
    # `{{ name }}` may hold spaces; compact it so the request line splits on its real spaces
    parts = PLACEHOLDER.sub(lambda m: "{{" + m.group(1) + "}}", lines[0]).split()
    if len(parts) not in (2, 3) or parts[0].upper() not in _METHODS:
        raise InvalidInput(f"http request line {lines[0]!r}: expected 'METHOD URL'")
    method, url_tpl = parts[0].upper(), parts[1]
    if url_tpl.startswith("/"):
        if not base_url:
            raise InvalidInput("relative URL needs a connection: add conn=NAME to the step")
        url_tpl = base_url.rstrip("/") + url_tpl
    split = urlsplit(url_tpl)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise InvalidInput(f"http step URL {parts[1]!r} must be absolute http(s) or start with /")
    if ANY_PLACEHOLDER.search(split.scheme + "://" + split.netloc):
        raise InvalidInput("a parameter cannot choose the scheme or host of an http step URL")

    def fill_url(match: re.Match[str]) -> str:
        return quote(shell_text(values[match.group(1)]), safe="")

    url = (
        split.scheme
        + "://"
        + split.netloc
        + PLACEHOLDER.sub(fill_url, url_tpl[len(split.scheme) + 3 + len(split.netloc) :])
    )

    def fill_plain(match: re.Match[str]) -> str:
        text = shell_text(values[match.group(1)])
        if _CONTROL.search(text) or "\r" in text or "\n" in text:
            raise InvalidInput(f"parameter {match.group(1)}: CR/LF cannot go into an HTTP header")
        return text

    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z0-9-]+", name.strip()):
            raise InvalidInput(f"http header line {line!r}: expected 'Name: value'")
        headers.append((name.strip(), PLACEHOLDER.sub(fill_plain, value.strip())))

    def fill_body(match: re.Match[str]) -> str:
        # JSON-string escaping: safe inside a JSON string and harmless elsewhere
        return json.dumps(shell_text(values[match.group(1)]))[1:-1]

    return HttpRequest(
        method=method,
        url=url,
        headers=headers,
        body=PLACEHOLDER.sub(fill_body, body) if sep else "",
    )


def used_names(step: Step) -> list[str]:
    return step.placeholders()
