"""The callback form over HTTP (issue 5, "Callback form").

`POST /api/forms/callback` validates the form, stores it with its e-mail in the outbox
(one SQLite transaction, `server.persist.MailStore`) and answers 202: the relay may be
down, the form is not lost, the mailer retries until the relay accepts it.
`GET /api/forms/callback` lists the latest forms with the state of their e-mail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from server.api_types import CallbackForm, SwitchApi
from server.mailer import Mailer, MailerError
from server.persist import StoreError

__all__ = ["forms_router"]

log = logging.getLogger(__name__)


def _mailer(api: SwitchApi) -> Mailer:
    if api.mailer is None:
        raise HTTPException(503, "e-mail is not configured (the mail: section)")
    return api.mailer


def forms_router(api: SwitchApi) -> APIRouter:
    """`/api/forms/callback`."""
    router = APIRouter(prefix="/api/forms", tags=["forms"])

    @router.post("/callback", status_code=202)
    async def submit(form: CallbackForm) -> JSONResponse:
        mailer = _mailer(api)
        known = {*api.services, *api.acd.queue_names(), *mailer.settings.referents}
        if form.service not in known:
            raise HTTPException(404, f"unknown service {form.service!r}")
        try:
            form_id, to = await mailer.submit_form(form)
        except MailerError as exc:
            raise HTTPException(422, str(exc)) from exc
        except StoreError as exc:
            log.error("callback form not stored: %s", exc)
            raise HTTPException(503, "the form could not be stored; try again") from exc
        log.info("callback form %d for %s queued to %s", form_id, form.service, to)
        return JSONResponse({"id": form_id, "status": "queued", "to": to}, status_code=202)

    @router.get("/callback")
    async def latest(limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
        return await _forms(_mailer(api), limit)

    return router


async def _forms(mailer: Mailer, limit: int) -> list[dict[str, Any]]:
    try:
        return await asyncio.to_thread(mailer.store.forms, limit=limit)
    except StoreError as exc:
        raise HTTPException(503, str(exc)) from exc
