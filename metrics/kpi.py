"""The tender's KPI engine (Tm, P, Q, social Tm): pure and incremental.

`KpiEngine.receive_event(event)` updates every affected counter in O(1): each call is
classified once (`Outcome`), into the buckets of its reference instant (the first queue
entry, or the arrival for calls that never queued): its half-hour slot, local day and
local month, for its service, its sub-service and all services.  Later facts only move a
taken call between resolved, escalated and unknown.  Interpretations: docs/kpi.md.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from metrics.events import Disposition, EventKind, us_to_wall
from metrics.kpi_types import (
    CallCounted,
    EngineOutput,
    Fact,
    InWindow,
    IvrMeasured,
    KpiConfig,
)
from metrics.tally import (
    ALL,
    Calendar,
    F,
    Figures,
    KpiError,
    Outcome,
    PeriodKey,
    Tally,
    figures_from,
)

__all__ = [
    "KPI_KINDS",
    "CallCounted",
    "EngineOutput",
    "Fact",
    "InWindow",
    "IvrMeasured",
    "KpiConfig",
    "KpiEngine",
]

log = logging.getLogger(__name__)


Key = tuple[str, str, PeriodKey]
# Facts that only make sense about a call already seen; they never open one.
_LATE_KINDS = frozenset(
    {
        EventKind.DISPOSITION,
        EventKind.TRANSFERRED,
        EventKind.ENDED,
        EventKind.ABANDONED,
        EventKind.OVERFLOWED,
    }
)
_DISPOSITION_FIELD = {
    Disposition.RESOLVED: F.RESOLVED,
    Disposition.ESCALATED: F.ESCALATED,
    Disposition.UNKNOWN: F.UNKNOWN,
}


@dataclass(slots=True, kw_only=True)
class _Call:
    first_wall_us: int
    first_mono: float
    service: str | None
    sub_service: str | None
    channel: str = "voice"
    queued_mono: float | None = None
    queued_wall_us: int | None = None
    restarted: bool = False
    """The call crossed a restart of the switch (a restored callback): its `mono` values
    come from two processes, so its durations are taken from wall time."""
    overflowed: bool = False
    outcome: Outcome | None = None
    disposition: Disposition | None = None
    tallies: tuple[Tally, ...] = ()


class KpiEngine:
    """Live KPI figures from call events, per service/sub-service and slot/day/month."""

    def __init__(
        self, *, in_window: InWindow, config: KpiConfig | None = None, outputs: bool = False
    ) -> None:
        self.config = config or KpiConfig()
        if self.config.abandon_reference not in ("queued", "arrived"):
            raise KpiError("abandon_reference must be 'queued' or 'arrived'")
        self.calendar = Calendar(self.config.timezone)
        self._in_window = in_window
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._tallies: dict[Key, Tally] = {}
        self._slots: dict[tuple[str, str, str], set[int]] = {}
        self._outputs: deque[EngineOutput] | None = deque() if outputs else None
        self._retention_us = int(self.config.retention * 1_000_000)
        self._next_evict_us = 0
        self._threshold_us = round(self.config.abandon_threshold * 1_000_000)
        self._services: set[str] = set()

    # -- inputs ---------------------------------------------------------------------------

    def receive_event(self, event: Fact) -> None:
        """Account for one event.  Events must come in emission (`seq`) order."""
        if event.call_id is None or event.kind is EventKind.OPERATOR_STATE:
            return
        self._evict(event.wall_us)
        call = self._calls.get(event.call_id)
        if call is None:
            if event.kind in _LATE_KINDS:
                return  # a call forgotten (retention) or never seen: nothing to count
            call = self._open(event)
        if call.service is None and event.service:
            call.service = event.service
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, call, event)

    def load(self, events: Iterable[Fact]) -> int:
        """Feed past events (a restart's replay of the month) without emitting outputs."""
        outputs, self._outputs = self._outputs, None
        n = 0
        try:
            for n, event in enumerate(events, 1):  # noqa: B007 - n is the count
                self.receive_event(event)
        finally:
            self._outputs = outputs
        return n

    def forget_before(self, day: date) -> None:
        """Drop the counters of slots and days before `day` and of months before its month.

        The engine keeps every period it has seen; a server running for years calls this
        (say, daily) to bound memory.  The stored log still has everything.
        """
        month = f"{day:%Y-%m}"
        first_slot = int(
            datetime(day.year, day.month, day.day, tzinfo=self.calendar.tz).timestamp()
        )
        limits: dict[str, object] = {"slot": first_slot, "day": day, "month": month}
        for key in [k for k in self._tallies if k[2][1] < limits[k[2][0]]]:  # type: ignore[operator]
            del self._tallies[key]
        for index in [k for k in self._slots if k[2] < month]:
            del self._slots[index]
        for epochs in self._slots.values():
            epochs.difference_update([e for e in epochs if e < first_slot])
        self.calendar.forget_before(first_slot)

    def next_event(self) -> EngineOutput | None:
        """The next output fact, if the engine was built with `outputs=True`."""
        if self._outputs:
            return self._outputs.popleft()
        return None

    # -- queries --------------------------------------------------------------------------

    def figures(
        self, service: str | None, period: tuple[str, object], *, sub_service: str | None = None
    ) -> Figures:
        """Tm, P, Q and counts; `service=None` means all services together."""
        key = (service or ALL, sub_service or ALL, self.calendar.period_key(period))
        tally = self._tallies.get(key, Tally())
        return figures_from(tally, self.config.unknown_disposition)

    def tally(
        self, service: str | None, period: tuple[str, object], *, sub_service: str | None = None
    ) -> Tally:
        """A copy of the raw counters behind `figures` (for reports that regroup slots)."""
        key = (service or ALL, sub_service or ALL, self.calendar.period_key(period))
        copy = Tally()
        copy.add(self._tallies.get(key, Tally()))
        return copy

    def services(self) -> list[str]:
        """Every service that has counted at least one call."""
        return sorted(self._services)

    def sub_services(self, service: str) -> list[str]:
        """The sub-services (IVR choices) seen for `service`."""
        return sorted({k[1] for k in self._tallies if k[0] == service and k[1] != ALL})

    def slots(
        self, service: str | None, month: str, *, sub_service: str | None = None
    ) -> list[datetime]:
        """Local starts of the half-hour slots of `month` that hold calls, in order."""
        epochs = self._slots.get((service or ALL, sub_service or ALL, month), set())
        return [self.calendar.slot_datetime(e) for e in sorted(epochs)]

    def local_day(self, wall: datetime) -> date:
        """The local date of an aware instant (what 'today' means for the SLA gauges)."""
        return self.calendar.local(wall).date()

    # -- per-kind handlers ----------------------------------------------------------------

    def _on_arrived(self, call: _Call, event: Fact) -> None:
        call.channel = event.data.get("channel", call.channel)

    def _on_ivr_step(self, call: _Call, event: Fact) -> None:
        # The sub-service is the last IVR choice before the call reaches the queue.
        if event.sub_service and call.queued_mono is None:
            call.sub_service = event.sub_service

    def _on_queued(self, call: _Call, event: Fact) -> None:
        if call.outcome is not None:
            return
        call.overflowed = False
        if event.data.get("callback") == "restored":
            call.restarted = True
        if call.queued_mono is not None:
            return  # requeued (overflow, transfer): Tm keeps the first queue entry
        self._on_ivr_step(call, event)
        call.queued_mono, call.queued_wall_us = event.mono, event.wall_us
        seconds = event.mono - call.first_mono
        self._emit(
            IvrMeasured(service=_name(call), channel=call.channel, seconds=seconds, at=event.mono)
        )

    def _on_answered(self, call: _Call, event: Fact) -> None:
        if call.outcome is not None:
            return
        queued = call.queued_mono is not None
        wait_us = self._since(call, event, queued=queued)
        self._classify(call, Outcome.ANSWERED, wait_us=wait_us, at=event.mono)

    @staticmethod
    def _since(call: _Call, event: Fact, *, queued: bool) -> int:
        """Whole microseconds from the queue entry (or the arrival) to `event`: by the
        monotonic clock, or by wall time for a call that crossed a restart."""
        if call.restarted:
            start_us = call.queued_wall_us if queued else call.first_wall_us
            return event.wall_us - (start_us if start_us is not None else call.first_wall_us)
        start = call.queued_mono if queued and call.queued_mono is not None else call.first_mono
        return round((event.mono - start) * 1_000_000)

    def _on_hangup(self, call: _Call, event: Fact) -> None:
        if call.outcome is not None:
            return
        if call.overflowed:
            outcome = Outcome.OVERFLOWED
        elif call.queued_mono is None:
            outcome = Outcome.IVR_HANGUP
        else:
            queued = self.config.abandon_reference == "queued"
            # Whole microseconds, so a 10.0 s wait is never 10.000000001 s after float math.
            waited_us = self._since(call, event, queued=queued)
            long_wait = waited_us > self._threshold_us
            outcome = Outcome.ABANDONED if long_wait else Outcome.SHORT_ABANDONED
        self._classify(call, outcome, at=event.mono)

    def _on_overflowed(self, call: _Call, event: Fact) -> None:
        if call.outcome is None:
            call.overflowed = True

    def _on_after_hours(self, call: _Call, event: Fact) -> None:
        if call.outcome is None:
            self._classify(call, Outcome.AFTER_HOURS, at=event.mono)

    def _on_transferred(self, call: _Call, event: Fact) -> None:
        # A transfer to a second-level referent means "not resolved at first level".
        if event.data.get("to") == "referent":
            self._set_disposition(call, Disposition.ESCALATED)

    def _on_disposition(self, call: _Call, event: Fact) -> None:
        try:
            value = Disposition(event.data.get("disposition", ""))
        except ValueError:
            log.warning("ignoring invalid disposition %r", event.data.get("disposition"))
            return
        self._set_disposition(call, value)

    # -- accounting -----------------------------------------------------------------------

    def _open(self, event: Fact) -> _Call:
        assert event.call_id is not None
        call = _Call(
            first_wall_us=event.wall_us,
            first_mono=event.mono,
            service=event.service,
            sub_service=event.sub_service,
            channel=event.data.get("channel", "voice"),
        )
        self._calls[event.call_id] = call
        local = self.calendar.local(us_to_wall(event.wall_us))
        if not self._in_window(event.service or "", local):
            self._classify(call, Outcome.AFTER_HOURS, at=event.mono)
        return call

    def _classify(self, call: _Call, outcome: Outcome, *, at: float, wait_us: int = 0) -> None:
        call.outcome = outcome
        ref_us = call.queued_wall_us if call.queued_wall_us is not None else call.first_wall_us
        call.tallies = tuple(self._tally(key) for key in self._keys(call, ref_us))
        social = call.channel == self.config.social_channel
        if social and outcome is Outcome.ANSWERED:
            self._apply(call, (F.SOCIAL_ANSWERED, 1), (F.SOCIAL_WAIT_US, wait_us))
        elif not social and outcome is Outcome.ANSWERED:
            self._apply(call, (F.ANSWERED, 1), (F.WAIT_US, wait_us), (F.UNKNOWN, 1))
        elif not social:
            self._apply(call, (F[outcome.name], 1))
        wait = wait_us / 1e6 if outcome is Outcome.ANSWERED else None
        self._emit(
            CallCounted(
                service=_name(call),
                sub_service=call.sub_service,
                outcome=outcome,
                channel=call.channel,
                wait=wait,
                at=at,
            )
        )

    def _set_disposition(self, call: _Call, value: Disposition) -> None:
        if call.outcome is not Outcome.ANSWERED or call.channel == self.config.social_channel:
            return
        old = call.disposition or Disposition.UNKNOWN
        call.disposition = value
        if old is not value:
            self._apply(call, (_DISPOSITION_FIELD[old], -1), (_DISPOSITION_FIELD[value], 1))

    def _keys(self, call: _Call, ref_us: int) -> tuple[Key, ...]:
        service = _name(call)
        self._services.add(service)
        scopes = [(service, ALL), (ALL, ALL)]
        if call.sub_service:
            scopes.append((service, call.sub_service))
        periods = self.calendar.periods_us(ref_us)
        slot_epoch, month = periods[0][1], periods[2][1]
        assert isinstance(slot_epoch, int) and isinstance(month, str)
        for svc, sub in scopes:
            self._slots.setdefault((svc, sub, month), set()).add(slot_epoch)
        return tuple((svc, sub, period) for svc, sub in scopes for period in periods)

    def _tally(self, key: Key) -> Tally:
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Tally()
        return tally

    def _apply(self, call: _Call, *deltas: tuple[int, int]) -> None:
        for tally in call.tallies:
            v = tally.v
            for index, amount in deltas:
                v[index] += amount

    def _emit(self, output: EngineOutput) -> None:
        if self._outputs is not None:
            self._outputs.append(output)

    def _evict(self, now_us: int) -> None:
        # Calls are kept a retention period after their first event so that late facts
        # (a disposition typed after hang-up) still count; older ones are forgotten.
        # Checked at most once a minute of event time: cheap, and deterministic for replays.
        if now_us < self._next_evict_us:
            return
        self._next_evict_us = now_us + 60_000_000
        horizon = now_us - self._retention_us
        while self._calls:
            call_id, call = next(iter(self._calls.items()))
            if call.first_wall_us >= horizon:
                return
            del self._calls[call_id]


def _name(call: _Call) -> str:
    return call.service or "unassigned"


KPI_KINDS: frozenset[EventKind]
_HANDLERS: dict[EventKind, Callable[[KpiEngine, _Call, Fact], None]] = {
    EventKind.ARRIVED: KpiEngine._on_arrived,
    EventKind.IVR_ENTERED: KpiEngine._on_ivr_step,
    EventKind.WELCOME_FINISHED: KpiEngine._on_ivr_step,
    EventKind.DIGIT: KpiEngine._on_ivr_step,
    EventKind.CHOICE: KpiEngine._on_ivr_step,
    EventKind.QUEUED: KpiEngine._on_queued,
    EventKind.ANSWERED: KpiEngine._on_answered,
    EventKind.ABANDONED: KpiEngine._on_hangup,
    EventKind.ENDED: KpiEngine._on_hangup,
    EventKind.OVERFLOWED: KpiEngine._on_overflowed,
    EventKind.AFTER_HOURS: KpiEngine._on_after_hours,
    EventKind.TRANSFERRED: KpiEngine._on_transferred,
    EventKind.DISPOSITION: KpiEngine._on_disposition,
}
KPI_KINDS = frozenset(_HANDLERS)
"""The kinds the engine reads; a replay for reports may skip the others."""
