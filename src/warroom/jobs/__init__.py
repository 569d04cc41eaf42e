"""Durable jobs: outbox rows written with the state change, claimed with a lease."""
