"""Sandboxed Jinja2 for user-editable templates (communications, notifications).

Data from alerts and people is only ever passed in as values; it is never
rendered as template text itself, and nothing is rendered twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from warroom.core.errors import InvalidInput

_env = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)


def render(template_text: str, values: Mapping[str, Any], *, name: str = "template") -> str:
    """Render trusted template text (from config) with untrusted values.

    Raises InvalidInput when the template itself is broken or names a value
    that does not exist.
    """
    try:
        return _env.from_string(template_text).render(**values)
    except TemplateError as exc:
        raise InvalidInput(f"{name}: {exc}", field=name) from None


def check(template_text: str, *, name: str = "template") -> None:
    """Compile only, for config validation."""
    try:
        _env.parse(template_text)
    except TemplateError as exc:
        raise InvalidInput(f"{name}: {exc}", field=name) from None
