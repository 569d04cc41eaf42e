"""Executable Markdown runbooks: format, parameters, lint, executor, run records."""
