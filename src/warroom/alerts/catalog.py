"""The runbook catalog shared by ingest and diagnostics in one process (reloaded on file change)."""

from __future__ import annotations

import time

from warroom.alerts.routing import CatalogCache
from warroom.jobs.runtime import Runtime
from warroom.runbooks.model import Catalog

_KEY = "alerts.catalog"


def catalog(rt: Runtime) -> Catalog:
    cache = rt.extras.get(_KEY)
    if not isinstance(cache, CatalogCache) or cache.root != rt.settings.runbooks_path:
        cache = CatalogCache(rt.settings.runbooks_path)
        rt.extras[_KEY] = cache
    return cache.get(monotonic=time.monotonic())
