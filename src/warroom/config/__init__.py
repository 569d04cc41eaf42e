"""warroom.yaml: the organisation's incident process as code (schema and loader)."""
