"""The running switch as the HTTP API sees it (`server.api_types.SwitchApi`).

`ApiRuntime` owns the API's state beside the switch: the calendar overrides and service
notices (loaded from the data folder at construction, before the first call) and the
mailer with its outbox (started and stopped with the switch). `ApiRuntime.for_switch`
wires it to a `server.app.Switch` and gives call control the notice lookup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from acd.engine import AcdEngine
from ivr.config import ServiceConfig
from routing.calendar import Calendar
from routing.media_plane import RecordingFinished
from server.api_notices import NoticeStore, Renderer, render_speech
from server.api_services import OverrideStore
from server.config import Settings
from server.core import Core
from server.eventlog import EventLog
from server.mailer import Mailer, MailSettings, SendMail, smtp_send
from server.persist import MailStore
from server.runtime import Driver

__all__ = ["ApiRuntime", "RunningSwitch"]

log = logging.getLogger(__name__)


class RunningSwitch(Protocol):
    """What `ApiRuntime.for_switch` reads from `server.app.Switch`."""

    settings: Settings
    loop: asyncio.AbstractEventLoop
    core: Core
    driver: Driver
    events: EventLog

    def health(self) -> dict[str, Any]: ...

    def metrics(self) -> bytes: ...


class ApiRuntime:
    """Implements `SwitchApi` over an ACD engine, a calendar and the data folder."""

    def __init__(
        self,
        *,
        acd: AcdEngine,
        calendar: Calendar,
        services: Mapping[str, ServiceConfig],
        data_dir: Path,
        mail: MailSettings | None,
        clock: Callable[[], float],
        wall: Callable[[float], datetime],
        settle: Callable[[], None],
        health: Callable[[], dict[str, Any]],
        metrics: Callable[[], bytes],
        render: Renderer = render_speech,
        send: SendMail = smtp_send,
    ) -> None:
        self._acd = acd
        self._calendar = calendar
        self._services = services
        self._clock = clock
        self._to_wall = wall
        self._settle = settle
        self._health = health
        self._metrics = metrics
        self._overrides = OverrideStore(data_dir / "overrides.json", calendar.overrides)
        self._notices = NoticeStore(data_dir / "notices", services, wall=self.wall, render=render)
        self._mailer = (
            Mailer(
                mail, MailStore(data_dir / "mail.sqlite3"), clock=clock, wall=self.wall, send=send
            )
            if mail is not None
            else None
        )
        overrides = self._overrides.load(at=self.wall())
        notices = self._notices.load()
        log.info("API state loaded", extra={"overrides": overrides, "notices": notices})

    @classmethod
    def for_switch(cls, switch: RunningSwitch, *, mail: MailSettings | None = None) -> ApiRuntime:
        """Wire the API to a running switch; call at the end of `Switch.__init__`."""
        core, loop = switch.core, switch.loop

        def settle() -> None:
            # A timer pass fires nothing early: it drains what the ACD queued through
            # call control into the endpoint, then the driver sends it and re-arms.
            core.handle_timer(now=loop.time())
            switch.driver.transmit()

        runtime = cls(
            acd=core.b2bua.acd,
            calendar=core.b2bua.calendar,
            services=switch.settings.services,
            data_dir=switch.settings.data_dir,
            mail=mail if mail is not None else getattr(switch.settings, "mail", None),
            clock=loop.time,
            wall=switch.events.wall,
            settle=settle,
            health=switch.health,
            metrics=switch.metrics,
        )
        core.b2bua.notices = runtime.notices.lookup
        return runtime

    async def start(self) -> None:
        """Start sending what the outbox holds."""
        if self._mailer is not None:
            await self._mailer.start()

    async def stop(self) -> None:
        """Stop the mailer; unsent e-mail stays in the outbox for the next start."""
        if self._mailer is not None:
            await self._mailer.stop()

    def voicemail_recorded(
        self, service: str, event: RecordingFinished, *, caller: str, call_id: str
    ) -> None:
        """E-mail a finished voicemail to the service's referents (in the background)."""
        if self._mailer is None:
            log.warning("voicemail %s kept on disk only: no mail section", event.path)
            return
        meta = {
            "caller": caller,
            "call_id": call_id,
            "seconds": f"{event.seconds:.1f}",
            "ended_by": event.reason,
            "recorded_at": self._to_wall(event.at).isoformat(),
        }
        self._mailer.send_voicemail(service, Path(event.path), meta)

    # -- SwitchApi ---------------------------------------------------------------------

    @property
    def acd(self) -> AcdEngine:
        return self._acd

    @property
    def calendar(self) -> Calendar:
        return self._calendar

    @property
    def services(self) -> Mapping[str, ServiceConfig]:
        return self._services

    @property
    def overrides(self) -> OverrideStore:
        return self._overrides

    @property
    def notices(self) -> NoticeStore:
        return self._notices

    @property
    def mailer(self) -> Mailer | None:
        return self._mailer

    def now(self) -> float:
        return self._clock()

    def wall(self) -> datetime:
        return self._to_wall(self._clock())

    def settle(self) -> None:
        self._settle()

    def health(self) -> dict[str, Any]:
        return self._health()

    def metrics(self) -> bytes:
        return self._metrics()
