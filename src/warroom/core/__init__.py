"""Leaf utilities shared by every domain: errors, clock, durations, redaction."""
