"""Load and validate warroom.yaml: one clear line per mistake, secrets as env:NAME."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from warroom.config import schema
from warroom.config.schema import ENV_REF, Config
from warroom.config.yamlsafe import load_yaml
from warroom.core.errors import ConfigError, InvalidInput

EnvLookup = Callable[[str], str | None]


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_MODEL_NAMES = {
    name
    for name, obj in vars(schema).items()
    if isinstance(obj, type) and issubclass(obj, BaseModel)
} | {"function-after", "function-before", "literal['daily','weekly']"}


def format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # drop pydantic's union branch names (e.g. 'EveryRotation') from the path
        loc = tuple(p for p in loc if not (isinstance(p, str) and p in _MODEL_NAMES))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/config.md)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append(f"{_path(loc)}: {msg}")
    return problems


def parse_config(data: Any, *, source: str = "warroom.yaml") -> Config:
    """Validate parsed YAML into a Config; raises ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping of keys"], source=source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), source=source) from None
    problems = cross_check(config)
    if problems:
        raise ConfigError(problems, source=source)
    return config


def load_config(path: Path) -> Config:
    """Read and validate a config file. Raises ConfigError / InvalidInput."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"file not found (create it, or set WARROOM_CONFIG); see {source}.example"],
            source=source,
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(["file is not valid UTF-8"], source=source) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], source=source) from None
    try:
        data = load_yaml(text, source=source)
    except InvalidInput as exc:
        rest = exc.message.removeprefix(source)
        m = re.match(r":(\d+): (.*)", rest, re.S)
        problem = f"line {m.group(1)}: {m.group(2)}" if m else rest.lstrip(": ")
        raise ConfigError([problem], source=source) from None
    return parse_config(data, source=source)


def cross_check(config: Config) -> list[str]:
    """References between sections: people, teams, schedules, policies, channels."""
    problems: list[str] = []
    people = {p.id for p in config.people}
    teams = {t.id for t in config.teams}
    schedules = {s.id for s in config.schedules}

    def dup(kind: str, ids: list[str]) -> None:
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                problems.append(f"{kind}: duplicate id {i!r}")
            seen.add(i)

    dup("people", [p.id for p in config.people])
    dup("teams", [t.id for t in config.teams])
    dup("schedules", [s.id for s in config.schedules])
    dup("integrations", [i.id for i in config.integrations])
    tokens = [i.token for i in config.integrations]
    if len(set(tokens)) != len(tokens):
        problems.append(
            "integrations: two integrations share one token (each source needs its own)"
        )

    for p_i, person in enumerate(config.people):
        for c_i, method in enumerate(person.contact):
            if method.channel not in config.channels:
                problems.append(
                    f"people[{p_i}].contact[{c_i}].channel: unknown channel {method.channel!r}"
                )
            elif config.channels[method.channel].type == "smtp":
                if not (method.address or person.email):
                    problems.append(
                        f"people[{p_i}].contact[{c_i}]: email channel but person has no email"
                    )
            elif not method.address and config.channels[method.channel].type == "slack_webhook":
                pass  # a shared incoming webhook needs no per-person address
    for t_i, team in enumerate(config.teams):
        if team.lead and team.lead not in people:
            problems.append(f"teams[{t_i}].lead: unknown person {team.lead!r}")
        for m in team.members:
            if m not in people:
                problems.append(f"teams[{t_i}].members: unknown person {m!r}")
    for s_i, sched in enumerate(config.schedules):
        for l_i, layer in enumerate(sched.layers):
            for m in layer.members:
                if m not in people:
                    problems.append(f"schedules[{s_i}].layers[{l_i}].members: unknown person {m!r}")
        for o_i, override in enumerate(sched.overrides):
            if override.person not in people:
                problems.append(
                    f"schedules[{s_i}].overrides[{o_i}].person: unknown person {override.person!r}"
                )
    for name, policy in config.escalation_policies.items():
        for l_i, level in enumerate(policy.levels):
            for target in level.notify:
                kind, _, rest = target.partition(":")
                ident = rest.split(":", 1)[0]
                known = {
                    "schedule": schedules,
                    "person": people,
                    "team": teams,
                    "channel": set(config.channels),
                }[kind]
                if ident not in known:
                    problems.append(
                        f"escalation_policies.{name}.levels[{l_i}].notify: unknown {kind} {ident!r}"
                    )
            for ch in level.channels or []:
                if ch not in config.channels:
                    problems.append(
                        f"escalation_policies.{name}.levels[{l_i}].channels: unknown channel {ch!r}"
                    )
    if config.escalation_policies:
        for sev, pol in config.severities.items():
            if pol.escalation and pol.escalation not in config.escalation_policies:
                problems.append(
                    f"severities.{sev.value}.escalation: unknown escalation policy "
                    f"{pol.escalation!r}"
                )
    for r_i, route in enumerate(config.routes):
        if route.escalation and route.escalation not in config.escalation_policies:
            problems.append(f"routes[{r_i}].escalation: unknown policy {route.escalation!r}")
        if route.integration and config.integration(route.integration) is None:
            problems.append(f"routes[{r_i}].integration: unknown integration {route.integration!r}")
    for name, channel in config.channels.items():
        if channel.fallback and channel.fallback not in config.channels:
            problems.append(f"channels.{name}.fallback: unknown channel {channel.fallback!r}")
        if channel.fallback == name:
            problems.append(f"channels.{name}.fallback: a channel cannot fall back to itself")
    for i, pattern in enumerate(config.redact_patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"redact_patterns[{i}]: invalid regex: {exc}")
    return problems


def iter_secret_refs(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every `env:NAME` string in the config, with its key path."""
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from iter_secret_refs(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from iter_secret_refs(v, f"{path}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from iter_secret_refs(v, f"{path}[{i}]")
    elif isinstance(obj, str):
        m = ENV_REF.match(obj)
        if m:
            yield path, m.group(1)


def resolve_secret(value: str | None, lookup: EnvLookup, *, field: str = "") -> str | None:
    """`env:NAME` → the variable's value; plain strings pass through.

    Raises ConfigError when the variable is not set.
    """
    if value is None:
        return None
    m = ENV_REF.match(value)
    if not m:
        return value
    resolved = lookup(m.group(1))
    if resolved is None:
        raise ConfigError(
            [f"{field or value}: environment variable {m.group(1)} is not set"],
            source="environment",
        )
    return resolved


def missing_env(config: Config, lookup: EnvLookup) -> list[str]:
    return [
        f"{path}: environment variable {name} is not set"
        for path, name in iter_secret_refs(config)
        if lookup(name) is None
    ]


def secret_values(config: Config, lookup: EnvLookup) -> list[str]:
    """Resolved values of every env: reference, for the redactor."""
    out = []
    for _, name in iter_secret_refs(config):
        value = lookup(name)
        if value:
            out.append(value)
    return out
