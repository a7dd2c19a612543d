"""ApiRuntime.for_switch: the wiring the switch relies on (settle order, notice lookup)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from api_harness import OPEN_INSTANT, fake_render, settings

from routing.calendar import Calendar
from server.api_runtime import ApiRuntime
from server.sipcore import build_acd


async def test_settle_drains_the_core_then_transmits(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    config = settings().model_copy(update={"data_dir": tmp_path / "var"})
    calendar = Calendar({sid: s.calendar for sid, s in config.services.items()})
    trace: list[tuple[str, float | None]] = []
    b2bua = SimpleNamespace(acd=build_acd(config, now=loop.time()), calendar=calendar, notices=None)
    core = SimpleNamespace(
        b2bua=b2bua, handle_timer=lambda *, now: trace.append(("handle_timer", now))
    )
    driver = SimpleNamespace(transmit=lambda: trace.append(("transmit", None)))
    switch = SimpleNamespace(
        settings=config,
        loop=loop,
        core=core,
        driver=driver,
        events=SimpleNamespace(wall=lambda at: OPEN_INSTANT),
        health=lambda: {"status": "ok"},
        metrics=lambda: b"",
    )
    runtime = ApiRuntime.for_switch(switch)  # type: ignore[arg-type]
    assert b2bua.notices == runtime.notices.lookup
    before = loop.time()
    runtime.settle()
    assert [name for name, _ in trace] == ["handle_timer", "transmit"]
    assert trace[0][1] is not None and trace[0][1] >= before
    assert runtime.wall() == OPEN_INSTANT


async def test_notice_set_over_the_api_reaches_call_control(tmp_path: Path) -> None:
    config = settings()
    runtime = ApiRuntime(
        acd=build_acd(config, now=0.0),
        calendar=Calendar({sid: s.calendar for sid, s in config.services.items()}),
        services=config.services,
        data_dir=tmp_path,
        mail=None,
        clock=lambda: 0.0,
        wall=lambda at: OPEN_INSTANT,
        settle=lambda: None,
        health=lambda: {},
        metrics=lambda: b"",
        render=fake_render,
    )
    await runtime.notices.set_text("uru", {"it": "Sportello chiuso oggi."}, None)
    prompt = runtime.notices.lookup("uru", "it")
    assert prompt is not None
    path = runtime.notices.wav_path(prompt, "it")
    assert path is not None and path.parent == tmp_path / "notices" / "uru"
