"""Markdown export of a postmortem: the default template and escaping of user data.

The export must render on any Git host as plain Markdown. Values that come
from people and alerts are escaped before the template sees them: one-line
values (titles, timeline entries, owners) lose every character Markdown could
read as structure, and prose fields keep their inline Markdown but can neither
open new sections nor carry raw HTML.
"""

from __future__ import annotations

import re

# Characters with inline meaning in CommonMark / GFM ('|' breaks tables, '~' strikes through).
_INLINE = re.compile(r"([\\`*_\[\]<>#+!|~])")
# A line start that would still open a block after inline escaping: an ordered
# list marker ("1." / "1)") or a dash, plus, equals sign.
_ORDERED = re.compile(r"^(\d{1,9})([.)])")
_LEADING = re.compile(r"^([-+=])")
_HTML = re.compile(r"[<>&]")
# Control characters: invisible, and NUL turns into U+FFFD on every renderer.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def inline(text: str) -> str:
    """One line, every Markdown-significant character escaped (titles, list entries)."""
    flat = " ".join(_CONTROL.sub("", str(text)).split())
    escaped = _INLINE.sub(r"\\\1", flat)
    escaped = _ORDERED.sub(r"\1\\\2", escaped, count=1)
    return _LEADING.sub(r"\\\1", escaped, count=1)


def prose(text: str) -> str:
    """Multi-line text written by people: keeps emphasis, links and lists, but no headings,
    no raw HTML and no unclosed fences that would swallow the rest of the document."""
    out: list[str] = []
    for raw in _CONTROL.sub("", str(text)).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _HTML.sub(lambda m: _ENTITIES[m.group(0)], raw)
        stripped = line.lstrip()
        if stripped.startswith(("#", "```", "~~~", "===")):
            indent = line[: len(line) - len(stripped)]
            line = indent + "\\" + stripped
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out)


# The README's postmortem structure, in our words. Rendered with the sandboxed
# Jinja environment; every value is already escaped for Markdown.
DEFAULT_TEMPLATE = """\
# Postmortem: {{ title }}

{% if is_drill %}> **Drill**: this incident was a rehearsal, not a real outage.

{% endif %}\
- **Incident:** #{{ number }}
- **Date:** {{ date }}
- **Duration:** {{ duration }}
- **Severity:** {{ severity }} ({{ severity_name }})
- **Impact:** {{ impact or "_not recorded yet_" }}
- **Status:** {{ state }}

## Summary

{{ summary or "_What happened, in two or three sentences._" }}

## Timeline

Times are {{ timezone }}.

{% for entry in timeline %}- {{ entry.time }} - {{ entry.text }}
{% else %}- _no events recorded_
{% endfor %}
## Root Cause

{{ root_cause or "_Why it happened. Keep asking why until the answer is something we can change._" }}

## Resolution

{{ resolution or "_What stopped the impact, and what made the fix stick._" }}

## Action Items

{% for item in action_items %}- [{{ "x" if item.done else " " }}] {{ item.text }}
{% else %}- [ ] _none recorded yet_
{% endfor %}
## Lessons Learned

{{ lessons or "_What went well, what went badly, where we got lucky._" }}
"""
