"""The runtime side of the event log: stamp wall time, store, feed KPIs and Prometheus.

Call control records facts with monotonic `at`; the wall time is the process's start
instant plus the monotonic offset, so a clock step never reorders the log. Appends only
buffer; a worker thread commits the buffer every `flush_interval` seconds (and at
shutdown), so what a crash can lose is bounded by that interval (docs/events.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from acd.engine import AcdEngine
from metrics.events import CallEvent, EventKind
from metrics.kpi import KPI_KINDS, KpiEngine
from metrics.prometheus import Exporter
from metrics.report import LEAD_IN
from metrics.store import EventStore, StoreError
from metrics.tally import month_bounds
from routing.calendar import Calendar, Open

log = logging.getLogger(__name__)


class EventLog:
    """The switch's one event sink (a `routing.recorder.Recorder`)."""

    def __init__(
        self,
        data_dir: Path,
        calendar: Calendar,
        *,
        mono0: float,
        flush_interval: float = 0.5,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = EventStore(data_dir / "events.sqlite3")
        self.calendar = calendar
        self.kpi = KpiEngine(in_window=self._in_window, outputs=True)
        self.exporter = Exporter()
        self.flush_interval = flush_interval
        self._wall0 = datetime.now(UTC)
        self._mono0 = mono0
        self._flusher: asyncio.Task[None] | None = None
        self._restore()

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

    def start(self) -> None:
        """Begin the periodic commits."""
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self) -> None:
        """Commit what is buffered, off the event loop."""
        if not self.store.pending:
            return
        try:
            await asyncio.to_thread(self.store.flush)
        except StoreError as exc:
            log.error("event log write failed, will retry: %s", exc)

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
        """Stop the commits, write what is left, close the file."""
        if self._flusher is not None:
            self._flusher.cancel()
        await self.flush()
        self.store.close()
