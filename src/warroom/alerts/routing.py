"""Route an alert: first matching route, group key, severity and runbook (pure, no database)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from warroom.alerts.sources import Normalized
from warroom.config.schema import Config, Route
from warroom.core.errors import InvalidInput
from warroom.core.logging import get_logger
from warroom.core.matchers import Matcher
from warroom.runbooks import loader
from warroom.runbooks.model import Catalog

log = get_logger("warroom.alerts")

MAX_GROUP_KEY = 300
# What senders put in `severity` labels, mapped onto our P-levels when no route decides.
SOURCE_SEVERITY = {
    "critical": "P1",
    "page": "P1",
    "high": "P2",
    "error": "P2",
    "major": "P2",
    "warning": "P3",
    "warn": "P3",
    "minor": "P3",
    "low": "P3",
    "info": "P3",
}
DEFAULT_ROUTE = Route(match=[], group_by=["alertname"])


@dataclass(frozen=True)
class Decision:
    """Where one alert goes."""

    route_index: int | None  # None: no route matched, the built-in default applied
    route: Route
    group_key: str
    group_labels: dict[str, str]
    severity: str
    runbook: str | None
    runbook_source: str  # route | trigger | runbook_url | none
    service: str | None


class CatalogCache:
    """The runbook catalog, reloaded when a file under the folder changes (checked at most every 2 s)."""

    def __init__(self, root: Path, *, check_every: float = 2.0) -> None:
        self.root = root
        self.check_every = check_every
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._stamp: tuple[tuple[str, int, int], ...] = ()
        self._checked = -1e9

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        if not self.root.is_dir():
            return ()
        out = []
        for f in sorted(self.root.rglob("*.md")):
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def get(self, *, monotonic: float) -> Catalog:
        with self._lock:
            if self._catalog is not None and monotonic - self._checked < self.check_every:
                return self._catalog
            self._checked = monotonic
            stamp = self._scan()
            if self._catalog is None or stamp != self._stamp:
                try:
                    self._catalog = loader.load_folder(self.root)
                except InvalidInput as exc:
                    log.warning("runbooks_unavailable", path=str(self.root), error=exc.message)
                    self._catalog = Catalog(root=self.root)
                self._stamp = stamp
                log.info("runbooks_loaded", path=str(self.root), count=len(self._catalog.runbooks))
            return self._catalog


_matchers_cache: dict[int, list[Matcher]] = {}


def _route_matchers(route: Route) -> list[Matcher]:
    key = id(route)
    found = _matchers_cache.get(key)
    if found is None:
        found = route.matchers()
        _matchers_cache[key] = found
    return found


def match_route(
    config: Config, labels: dict[str, str], *, integration: str
) -> tuple[int | None, Route]:
    for i, route in enumerate(config.routes):
        if route.integration is not None and route.integration != integration:
            continue
        if all(m.matches(labels) for m in _route_matchers(route)):
            return i, route
    return None, DEFAULT_ROUTE


def group_key(
    route_index: int | None, route: Route, labels: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """`r<index>|name=value,...` from the route's group_by labels; hashed when too long."""
    values = {name: labels.get(name, "") for name in route.group_by}
    if "..." in route.group_by:  # Alertmanager's "group by every label"
        values = dict(sorted(labels.items()))
    prefix = f"r{'d' if route_index is None else route_index}|"
    text = prefix + ",".join(f"{k}={v}" for k, v in values.items())
    if len(text) > MAX_GROUP_KEY:
        digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
        text = prefix + "sha256:" + digest
    return text, values


def decide(
    config: Config, alert: Normalized, *, integration: str, catalog: Catalog | None
) -> Decision:
    index, route = match_route(config, alert.labels, integration=integration)
    key, values = group_key(index, route, alert.labels)
    runbook, source = _runbook(route, alert, catalog)
    severity = route.severity.value if route.severity is not None else None
    if severity is None and runbook is not None and catalog is not None:
        rb = catalog.get(runbook)
        if rb is not None and rb.severity in ("P0", "P1", "P2", "P3"):
            severity = rb.severity
    if severity is None:
        severity = SOURCE_SEVERITY.get(alert.source_severity.lower(), "P2")
    service = route.service or alert.labels.get("service") or None
    return Decision(index, route, key, values, severity, runbook, source, service)


def _runbook(route: Route, alert: Normalized, catalog: Catalog | None) -> tuple[str | None, str]:
    if route.runbook:
        return route.runbook, "route"
    if catalog is not None:
        hits = catalog.matching(alert.labels)
        if hits:
            return sorted(hits, key=lambda r: r.id)[0].id, "trigger"
        url = alert.annotations.get("runbook_url", "")
        if url and catalog is not None:
            stem = url.rstrip("/").rsplit("/", 1)[-1].split("#", 1)[0].removesuffix(".md")
            if catalog.get(stem) is not None:
                return stem, "runbook_url"
            for rb in catalog:
                if rb.path.name == stem + ".md" or rb.path.stem == stem:
                    return rb.id, "runbook_url"
    return None, "none"
