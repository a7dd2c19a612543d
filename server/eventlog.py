"""The runtime side of the event log: stamp wall time, store, feed KPIs and Prometheus.

Call control records facts with monotonic `at`; the wall time is the process's start
instant plus the monotonic offset, so a clock step never reorders the log. Appends only
buffer; a worker thread commits the buffer every `flush_interval` seconds (and at
shutdown), so what a crash can lose is bounded by that interval (docs/events.md).

When the store cannot be written (PostgreSQL down, a full disk) the events stay in memory
and every commit retries them; the failure is logged once, then once a minute while it
lasts.  If they still cannot be written at shutdown they are saved, as JSON lines, in
`<data_dir>/events.unsent.jsonl`, and the next start writes them before anything else.
A database that stops answering with its connection still open (a stopped or frozen
server) would hold a commit forever: when no transaction completes for `commit_timeout`
seconds the connection is cut, and the batch is retried like after any other failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from acd.engine import AcdEngine
from metrics.events import CallEvent, EventFormatError, EventKind, from_json, to_json
from metrics.kpi import KPI_KINDS, KpiEngine
from metrics.prometheus import Exporter
from metrics.report import LEAD_IN
from metrics.store import EventStore, StoreError
from metrics.tally import month_bounds
from routing.calendar import Calendar, Open
from server.persist import write_atomically

log = logging.getLogger(__name__)

UNSENT_FILE = "events.unsent.jsonl"
FAILURE_LOG_EVERY_S = 60.0


class EventLog:
    """The switch's one event sink (a `routing.recorder.Recorder`)."""

    def __init__(
        self,
        store: EventStore,
        calendar: Calendar,
        *,
        data_dir: Path,
        mono0: float,
        flush_interval: float = 0.5,
        commit_timeout: float = 15.0,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self._unsent = data_dir / UNSENT_FILE
        self._failing_since: float | None = None
        self._failure_logged = 0.0
        self.kpi = KpiEngine(in_window=self._in_window, outputs=True)
        self.exporter = Exporter()
        self.flush_interval = flush_interval
        self.commit_timeout = commit_timeout
        self._wall0 = datetime.now(UTC)
        self._mono0 = mono0
        self._flusher: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._resend()
        self._restore()

    def _resend(self) -> None:
        """Write what the last run could not (its `events.unsent.jsonl`), then forget it."""
        try:
            lines = self._unsent.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot read {self._unsent}: {exc.strerror}") from exc
        events: list[CallEvent] = []
        for number, line in enumerate(lines, 1):
            try:
                events.append(from_json(line))
            except EventFormatError as exc:
                log.error("unsent event skipped: %s line %d: %s", self._unsent, number, exc)
        self.store.extend(events)
        self.store.flush()
        self._unsent.unlink()
        log.info("unsent events written", extra={"events": len(events)})

    def _restore(self) -> None:
        """Replay this month's stored facts, so `today` and `month` survive a restart."""
        month = f"{self.kpi.local_day(self._wall0):%Y-%m}"
        start, _ = month_bounds(month, self.kpi.calendar.tz)
        loaded = self.kpi.load(self.store.replay_facts(start - LEAD_IN, self._wall0, KPI_KINDS))
        log.info("event log restored", extra={"events": loaded})

    def wall(self, at: float) -> datetime:
        """The UTC instant of monotonic time `at`."""
        return self._wall0 + timedelta(seconds=at - self._mono0)

    def _in_window(self, service: str, local: datetime) -> bool:
        try:
            return isinstance(self.calendar.state(service, local), Open)
        except ValueError:
            return False

    def __call__(
        self,
        kind: EventKind,
        *,
        at: float,
        call_id: str | None = None,
        service: str | None = None,
        sub_service: str | None = None,
        queue: str | None = None,
        operator: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None:
        event = CallEvent(
            kind=kind,
            wall=self.wall(at),
            mono=at,
            call_id=call_id,
            service=service,
            sub_service=sub_service,
            queue=queue,
            operator=operator,
            data=data or {},
        )
        event = self.store.append(event)
        self.kpi.receive_event(event)
        self.exporter.drain(self.kpi)
        self.exporter.events_pending.set(self.store.pending)

    def start(self) -> None:
        """Begin the periodic commits."""
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        # Never cancelled mid-commit (the worker thread would go on writing while `close`
        # commits too): `close` sets `_closing` and waits for the loop to end.
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.flush_interval)
            await self.flush()

    async def flush(self) -> bool:
        """Commit what is buffered, off the event loop; False if the store refused it."""
        if not self.store.pending:
            return True
        loop = asyncio.get_running_loop()
        try:
            await self._commit(loop)
        except StoreError as exc:
            self.exporter.event_write_errors.inc()
            self._write_failed(loop.time(), exc)
            return False
        finally:
            self.exporter.events_pending.set(self.store.pending)
        if self._failing_since is not None:
            log.warning(
                "event log writes again",
                extra={"failed_for_s": round(loop.time() - self._failing_since, 1)},
            )
            self._failing_since = None
        return True

    async def _commit(self, loop: asyncio.AbstractEventLoop) -> None:
        """`store.flush` in a worker thread, watched: a stretch of `commit_timeout`
        seconds without a completed transaction cuts the connection (the flush then
        fails, its batch kept), so a hung server cannot stall the log or the shutdown."""
        writing = loop.run_in_executor(None, self.store.flush)
        while True:
            commits = self.store.commits
            try:
                await asyncio.wait_for(asyncio.shield(writing), self.commit_timeout)
                return
            except TimeoutError:
                if self.store.commits == commits:
                    log.error("event log commit hung for %.0f s: cutting", self.commit_timeout)
                    self.store.abort()

    def _write_failed(self, now: float, exc: StoreError) -> None:
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failure_logged < FAILURE_LOG_EVERY_S:
            return
        self._failure_logged = now
        log.error(
            "event log write failed, kept in memory and retried: %s",
            exc,
            extra={"pending": self.store.pending},
        )

    def render_metrics(self, now: float, acd: AcdEngine) -> bytes:
        """The Prometheus exposition with the SLA, queue and operator gauges up to date."""
        self.exporter.update_sla(self.kpi, today=self.kpi.local_day(self.wall(now)))
        for queue in acd.queue_names():
            snap = acd.queue_snapshot(queue, now=now)
            self.exporter.set_queue(queue, waiting=snap.waiting, longest_wait=snap.longest_wait)
        states: dict[str, int] = {}
        for operator in acd.operator_ids():
            state = str(acd.operator_state(operator))
            states[state] = states.get(state, 0) + 1
        self.exporter.set_operators(states)
        return self.exporter.render()

    async def close(self) -> None:
        """Stop the commits, write what is left (or save it for the next start), close."""
        self._closing.set()
        if self._flusher is not None:
            await self._flusher
        if not await self.flush():
            self._save_unsent()
        try:
            self.store.close()
        except StoreError as exc:
            log.error("event store not closed cleanly: %s", exc)

    def _save_unsent(self) -> None:
        events = self.store.drain()
        lines = "".join(f"{to_json(event)}\n" for event in events)
        try:
            previous = self._unsent.read_text(encoding="utf-8")
        except FileNotFoundError:
            previous = ""
        try:
            write_atomically(self._unsent, (previous + lines).encode())
        except OSError as exc:
            log.error("event store unreachable at shutdown, %d events lost: %s", len(events), exc)
            return
        log.error(
            "event store unreachable at shutdown: %d events saved in %s", len(events), self._unsent
        )
