"""Escaping user data for the Markdown export: structure survives whatever people type."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from warroom.postmortems import markdown

pytestmark = pytest.mark.unit

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
NASTY = st.text(
    alphabet=st.sampled_from(list("#*_`[]()<>!|~+-=.:1 a\\&\n")) | st.characters(), max_size=60
)


def _flat(tokens: list) -> list:  # type: ignore[type-arg]
    return [t for tok in tokens for t in [tok, *(tok.children or [])]]


@settings(max_examples=300, deadline=None)
@given(NASTY)
def test_inline_value_renders_as_its_own_plain_text_in_a_list_item(text: str) -> None:
    line = markdown.inline(text)
    assert "\n" not in line
    tokens = MD.parse(f"- 10:00 - {line}\n")
    kinds = [t.type for t in tokens]
    assert kinds == [
        "bullet_list_open",
        "list_item_open",
        "paragraph_open",
        "inline",
        "paragraph_close",
        "list_item_close",
        "bullet_list_close",
    ]
    children = tokens[3].children or []
    assert {c.type for c in children} <= {"text", "softbreak"}
    rendered = "".join(c.content for c in children)
    # entities like &amp; may be decoded; everything else comes back as typed
    if "&" not in text:
        visible = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
        assert rendered.rstrip() == ("10:00 - " + " ".join(visible.split())).rstrip()


@settings(max_examples=200, deadline=None)
@given(NASTY)
def test_prose_never_opens_a_section_or_carries_html(text: str) -> None:
    doc = "## Summary\n\n" + markdown.prose(text) + "\n\n## Next\n"
    flat = _flat(MD.parse(doc))
    headings = [t for t in flat if t.type == "heading_open"]
    assert len(headings) == 2
    assert not [t for t in flat if t.type in ("html_block", "html_inline")]


def test_prose_keeps_the_authors_emphasis_and_lists() -> None:
    text = "The pool was *exhausted*:\n\n- 200 of 200 connections\n- `max_connections` hit"
    assert markdown.prose(text) == text


def test_inline_escapes_block_starts() -> None:
    assert markdown.inline("1. not a list") == "1\\. not a list"
    assert markdown.inline("- dash") == "\\- dash"
    assert markdown.inline("# head | cell") == "\\# head \\| cell"
