"""warroom: self-hosted incident response built from a team's runbook folder."""

__version__ = "0.1.0"
