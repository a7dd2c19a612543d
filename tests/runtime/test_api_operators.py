"""Operators' controls and the ACD's live state over HTTP, on a real ACD engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from api_harness import Api, Clock, client_for, detail, make_runtime

from acd.events import OfferCall


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    clock = Clock()
    settled: list[float] = []
    runtime = make_runtime(tmp_path / "var", clock, settled=settled)
    async with client_for(runtime) as client:
        yield Api(runtime, clock, client, settled)


def offers(api: Api) -> list[tuple[str, str]]:
    return [(c.call_id, c.operator) for c in api.runtime.acd.commands() if isinstance(c, OfferCall)]


async def test_lists_every_configured_operator_logged_out(api: Api) -> None:
    response = await api.client.get("/api/operators")
    assert response.status_code == 200
    listed = {op["id"]: op for op in response.json()}
    assert set(listed) == {"1001", "1002", "1003", "1004"}
    assert {op["state"] for op in listed.values()} == {"logged_out"}
    assert listed["1001"]["calls_answered"] == 0


async def test_login_is_effective_at_once_and_settles_the_core(api: Api) -> None:
    api.clock.now += 5
    response = await api.client.post("/api/operators/1001/login")
    assert response.status_code == 200
    assert response.json()["state"] == "available"
    assert api.runtime.acd.operator_state("1001") == "available"
    assert api.settled == [api.clock.now]


async def test_unknown_operator_is_404(api: Api) -> None:
    for path in ("login", "logout", "ready", "pause", "wrapup-done"):
        response = await api.client.post(f"/api/operators/9999/{path}")
        assert response.status_code == 404, path
        assert "9999" in detail(response)
    assert (await api.client.get("/api/operators/9999")).status_code == 404


async def test_illegal_transition_is_409_with_the_reason(api: Api) -> None:
    response = await api.client.post("/api/operators/1001/ready")
    assert response.status_code == 409
    assert detail(response)["state"] == "logged_out"
    assert detail(response)["action"] == "ready"
    assert api.runtime.acd.operator_state("1001") == "logged_out"


async def test_pause_with_and_without_a_reason(api: Api) -> None:
    await api.client.post("/api/operators/1001/login")
    paused = await api.client.post("/api/operators/1001/pause", json={"reason": "pranzo"})
    assert paused.status_code == 200
    assert (paused.json()["state"], paused.json()["reason"]) == ("paused", "pranzo")
    ready = await api.client.post("/api/operators/1001/ready")
    assert ready.json()["state"] == "available"
    bare = await api.client.post("/api/operators/1001/pause")
    assert (bare.json()["state"], bare.json()["reason"]) == ("paused", "paused")


async def test_pause_reason_is_validated(api: Api) -> None:
    await api.client.post("/api/operators/1001/login")
    response = await api.client.post("/api/operators/1001/pause", json={"reason": "x" * 101})
    assert response.status_code == 422
    assert api.runtime.acd.operator_state("1001") == "available"


async def test_ready_offers_the_waiting_call_at_once(api: Api) -> None:
    acd = api.runtime.acd
    acd.operator_registered("1002", now=api.clock.now)
    acd.enqueue("call-1", "cps", now=api.clock.now)
    acd.commands()
    api.clock.now += 12.5
    queues = {q["name"]: q for q in (await api.client.get("/api/queues")).json()}
    assert (queues["cps"]["waiting"], queues["cps"]["longest_wait"]) == (1, 12.5)
    await api.client.post("/api/operators/1002/login")
    assert offers(api) == [("call-1", "1002")]
    queues = {q["name"]: q for q in (await api.client.get("/api/queues")).json()}
    assert (queues["cps"]["waiting"], queues["cps"]["ringing"]) == (0, 1)
    operator = (await api.client.get("/api/operators/1002")).json()
    assert (operator["state"], operator["call_id"]) == ("offered", "call-1")


async def test_logout_while_ringing_returns_the_call_to_the_queue(api: Api) -> None:
    acd = api.runtime.acd
    acd.operator_registered("1002", now=api.clock.now)
    acd.operator_login("1002", now=api.clock.now)
    acd.enqueue("call-1", "cps", now=api.clock.now)
    assert offers(api) == [("call-1", "1002")]
    response = await api.client.post("/api/operators/1002/logout")
    assert response.json()["state"] == "logged_out"
    assert acd.call_state("call-1") == "waiting"


def answer_and_end(api: Api, call_id: str, operator: str) -> None:
    acd, now = api.runtime.acd, api.clock.now
    acd.operator_registered(operator, now=now)
    acd.operator_login(operator, now=now)
    acd.enqueue(call_id, "mepat", now=now)
    acd.offer_answered(call_id, operator, now=now + 3)
    acd.call_ended(call_id, now=now + 60)
    api.clock.now = now + 61


async def test_wrapup_done_makes_the_operator_available(api: Api) -> None:
    answer_and_end(api, "call-7", "1003")
    listed = {op["id"]: op for op in (await api.client.get("/api/operators")).json()}
    assert (listed["1003"]["state"], listed["1003"]["calls_answered"]) == ("wrap_up", 1)
    response = await api.client.post("/api/operators/1003/wrapup-done")
    assert response.json()["state"] == "available"
    again = await api.client.post("/api/operators/1003/wrapup-done")
    assert again.status_code == 200


async def test_disposition_of_an_answered_call(api: Api) -> None:
    answer_and_end(api, "call-7", "1003")
    response = await api.client.post(
        "/api/calls/call-7/disposition", json={"disposition": "escalated"}
    )
    assert response.status_code == 200
    assert response.json() == {"call_id": "call-7", "disposition": "escalated"}
    assert api.runtime.acd.disposition("call-7") == "escalated"


async def test_disposition_errors(api: Api) -> None:
    unknown = await api.client.post("/api/calls/nope/disposition", json={"disposition": "resolved"})
    assert unknown.status_code == 404
    answer_and_end(api, "call-7", "1003")
    wrong = await api.client.post("/api/calls/call-7/disposition", json={"disposition": "maybe"})
    assert wrong.status_code == 422
    assert api.runtime.acd.disposition("call-7") == "unknown"


async def test_time_in_states_follows_the_clock(api: Api) -> None:
    await api.client.post("/api/operators/1004/login")
    api.clock.now += 30
    await api.client.post("/api/operators/1004/pause", json={"reason": "riunione"})
    api.clock.now += 10
    view = (await api.client.get("/api/operators/1004")).json()
    assert view["time_in_states"]["available"] == 30
    assert view["time_in_states"]["paused"] == 10
    if "since" in view:
        assert datetime.fromisoformat(view["since"]) == api.clock.wall(api.clock.now - 10)
