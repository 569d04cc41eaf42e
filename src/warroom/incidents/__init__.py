"""Incidents: lifecycle, severity policy and clocks, roles, timeline, communications."""
