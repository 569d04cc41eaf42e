"""Domain modules the pages read that other parts of warroom may not ship in every build.

The web layer sits above every domain, so it may import them all; these few
are looked up once at import so a build without, say, the runbook executor
still serves every other page (the page then says the feature is unavailable).
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


comms = _optional("warroom.incidents.comms")
oncall = _optional("warroom.oncall.service")
runbook_loader = _optional("warroom.runbooks.loader")
runbook_lint = _optional("warroom.runbooks.lint")
runbook_executor = _optional("warroom.runbooks.executor")
runbook_maintenance = _optional("warroom.runbooks.maintenance")
