"""`create_app()`: the only way to an app. Routers are included here, nothing at import time."""

from __future__ import annotations

import importlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from warroom import __version__
from warroom.jobs.runtime import Runtime
from warroom.jobs.worker import Registry, Worker
from warroom.web import errors
from warroom.web.middleware import GuardMiddleware

# Router modules, each exposing `router` (and optionally `install(app)`).
ROUTERS: tuple[str, ...] = (
    "warroom.web.api.health",
    "warroom.web.api.runbooks",
    "warroom.web.api.incidents",
    "warroom.web.api.auth",
    "warroom.web.api.jobs",
    "warroom.web.api.alerts",
    "warroom.web.api.oncall",
    "warroom.web.api.ack",
    "warroom.web.api.postmortems",
    "warroom.web.api.reports",
    "warroom.web.api.statuspage",
    "warroom.web.pages.routes",
)


def create_app(
    runtime: Runtime, registry: Registry | None = None, *, run_worker: bool = True
) -> FastAPI:
    worker: Worker | None = Worker(runtime, registry) if (run_worker and registry) else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = None
        if worker is not None:
            thread = threading.Thread(target=worker.run_forever, name="warroom-worker", daemon=True)
            thread.start()
        try:
            yield
        finally:
            if worker is not None and thread is not None:
                worker.stop()
                thread.join(timeout=10)
            runtime.db.dispose()

    app = FastAPI(
        title="warroom",
        version=__version__,
        description="Incident response: runbooks, incidents, alerts, on-call, status page.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.worker = worker
    errors.install(app)
    app.add_middleware(GuardMiddleware)
    for name in ROUTERS:
        _mount(app, importlib.import_module(name))
    return app


def _mount(app: FastAPI, module: object) -> None:
    install = getattr(module, "install", None)
    if callable(install):
        install(app)
    router = getattr(module, "router", None)
    if router is not None:
        app.include_router(router)
