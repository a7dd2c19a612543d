"""The running switch: the SIP endpoint on a UDP socket, the HTTP API, signals, draining."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from typing import Any

import uvicorn
import uvloop

from media.g729 import load_g729
from metrics.store import StoreError
from routing.calendar import Calendar
from routing.media_plane import MediaEvent, RecordingFinished
from server.api_runtime import ApiRuntime
from server.callback_file import CallbackJournal
from server.config import Settings
from server.core import Core
from server.eventlog import EventLog
from server.http import create_app
from server.ids import SecureIds
from server.media import MediaRuntime
from server.pgstore import open_event_store
from server.runtime import Driver
from server.sipcore import build_b2bua, build_endpoint
from server.telemetry import Telemetry

log = logging.getLogger(__name__)


class Switch:
    """One running instance: endpoint, socket, HTTP server."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.loop = loop
        now = loop.time()
        ids = SecureIds()
        self.telemetry = Telemetry()
        calendar = Calendar({sid: s.calendar for sid, s in settings.services.items()})
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(
            open_event_store(settings.data_dir, settings.events.dsn),
            calendar,
            data_dir=settings.data_dir,
            mono0=now,
            flush_interval=settings.events.flush_interval,
            commit_timeout=settings.events.commit_timeout,
        )
        g729 = load_g729()  # logs "G.729 not offered: ..." when libbcg729 is missing
        self.media = MediaRuntime(
            loop,
            host=settings.sip.listen.host,
            port_min=settings.rtp.port_min,
            port_max=settings.rtp.port_max,
            prompts_dir=settings.prompts_dir,
            data_dir=settings.data_dir,
            media_timeout=settings.rtp.media_timeout,
            g729=g729,
            on_event=self._media_event,
        )
        endpoint = build_endpoint(settings, ids)
        b2bua = build_b2bua(
            settings,
            endpoint=endpoint,
            media=self.media,
            recorder=self.events,
            calendar=calendar,
            wall=self.events.wall,
            ids=ids,
            now=now,
            g729=g729 is not None,
        )
        self.core = Core(endpoint, b2bua, self.telemetry.observe)
        self.driver = Driver(self.core, loop)
        self.http: uvicorn.Server | None = None
        self.stopping = False
        self.callbacks = CallbackJournal(settings.data_dir, b2bua)
        self.api = ApiRuntime.for_switch(self)
        # Service notices are recorded at run time into the data folder.
        self.media.prompts.resolve = self.api.notices.wav_path

    def _media_event(self, event: MediaEvent) -> None:
        if isinstance(event, RecordingFinished):
            # Before call control hangs up and forgets the call.
            calls = self.core.b2bua.calls
            # A caller who hangs up ends the recording: the call may be over already.
            call = calls.by_media_leg(event.leg) or calls.ended(event.leg.rpartition("/")[0])
            if call is not None:
                self.api.voicemail_recorded(
                    call.service, event, caller=call.caller, call_id=call.call_id
                )
        self.core.media_event(event, now=self.loop.time())
        self.driver.transmit()

    async def start(self) -> None:
        """Bind the SIP socket and start the HTTP server."""
        # The callbacks saved by the last run take their places before any new call;
        # from now on their file follows them, so that a crash does not lose them.
        self.core.restore_pending_callbacks(self.settings.data_dir, now=self.loop.time())
        self.callbacks.start(self.loop.time)
        listen = self.settings.sip.listen
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        await self.loop.create_datagram_endpoint(
            lambda: self.driver, local_addr=(listen.host, listen.port), family=family
        )
        self.events.start()
        await self.api.start()
        # Encode every prompt for every codec off the loop, so no first play stalls it.
        self.media.start_preload()
        app = create_app(self.api, token=self.settings.http.token)
        http = self.settings.http.listen
        config = uvicorn.Config(
            app,
            host=http.host,
            port=http.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            date_header=False,
        )
        # uvicorn's serve() would own the signals; run its startup inside our loop instead.
        config.load()
        self.http = uvicorn.Server(config)
        self.http.lifespan = config.lifespan_class(config)
        try:
            await self.http.startup()
        except SystemExit:  # uvicorn ends the process when it cannot bind: clean up first
            raise OSError(f"cannot listen for HTTP on {http}") from None
        if self.http.should_exit:
            raise OSError(f"cannot listen for HTTP on {http}")
        log.info("centralino serving", extra={"sip": str(listen), "http": str(http)})

    def health(self) -> dict[str, Any]:
        """What /healthz answers."""
        return {
            "status": "draining" if self.stopping else "ok",
            "sip": str(self.settings.sip.listen),
            "registrations": self.core.registrations(),
            "calls": self.core.active_calls(),
        }

    def metrics(self) -> bytes:
        """What /metrics answers: KPIs and SLA gauges, then the SIP counters."""
        now = self.loop.time()
        return self.events.render_metrics(now, self.core.b2bua.acd) + self.telemetry.render()

    async def drain(self, seconds: float) -> None:
        """Refuse new calls and wait (bounded) for the current ones to end."""
        self.stopping = True
        self.core.stop_accepting()
        deadline = self.loop.time() + seconds
        while self.core.active_calls() and self.loop.time() < deadline:
            await asyncio.sleep(0.1)
        left = self.core.active_calls()
        if left:
            # Never leave the PBX with calls we no longer serve: BYE them, and give
            # the BYEs a moment to leave before the socket closes.
            self.core.hang_up_all(reason="shutdown", now=self.loop.time())
            self.driver.transmit()
            await asyncio.sleep(0.2)
        await self.callbacks.close()
        saved = self.core.save_pending_callbacks(self.settings.data_dir, now=self.loop.time())
        self.driver.transmit()  # an offer withdrawn from an operator in the last instants
        log.info("drained", extra={"calls_hung_up": left, "callbacks_saved": saved})

    async def stop(self) -> None:
        """Close the sockets, the HTTP server and the event log."""
        self.driver.close()
        self.media.close()
        await self.api.stop()
        await self.events.close()
        if self.http is not None:
            self.http.should_exit = True
            await self.http.shutdown()


async def serve(settings: Settings, *, drain_seconds: float) -> int:
    """Run until SIGTERM or SIGINT, then drain within `drain_seconds` and return 0."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        switch = Switch(settings, loop)
    except (StoreError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    try:
        await switch.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        await switch.drain(0)  # the callbacks `start` restored are saved again
        await switch.stop()
        return 1
    # Everything built so far lives as long as the process: keep it out of the
    # collector's full passes, and collect the young generation less often (a call
    # allocates thousands of short-lived objects; full passes paused the loop 67-304 ms).
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    await stop.wait()
    log.info("stopping: no new calls")
    await switch.drain(drain_seconds)
    await switch.stop()
    return 0


def run(settings: Settings, *, drain_seconds: float) -> int:
    """Run the switch on uvloop."""
    with contextlib.suppress(KeyboardInterrupt):
        return uvloop.run(serve(settings, drain_seconds=drain_seconds))
    return 0
