"""The HTTP API: health, Prometheus metrics, and the operators' and services' API.

Every handler is `async def`, so it runs on the event loop that also drives SIP, media
and the ACD: an operator's control changes the engine with no lock and no thread hop.
With a token (`http.token`), every request but /healthz and /metrics must carry it
(`server.api_auth`). docs/api.md documents each endpoint.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from server.api_auth import BearerAuth
from server.api_forms import forms_router
from server.api_notices import notices_router
from server.api_operators import operators_router
from server.api_services import services_router
from server.api_types import SwitchApi

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(switch: SwitchApi, *, token: str | None = None) -> FastAPI:
    """Build the FastAPI application around the running switch; `token` set, the API
    answers only requests that carry it as a bearer token."""
    app = FastAPI(title="Centralino", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        state = switch.health()
        return JSONResponse(state, status_code=200 if state.get("status") == "ok" else 503)

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(switch.metrics(), media_type="text/plain; version=0.0.4")

    app.include_router(operators_router(switch))
    app.include_router(services_router(switch))
    app.include_router(notices_router(switch))
    app.include_router(forms_router(switch))
    if token is not None:
        app.add_middleware(BearerAuth, token=token)
    log.info("HTTP API authentication: %s", "bearer token" if token else "none")
    return app
