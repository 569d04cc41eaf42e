"""Persistence: engine and sessions, the one transaction helper, audit log, migrations."""
