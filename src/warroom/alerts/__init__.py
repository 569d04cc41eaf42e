"""Alert ingestion: sources translate payloads; dedup, grouping, routing, diagnostics."""
