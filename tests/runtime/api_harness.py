"""A real ACD engine, calendar and data folder behind the HTTP API, on a virtual clock.

The application is driven in-process through httpx's ASGI transport on the test's own
event loop (the handlers are `async def`, as on the switch's loop); no socket is opened
except the loopback SMTP servers of the mail tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from media.wav import write_wav
from routing.calendar import Calendar
from server.api_runtime import ApiRuntime
from server.config import Settings, load_settings
from server.http import create_app
from server.mailer import MailSettings, SendMail, smtp_send
from server.sipcore import build_acd

ROOT = Path(__file__).resolve().parents[2]
# Wednesday 25 November 2026, 11:00 in Rome: every service is open.
OPEN_INSTANT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def settings() -> Settings:
    return load_settings(ROOT / "config" / "trentino.yaml")


@dataclass
class Clock:
    """The loop clock (monotonic seconds) and the wall instant it maps to."""

    now: float = 1000.0
    wall0: datetime = OPEN_INSTANT

    def __call__(self) -> float:
        return self.now

    def wall(self, at: float) -> datetime:
        return self.wall0 + timedelta(seconds=at - 1000.0)


def tone_wav(seconds: float = 0.2, hz: float = 440.0) -> bytes:
    samples = int(8000 * seconds)
    pcm = b"".join(
        int(8000 * math.sin(2 * math.pi * hz * n / 8000)).to_bytes(2, "little", signed=True)
        for n in range(samples)
    )
    return write_wav(pcm)


def fake_render(text: str, language: str, target: Path) -> None:
    """Speech stand-in: a tone whose length follows the text, valid 8 kHz WAV."""
    target.write_bytes(tone_wav(0.01 * len(text), 440 if language == "it" else 660))


@dataclass
class Api:
    runtime: ApiRuntime
    clock: Clock
    client: httpx.AsyncClient
    settled: list[float] = field(default_factory=list)


def make_runtime(
    data_dir: Path,
    clock: Clock,
    *,
    mail: MailSettings | None = None,
    render: Callable[[str, str, Path], None] = fake_render,
    send: SendMail = smtp_send,
    settled: list[float] | None = None,
) -> ApiRuntime:
    config = settings()
    calendar = Calendar({sid: s.calendar for sid, s in config.services.items()})
    log = settled if settled is not None else []
    return ApiRuntime(
        acd=build_acd(config, now=clock.now),
        calendar=calendar,
        services=config.services,
        data_dir=data_dir,
        mail=mail,
        clock=clock,
        wall=clock.wall,
        settle=lambda: log.append(clock.now),
        health=lambda: {"status": "ok"},
        metrics=lambda: b"# metrics\n",
        render=render,
        send=send,
    )


def client_for(runtime: ApiRuntime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(runtime))
    return httpx.AsyncClient(transport=transport, base_url="http://centralino.test")


def detail(response: httpx.Response) -> Any:
    return response.json()["detail"]
