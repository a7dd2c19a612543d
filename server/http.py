"""The HTTP API: health, Prometheus metrics, and the operators' and services' API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse


def create_app(health: Callable[[], dict[str, Any]], metrics: Callable[[], bytes]) -> FastAPI:
    """Build the FastAPI application around the running switch's callables."""
    app = FastAPI(title="Centralino", version="0.1.0")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        state = health()
        return JSONResponse(state, status_code=200 if state.get("status") == "ok" else 503)

    @app.get("/metrics")
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics(), media_type="text/plain; version=0.0.4")

    return app
