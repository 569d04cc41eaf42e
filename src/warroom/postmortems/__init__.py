"""Postmortem drafts, action items, drills and reports."""
