"""Read runbook files: front matter, phases from `##` headings, steps from fenced blocks.

A file with our front matter is a first-class runbook; a Markdown runbook
from elsewhere (no front matter, or a site generator's front matter without
`id`) loads too, with defaults and warnings. Only what cannot be read at all
(not UTF-8, broken YAML, unterminated front matter) raises InvalidInput.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from warroom.core.durations import parse_duration
from warroom.core.errors import InvalidInput
from warroom.core.matchers import parse_matchers
from warroom.runbooks.model import (
    DEFAULT_PATTERN,
    DEFAULT_TIMEOUT,
    Catalog,
    Param,
    ParamType,
    Phase,
    Problem,
    Runbook,
    Section,
    Step,
    StepKind,
)

MAX_FILE_BYTES = 1024 * 1024
KNOWN_KEYS = frozenset(
    {
        "id",
        "title",
        "owner",
        "severity",
        "services",
        "review_every",
        "last_reviewed",
        "reviewed_by",
        "drill_every",
        "last_drill",
        "triggers",
        "params",
        "tags",
        "description",
    }
)
PARAM_KEYS = frozenset(
    {"type", "default", "description", "min", "max", "choices", "pattern", "required"}
)
STEP_ATTRS = frozenset({"id", "timeout", "auto", "mutates", "conn", "continue_on_error"})
FLAG_ATTRS = frozenset({"auto", "mutates", "continue_on_error"})
LANGS: dict[str, StepKind] = {
    "bash": StepKind.SHELL,
    "sh": StepKind.SHELL,
    "shell": StepKind.SHELL,
    "promql": StepKind.PROMQL,
    "sql": StepKind.SQL,
    "http": StepKind.HTTP,
}
# Heading words -> phase; the first word found wins. "Meaning/Impact/Diagnosis/
# Mitigation" is the layout of the widely shared Prometheus operator runbooks.
PHASE_WORDS: tuple[tuple[Phase, tuple[str, ...]], ...] = (
    (Phase.IDENTIFY, ("detect", "identify", "identification", "meaning", "impact", "symptom")),
    (
        Phase.INVESTIGATE,
        ("investigate", "investigation", "diagnose", "diagnosis", "diagnostics", "triage"),
    ),
    (Phase.MITIGATE, ("mitigate", "mitigation", "contain", "containment", "failover")),
    (Phase.RESOLVE, ("resolve", "resolution", "recover", "recovery", "restore", "fix")),
    (Phase.VERIFY, ("verify", "verification", "validate", "validation")),
    (Phase.PREVENT, ("prevent", "prevention", "follow-up", "followup", "document", "postmortem")),
)
SEVERITIES = ("P0", "P1", "P2", "P3")
ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
PARAM_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,49}")
# names a parameter may not take: it is exported into the step's environment
RESERVED_ENV = frozenset(
    {"path", "home", "ifs", "env", "bash_env", "shellopts", "bashopts", "ps4", "cdpath", "pwd"}
)
TASK_RE = re.compile(r"^\[([ xX])\]\s+(.*)", re.S)

_md = MarkdownIt("commonmark")


def slugify(text: str, *, fallback: str = "step") -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text)  # CamelCase alert names
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60].strip("-") or fallback


def phase_of(heading: str) -> Phase:
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", heading.lower())
    for word in words:
        for phase, keys in PHASE_WORDS:
            if word in keys:
                return phase
    return Phase.OTHER


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_file(path: Path | str) -> Runbook:
    """Parse one runbook file.

    Raises InvalidInput `file:line: message` when the file cannot be read as
    a runbook at all; everything softer lands in `Runbook.problems`.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{p}:1: file is larger than {MAX_FILE_BYTES // 1024} KiB")
    return parse_text(data, path=p)


def parse_text(data: bytes, *, path: Path) -> Runbook:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise InvalidInput(f"{path}:1: binary file (NUL byte), not Markdown")
    text = text.removeprefix("\ufeff")
    front, body, body_line = _split_front_matter(text, path)
    rb = Runbook(
        id=slugify(path.stem, fallback="runbook"),
        title=path.stem,
        path=path,
        file_hash=file_hash(data),
        body=body,
        has_front_matter=front is not None and "id" in front,
    )
    if front is not None:
        _apply_front_matter(rb, front, _key_lines(text))
    else:
        rb.problems.append(
            Problem(str(path), 1, "warning", "no front matter: id, owner and triggers defaulted")
        )
    _parse_body(rb, body, body_line)
    return rb


def _split_front_matter(text: str, path: Path) -> tuple[dict[str, Any] | None, str, int]:
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return None, text, 1
    for idx in range(1, len(lines)):
        if lines[idx].rstrip() in ("---", "..."):
            raw = "\n".join(lines[1:idx])
            try:
                data = yaml.safe_load(raw) if raw.strip() else {}
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = (mark.line + 2) if mark is not None else 2
                problem = getattr(exc, "problem", None) or "invalid YAML"
                raise InvalidInput(f"{path}:{line}: invalid front matter: {problem}") from None
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise InvalidInput(f"{path}:2: front matter must be a mapping of keys to values")
            return {str(k): v for k, v in data.items()}, "\n".join(lines[idx + 1 :]), idx + 2
    raise InvalidInput(f"{path}:1: front matter starts with '---' but is never closed")


def _key_lines(text: str) -> dict[str, int]:
    """Line of each top-level front-matter key, for messages that point at it."""
    out: dict[str, int] = {}
    for no, line in enumerate(text.split("\n")[1:], start=2):
        if line.rstrip() == "---":
            break
        match = re.match(r"([A-Za-z_][A-Za-z0-9_-]*)\s*:", line)
        if match:
            out.setdefault(match.group(1), no)
    return out


def _apply_front_matter(rb: Runbook, front: dict[str, Any], lines: dict[str, int]) -> None:
    where = str(rb.path)
    rb.front_matter_lines = lines
    ours = "id" in front

    def err(key: str, message: str, level: str = "error") -> None:
        rb.problems.append(Problem(where, lines.get(key, 1), level, message, code="front-matter"))

    for key in front:
        if key not in KNOWN_KEYS:
            # a site generator's keys (weight, aliases...) are fine in a foreign file
            err(key, f"unknown front matter key {key!r}", "error" if ours else "warning")
    if not ours:
        rb.problems.append(
            Problem(where, 1, "warning", "front matter has no 'id': defaulted from the file name")
        )
    if "id" in front:
        value = str(front["id"])
        if ID_RE.fullmatch(value):
            rb.id = value
        else:
            err("id", f"id {value!r} must be kebab-case (a-z, 0-9, '-')")
    if "title" in front:
        rb.title = " ".join(str(front["title"]).split())
    if "owner" in front:
        rb.owner = str(front["owner"])
    if "severity" in front:
        sev = str(front["severity"]).upper()
        if sev in SEVERITIES:
            rb.severity = sev
        else:
            err("severity", f"severity {front['severity']!r} is not one of P0, P1, P2, P3")
    if "services" in front:
        services = front["services"]
        if isinstance(services, str):
            services = [services]
        if isinstance(services, list) and all(isinstance(s, str) for s in services):
            rb.services = list(services)
        else:
            err("services", "services must be a list of names")
    for key in ("review_every", "drill_every"):
        if key in front:
            try:
                setattr(rb, key, parse_duration(front[key], field=key))
            except InvalidInput as exc:
                err(key, f"{key}: {exc}")
    for key in ("last_reviewed", "last_drill"):
        if key in front:
            value = front[key]
            if isinstance(value, date):
                setattr(rb, key, value)
            else:
                try:
                    setattr(rb, key, date.fromisoformat(str(value)))
                except ValueError:
                    err(key, f"{key} {value!r} is not a date (YYYY-MM-DD)")
    if "reviewed_by" in front:
        rb.reviewed_by = str(front["reviewed_by"])
    if "triggers" in front:
        triggers = front["triggers"]
        if isinstance(triggers, str):
            triggers = [triggers]
        if not isinstance(triggers, list):
            err("triggers", "triggers must be a list of matcher strings")
        else:
            for item in triggers:
                try:
                    rb.triggers.append(parse_matchers(str(item), field="triggers"))
                    rb.trigger_text.append(str(item))
                except InvalidInput as exc:
                    err("triggers", f"trigger: {exc.message}")
    if "params" in front:
        params = front["params"]
        if not isinstance(params, dict):
            err("params", "params must be a mapping of name to spec")
        else:
            for name, spec in params.items():
                try:
                    rb.params[str(name)] = parse_param(str(name), spec)
                except InvalidInput as exc:
                    err("params", exc.message)


def parse_param(name: str, spec: Any) -> Param:
    """One parameter spec; a bare value is a string default. Raises InvalidInput."""
    if not PARAM_NAME_RE.fullmatch(name):
        raise InvalidInput(f"parameter name {name!r} must be lower_snake_case")
    if name.lower() in RESERVED_ENV or name.startswith(("ld_", "bash_", "warroom_")):
        raise InvalidInput(f"parameter name {name!r} is reserved (it is exported to the shell)")
    if spec is None or not isinstance(spec, dict):
        spec = {"default": spec}
    unknown = set(spec) - PARAM_KEYS
    if unknown:
        raise InvalidInput(f"parameter {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
    raw_type = str(spec.get("type", "str"))
    try:
        ptype = ParamType(raw_type)
    except ValueError:
        raise InvalidInput(
            f"parameter {name!r}: type {raw_type!r} is not one of str, int, float, bool"
        ) from None
    pattern = str(spec.get("pattern", DEFAULT_PATTERN))
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(f"parameter {name!r}: bad pattern: {exc}") from None
    choices = spec.get("choices") or ()
    if not isinstance(choices, list | tuple):
        raise InvalidInput(f"parameter {name!r}: choices must be a list")

    def num(key: str) -> float | None:
        value = spec.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"parameter {name!r}: {key} must be a number")
        return float(value)

    param = Param(
        name=name,
        type=ptype,
        default=spec.get("default"),
        description=str(spec.get("description", "")),
        minimum=num("min"),
        maximum=num("max"),
        choices=tuple(choices),
        pattern=pattern,
        required=bool(spec.get("required", False)),
    )
    if param.default is not None:
        from warroom.runbooks.params import coerce

        try:
            coerce(param, param.default)
        except InvalidInput as exc:
            raise InvalidInput(f"parameter {name!r}: default: {exc.message}") from None
    return param


def parse_info(info: str) -> tuple[str, dict[str, str], str | None]:
    """Split a fence info string into language, attributes and an error message."""
    info = info.strip()
    if not info:
        return "", {}, None
    lang, _, rest = info.partition(" ")
    if "{" in lang:  # ```bash{auto}
        lang, _, tail = lang.partition("{")
        rest = "{" + tail + " " + rest
    lang = lang.lower()
    rest = rest.strip()
    if rest.startswith("{"):
        if not rest.endswith("}"):
            return lang, {}, "attribute block is missing its closing '}'"
        rest = rest[1:-1]
    try:
        words = shlex.split(rest.replace(",", " "))
    except ValueError as exc:
        return lang, {}, f"cannot read attributes: {exc}"
    attrs: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        key = key.lstrip(".")  # pandoc style `.auto`
        attrs[key] = value if eq else "true"
    return lang, attrs, None


def _flag(value: str) -> bool | None:
    low = value.lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    return None


def _parse_body(rb: Runbook, body: str, first_line: int) -> None:
    where = str(rb.path)
    tokens = _md.parse(body)
    title_seen = False
    section = Section(title="", phase=Phase.OTHER, line=first_line)
    heading = ""
    counts: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    in_item = 0

    def line_of(tok_map: list[int] | None) -> int:
        return first_line + (tok_map[0] if tok_map else 0)

    def new_id(base: str) -> str:
        counts[base] = counts.get(base, 0) + 1
        return base if counts[base] == 1 else f"{base}-{counts[base]}"

    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            text = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            level = int(tok.tag[1])
            if level == 1 and not title_seen:
                title_seen = True
                if not rb.title or rb.title == rb.path.stem:
                    rb.title = text or rb.title
                continue
            if level <= 2:
                section = Section(title=text, phase=phase_of(text), line=line_of(tok.map))
                rb.sections.append(section)
            elif section.phase is Phase.OTHER and phase_of(text) is not Phase.OTHER:
                # a `###` heading with a phase word under a plain section
                section = Section(title=text, phase=phase_of(text), line=line_of(tok.map))
                rb.sections.append(section)
            heading = text
        elif tok.type == "list_item_open":
            in_item += 1
        elif tok.type == "list_item_close":
            in_item -= 1
        elif tok.type == "inline" and in_item and tokens[i - 1].type == "paragraph_open":
            match = TASK_RE.match(tok.content)
            if match and tokens[i - 2].type == "list_item_open":
                text = " ".join(match.group(2).split())
                step = Step(
                    id=new_id(slugify(heading or section.title or "check") + "-check"),
                    kind=StepKind.MANUAL,
                    phase=section.phase,
                    section=section.title,
                    title=text,
                    code=text,
                    line=line_of(tokens[i - 1].map),
                )
                rb.steps.append(step)
        elif tok.type == "fence":
            lang, attrs, error = parse_info(tok.info)
            kind = LANGS.get(lang)
            line = line_of(tok.map)
            if error:
                rb.problems.append(Problem(where, line, "error", error, code="attrs"))
            if kind is None:
                if attrs and set(attrs) & STEP_ATTRS:
                    rb.problems.append(
                        Problem(
                            where,
                            line,
                            "warning",
                            f"block language {lang or '(none)'!r} is not a step; "
                            "its attributes are ignored",
                        )
                    )
                continue
            step = _make_step(rb, kind, lang, attrs, tok.content, line, section, heading)
            step.id = step.id or new_id(slugify(heading or section.title or lang))
            if step.id in seen_ids:
                rb.problems.append(
                    Problem(
                        where,
                        line,
                        "error",
                        f"duplicate step id {step.id!r} (first at line {seen_ids[step.id]})",
                        code="duplicate-id",
                    )
                )
            seen_ids.setdefault(step.id, line)
            rb.steps.append(step)
    if not rb.title:
        rb.title = rb.id


def _make_step(
    rb: Runbook,
    kind: StepKind,
    lang: str,
    attrs: dict[str, str],
    code: str,
    line: int,
    section: Section,
    heading: str,
) -> Step:
    where = str(rb.path)

    def err(message: str) -> None:
        rb.problems.append(Problem(where, line, "error", message, code="attrs"))

    step = Step(
        id="",
        kind=kind,
        phase=section.phase,
        section=section.title,
        title=heading or section.title,
        code=code,
        line=line,
        lang=lang,
        attrs=dict(attrs),
    )
    for key, value in attrs.items():
        if key not in STEP_ATTRS:
            err(f"unknown step attribute {key!r}")
        elif key in FLAG_ATTRS:
            flag = _flag(value)
            if flag is None:
                err(f"attribute {key}={value!r} must be true or false")
            else:
                setattr(step, key, flag)
        elif key == "timeout":
            try:
                step.timeout = parse_duration(value, field="timeout")
            except InvalidInput:
                err(f"unparsable timeout {value!r} (write e.g. 30s, 5m)")
                step.timeout = DEFAULT_TIMEOUT
            if step.timeout <= timedelta(0) or step.timeout > timedelta(hours=6):
                err(f"timeout {value!r} must be between 1s and 6h")
                step.timeout = DEFAULT_TIMEOUT
        elif key == "id":
            if ID_RE.fullmatch(value):
                step.id = value
            else:
                err(f"step id {value!r} must be kebab-case (a-z, 0-9, '-')")
        elif key == "conn":
            step.conn = value
    return step


def load_folder(path: Path | str) -> Catalog:
    """Every `*.md` under `path` (README and index files excepted) by id.

    Files that fail to load are listed in `Catalog.problems`; a second file
    with an id already taken is a problem too (the first one wins).
    """
    root = Path(path)
    catalog = Catalog(root=root)
    if not root.is_dir():
        raise InvalidInput(f"{root}: runbook folder does not exist")
    for file in sorted(root.rglob("*.md")):
        if file.name.lower() in ("readme.md", "_index.md", "index.md"):
            continue
        if any(part.startswith(".") for part in file.relative_to(root).parts):
            continue
        try:
            rb = load_file(file)
        except InvalidInput as exc:
            catalog.problems.append(_problem_from(exc, file))
            continue
        other = catalog.runbooks.get(rb.id)
        if other is not None:
            catalog.problems.append(
                Problem(
                    str(file),
                    rb.front_matter_lines.get("id", 1),
                    "error",
                    f"duplicate runbook id {rb.id!r} (also in {other.path})",
                    code="duplicate-id",
                )
            )
            continue
        catalog.runbooks[rb.id] = rb
    return catalog


def _problem_from(exc: InvalidInput, file: Path) -> Problem:
    match = re.match(r"(.*?):(\d+): (.*)", exc.message, re.S)
    if match and match.group(1) == str(file):
        return Problem(str(file), int(match.group(2)), "error", match.group(3), code="load")
    return Problem(str(file), 1, "error", exc.message, code="load")
