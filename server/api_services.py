"""Service state and calendar overrides over HTTP, persisted across restarts.

`PUT /api/services/{service}/override` forces a service open or closed until an instant
(Saturday openings by agreement, Io Partecipo's campaigns); `DELETE` clears it. The
override takes effect at once: the calendar is shared with call control, and the next
call's IVR asks it. Overrides are kept in `<data_dir>/overrides.json` (the JSON of
`routing.calendar.Overrides`), replaced atomically on every change and read at start.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import TypeAdapter, ValidationError

from routing.calendar import Closed, Override, Overrides
from server.api_types import OverrideBody, SwitchApi
from server.persist import read_optional, write_atomically

__all__ = ["OverrideStore", "services_router"]

log = logging.getLogger(__name__)

# The format of `Overrides.to_json`, read service by service.
_STORED = TypeAdapter(dict[str, Override])


class OverrideStore:
    """The calendar's runtime overrides and their file."""

    def __init__(self, path: Path, overrides: Overrides) -> None:
        self.path = path
        self.overrides = overrides
        self._lock = asyncio.Lock()

    def load(self, *, at: datetime) -> int:
        """Apply the persisted overrides still in force; returns how many.

        A persisted override wins over one written in the configuration for the same
        service; an unreadable file is logged and ignored (the configuration applies).
        """
        data = read_optional(self.path)
        if data is None:
            return 0
        try:
            stored = _STORED.validate_json(data)
        except ValidationError as exc:
            log.error("ignoring %s: not valid overrides (%d errors)", self.path, exc.error_count())
            return 0
        live = {service: o for service, o in stored.items() if o.active(at)}
        for service, override in live.items():
            self.overrides.set(service, override)
        return len(live)

    async def set(self, service: str, override: Override, *, at: datetime) -> None:
        """Persist, then apply (a failed write changes nothing)."""
        async with self._lock:
            candidate = self._copy()
            candidate.set(service, override)
            await self._save(candidate, at=at)
            self.overrides.set(service, override)

    async def clear(self, service: str, *, at: datetime) -> bool:
        """Remove a service's override; returns whether there was one in force."""
        async with self._lock:
            if service not in self.overrides:
                return False
            had = self.overrides.active(service, at) is not None
            candidate = self._copy()
            candidate.clear(service)
            await self._save(candidate, at=at)
            self.overrides.clear(service)
            return had

    def _copy(self) -> Overrides:
        return Overrides.from_json(self.overrides.to_json())

    async def _save(self, overrides: Overrides, *, at: datetime) -> None:
        overrides.expire(at)
        await asyncio.to_thread(write_atomically, self.path, overrides.to_json())


def service_view(api: SwitchApi, service: str) -> dict[str, Any]:
    """One service as `GET /api/services` shows it."""
    at = api.wall()
    state = api.calendar.state(service, at)
    override = api.calendar.overrides.active(service, at)
    return {
        "service": service,
        "name": api.services[service].name,
        "state": "closed" if isinstance(state, Closed) else "open",
        "reason": state.reason if isinstance(state, Closed) else None,
        "override": override.model_dump(mode="json") if override is not None else None,
        "notice": api.notices.describe(service),
    }


def known_service(api: SwitchApi, service: str) -> str:
    """`service` if configured, else 404."""
    if service not in api.services:
        raise HTTPException(404, f"unknown service {service!r}")
    return service


def services_router(api: SwitchApi) -> APIRouter:
    """`/api/services`: state now, overrides."""
    router = APIRouter(prefix="/api/services", tags=["services"])

    @router.get("")
    async def list_services() -> list[dict[str, Any]]:
        return [service_view(api, service) for service in api.services]

    @router.get("/{service}")
    async def get_service(service: str) -> dict[str, Any]:
        return service_view(api, known_service(api, service))

    @router.put("/{service}/override")
    async def put_override(service: str, body: OverrideBody) -> dict[str, Any]:
        known_service(api, service)
        at = api.wall()
        if body.until <= at:
            raise HTTPException(422, "'until' must be in the future")
        await api.overrides.set(service, Override(state=body.state, until=body.until), at=at)
        log.info("service %s forced %s until %s", service, body.state, body.until.isoformat())
        return service_view(api, service)

    @router.delete("/{service}/override")
    async def delete_override(service: str) -> dict[str, Any]:
        known_service(api, service)
        if not await api.overrides.clear(service, at=api.wall()):
            raise HTTPException(404, f"service {service!r} has no override")
        log.info("service %s override cleared", service)
        return service_view(api, service)

    return router
