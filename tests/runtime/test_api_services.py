"""Service state and calendar overrides over HTTP, persisted across restarts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from api_harness import Api, Clock, client_for, detail, make_runtime

from routing.calendar import Closed, Open

SERVICE = "io-partecipo"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    clock = Clock()
    runtime = make_runtime(tmp_path / "var", clock)
    async with client_for(runtime) as client:
        yield Api(runtime, clock, client)


def later(api: Api, **delta: float) -> str:
    return (api.clock.wall(api.clock.now) + timedelta(**delta)).isoformat()


async def services(api: Api) -> dict[str, dict[str, object]]:
    response = await api.client.get("/api/services")
    assert response.status_code == 200
    return {s["service"]: s for s in response.json()}


async def test_lists_every_service_with_its_state_now(api: Api) -> None:
    listed = await services(api)
    assert set(listed) == set(api.runtime.services)
    assert listed[SERVICE]["state"] == "open"
    api.clock.now += 8 * 3600  # 19:00 in Rome
    listed = await services(api)
    assert (listed[SERVICE]["state"], listed[SERVICE]["reason"]) == ("closed", "after_hours")


async def test_override_closes_the_service_at_once(api: Api) -> None:
    until = later(api, hours=2)
    response = await api.client.put(
        f"/api/services/{SERVICE}/override", json={"state": "closed", "until": until}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["reason"]) == ("closed", "override")
    assert body["override"]["state"] == "closed"
    state = api.runtime.calendar.state(SERVICE, api.clock.wall(api.clock.now))
    assert state == Closed(reason="override")
    other = api.runtime.calendar.state("uru", api.clock.wall(api.clock.now))
    assert isinstance(other, Open)


async def test_override_lapses_at_its_instant(api: Api) -> None:
    api.clock.now += 8 * 3600  # after hours
    await api.client.put(
        f"/api/services/{SERVICE}/override", json={"state": "open", "until": later(api, hours=1)}
    )
    assert (await services(api))[SERVICE]["state"] == "open"
    api.clock.now += 3600
    assert (await services(api))[SERVICE]["state"] == "closed"


async def test_override_survives_a_restart(api: Api, tmp_path: Path) -> None:
    until = later(api, days=1)
    await api.client.put(
        f"/api/services/{SERVICE}/override", json={"state": "closed", "until": until}
    )
    stored = json.loads((tmp_path / "var" / "overrides.json").read_text())
    assert stored[SERVICE]["state"] == "closed"
    restarted = make_runtime(tmp_path / "var", api.clock)
    state = restarted.calendar.state(SERVICE, api.clock.wall(api.clock.now))
    assert state == Closed(reason="override")


async def test_expired_override_is_not_loaded(api: Api, tmp_path: Path) -> None:
    await api.client.put(
        f"/api/services/{SERVICE}/override", json={"state": "closed", "until": later(api, hours=1)}
    )
    clock = Clock(now=api.clock.now + 7200)
    restarted = make_runtime(tmp_path / "var", clock)
    assert restarted.calendar.overrides.active(SERVICE, clock.wall(clock.now)) is None
    assert SERVICE not in restarted.calendar.overrides


async def test_delete_clears_and_persists(api: Api, tmp_path: Path) -> None:
    path = f"/api/services/{SERVICE}/override"
    await api.client.put(path, json={"state": "closed", "until": later(api, days=1)})
    response = await api.client.delete(path)
    assert response.status_code == 200
    assert response.json()["state"] == "open"
    assert response.json()["override"] is None
    assert (await api.client.delete(path)).status_code == 404
    restarted = make_runtime(tmp_path / "var", api.clock)
    assert SERVICE not in restarted.calendar.overrides


async def test_corrupt_file_is_ignored_at_start(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "overrides.json").write_text('{"uru": {"state": "ajar"}}')
    clock = Clock()
    runtime = make_runtime(tmp_path / "var", clock)
    assert isinstance(runtime.calendar.state("uru", clock.wall(clock.now)), Open)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"state": "closed", "until": "2026-11-25T09:00:00+00:00"}, 422),  # in the past
        ({"state": "closed", "until": "2030-01-01T00:00:00"}, 422),  # no offset
        ({"state": "ajar", "until": "2030-01-01T00:00:00Z"}, 422),
        ({"state": "open"}, 422),
        ({"state": "open", "until": "2030-01-01T00:00:00Z", "extra": 1}, 422),
    ],
)
async def test_bad_override_is_refused(api: Api, body: dict[str, object], status: int) -> None:
    response = await api.client.put(f"/api/services/{SERVICE}/override", json=body)
    assert response.status_code == status
    assert SERVICE not in api.runtime.calendar.overrides


async def test_unknown_service_is_404(api: Api) -> None:
    body = {"state": "open", "until": later(api, hours=1)}
    response = await api.client.put("/api/services/nope/override", json=body)
    assert response.status_code == 404
    assert "nope" in detail(response)
    assert (await api.client.get("/api/services/nope")).status_code == 404
    assert (await api.client.delete("/api/services/nope/override")).status_code == 404
