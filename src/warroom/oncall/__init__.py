"""On-call schedules (layers, rotations, overrides) and the escalation engine."""
