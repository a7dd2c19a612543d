"""Operators' controls and the ACD's live state over HTTP (issue 5, "Operators' controls").

Each control is one ACD input, applied at once on the event loop, exactly as the
operator's feature code would be (`acd.staff.OperatorControls`); then `settle()` lets call
control send what the engine decided (a call offered to the operator who just became
ready rings at once). An unknown operator or call is 404; a control that is illegal in
the operator's state (ready while logged out) is 409 with the reason and the state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException

from acd.errors import (
    AcdError,
    InvalidInputError,
    InvalidOperatorActionError,
    UnknownCallError,
    UnknownOperatorError,
    UnknownQueueError,
)
from acd.view import OperatorSnapshot, QueueSnapshot
from server.api_types import DispositionBody, PauseBody, SwitchApi

__all__ = ["operators_router"]

log = logging.getLogger(__name__)


def operator_view(api: SwitchApi, snapshot: OperatorSnapshot) -> dict[str, Any]:
    """One operator as `GET /api/operators` shows it."""
    now = api.now()
    in_state = snapshot.time_in_states
    view: dict[str, Any] = {
        "id": snapshot.id,
        "name": snapshot.name,
        "state": str(snapshot.state),
        "reason": snapshot.reason,
        "registered": snapshot.registered,
        "call_id": snapshot.call_id,
        "calls_answered": snapshot.calls_answered,
        "pending": snapshot.pending,
        "time_in_states": {str(state): round(seconds, 3) for state, seconds in in_state.items()},
    }
    since = snapshot.since
    view["since"] = (api.wall() - timedelta(seconds=now - since)).isoformat()
    view["in_state_for"] = round(now - since, 3)
    return view


def queue_view(snapshot: QueueSnapshot) -> dict[str, Any]:
    """One queue as `GET /api/queues` shows it."""
    return {
        "name": snapshot.name,
        "waiting": snapshot.waiting,
        "ringing": snapshot.ringing,
        "callbacks": snapshot.callbacks,
        "longest_wait": round(snapshot.longest_wait, 3),
        "logged_in": snapshot.logged_in,
        "serving": snapshot.serving,
    }


def _http_error(exc: AcdError) -> HTTPException:
    if isinstance(exc, InvalidOperatorActionError):
        detail = {"error": str(exc), "action": exc.action, "state": exc.state}
        return HTTPException(409, detail)
    if isinstance(exc, UnknownOperatorError | UnknownCallError | UnknownQueueError):
        return HTTPException(404, str(exc))
    if isinstance(exc, InvalidInputError):
        return HTTPException(422, str(exc))
    return HTTPException(409, str(exc))


def _control(api: SwitchApi, operator: str, apply: Callable[[], None]) -> dict[str, Any]:
    """Apply one control, let call control act on it, answer the operator's new state."""
    try:
        apply()
    except AcdError as exc:
        raise _http_error(exc) from exc
    finally:
        api.settle()
    log.info("operator %s: %s", operator, api.acd.operator_state(operator))
    return operator_view(api, api.acd.operator_snapshot(operator, now=api.now()))


def operators_router(api: SwitchApi) -> APIRouter:
    """`/api/operators`, `/api/queues` and `/api/calls/{call_id}/disposition`."""
    router = APIRouter(prefix="/api", tags=["operators"])
    acd = api.acd

    @router.get("/operators")
    async def list_operators() -> list[dict[str, Any]]:
        now = api.now()
        return [operator_view(api, acd.operator_snapshot(o, now=now)) for o in acd.operator_ids()]

    @router.get("/operators/{operator}")
    async def get_operator(operator: str) -> dict[str, Any]:
        try:
            return operator_view(api, acd.operator_snapshot(operator, now=api.now()))
        except AcdError as exc:
            raise _http_error(exc) from exc

    @router.post("/operators/{operator}/login")
    async def login(operator: str) -> dict[str, Any]:
        return _control(api, operator, lambda: acd.operator_login(operator, now=api.now()))

    @router.post("/operators/{operator}/logout")
    async def logout(operator: str) -> dict[str, Any]:
        return _control(api, operator, lambda: acd.operator_logout(operator, now=api.now()))

    @router.post("/operators/{operator}/ready")
    async def ready(operator: str) -> dict[str, Any]:
        return _control(api, operator, lambda: acd.operator_ready(operator, now=api.now()))

    @router.post("/operators/{operator}/wrapup-done")
    async def wrapup_done(operator: str) -> dict[str, Any]:
        return _control(api, operator, lambda: acd.operator_wrapup_done(operator, now=api.now()))

    @router.post("/operators/{operator}/pause")
    async def pause(operator: str, body: PauseBody | None = None) -> dict[str, Any]:
        reason = body.reason if body is not None else None
        return _control(api, operator, lambda: acd.operator_pause(operator, reason, now=api.now()))

    @router.get("/queues")
    async def list_queues() -> list[dict[str, Any]]:
        now = api.now()
        return [queue_view(acd.queue_snapshot(q, now=now)) for q in acd.queue_names()]

    @router.post("/calls/{call_id}/disposition")
    async def disposition(call_id: str, body: DispositionBody) -> dict[str, Any]:
        try:
            acd.set_disposition(call_id, body.disposition, now=api.now())
        except AcdError as exc:
            raise _http_error(exc) from exc
        finally:
            api.settle()
        return {"call_id": call_id, "disposition": str(acd.disposition(call_id))}

    return router
