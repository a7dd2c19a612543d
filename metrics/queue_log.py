"""Export the event log as an Asterisk `queue_log`, for wallboards that read that format.

Each line is `epoch|callid|queue|agent|EVENT|data1|data2|...` with the parameters Asterisk
documents for each event (docs/events.md has the table):

- ENTERQUEUE(url|callerid), CONNECT(holdtime|bridgedchanneluniqueid|ringtime)
- COMPLETECALLER / COMPLETEAGENT(holdtime|calltime|origposition)
- ABANDON / EXITWITHTIMEOUT(position|origposition|waittime)
- RINGNOANSWER(ringtime in ms), TRANSFER(extension|context|holdtime|calltime|origposition)
- ADDMEMBER, REMOVEMEMBER, PAUSE(reason), UNPAUSE(reason)

Times are whole seconds as Asterisk writes them; `callid` and `agent` are NONE when absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from metrics.events import CallEvent, EventKind

NONE = "NONE"
# Operator states meaning "not a queue member": the ACD says logged_out.
_OFFLINE = {"logged_out": "offline", "offline": "offline"}
CONTEXT = "centralino"
# Operator states in which an offer to them is over (the ACD's `operator_state` values).
_NOT_ON_A_CALL = frozenset({"available", "paused", "offline"})


@dataclass(slots=True, kw_only=True)
class _Waiting:
    queue: str
    entered: float
    origposition: int
    offered_to: str | None = None
    offered_at: float = 0.0
    connected_at: float | None = None
    agent: str | None = None
    transferred: bool = False


class QueueLog:
    """Turns `CallEvent`s, in order, into queue_log lines."""

    def __init__(self) -> None:
        self._calls: dict[str, _Waiting] = {}
        self._queues: dict[str, list[str]] = {}
        self._operator_state: dict[str, str] = {}
        self._ringing: dict[str, str] = {}  # operator -> the call offered to them

    def receive_event(self, event: CallEvent) -> list[str]:
        """The queue_log lines `event` gives (often none)."""
        handler = _HANDLERS.get(event.kind)
        if handler is None:
            return []
        out = self._rang_out(event) if event.kind is EventKind.OPERATOR_STATE else []
        return out + [_line(event.wall_us, event.call_id, *f) for f in handler(self, event)]

    def _rang_out(self, e: CallEvent) -> list[str]:
        """An operator free again without a CONNECT: the offer rang out, was refused, or
        (a callback) the citizen did not answer. Said now, with the ring time so far."""
        state = _OFFLINE.get(e.data.get("state", ""), e.data.get("state", ""))
        call_id = self._ringing.get(e.operator or "")
        call = self._calls.get(call_id or "")
        if state not in _NOT_ON_A_CALL or call is None or call.offered_to != e.operator:
            return []
        return [_line(e.wall_us, call_id, *f) for f in self._ring_no_answer(call, e.mono)]

    # -- calls ----------------------------------------------------------------------------

    def _on_queued(self, e: CallEvent) -> list[tuple[str, ...]]:
        if e.call_id is None or e.call_id in self._calls:
            return []  # a call already queued (or connected) is not entered twice
        queue = e.queue or NONE
        waiting = self._queues.setdefault(queue, [])
        waiting.append(e.call_id)
        self._calls[e.call_id] = _Waiting(queue=queue, entered=e.mono, origposition=len(waiting))
        return [(queue, NONE, "ENTERQUEUE", "", e.data.get("caller", ""))]

    def _on_offered(self, e: CallEvent) -> list[tuple[str, ...]]:
        call = self._get(e)
        if call is None or call.connected_at is not None:
            return []
        out = self._ring_no_answer(call, e.mono)
        call.offered_to, call.offered_at = e.operator, e.mono
        if e.operator is not None and e.call_id is not None:
            self._ringing[e.operator] = e.call_id
        return out

    def _on_answered(self, e: CallEvent) -> list[tuple[str, ...]]:
        call = self._get(e)
        if call is None or call.connected_at is not None:
            return []
        self._leave(e.call_id, call)
        self._ringing.pop(e.operator or "", None)
        call.connected_at, call.agent = e.mono, e.operator
        ring = _secs(e.mono - call.offered_at) if call.offered_to else 0
        leg = e.data.get("leg", e.operator or "")
        hold = _secs(e.mono - call.entered)
        return [(call.queue, e.operator or NONE, "CONNECT", str(hold), leg, str(ring))]

    def _on_gave_up(self, e: CallEvent) -> list[tuple[str, ...]]:
        call = self._get(e)
        if call is None or call.connected_at is not None:
            return self._on_ended(e)
        position = self._leave(e.call_id, call)
        del self._calls[e.call_id or ""]
        what = "EXITWITHTIMEOUT" if e.kind is EventKind.OVERFLOWED else "ABANDON"
        wait = _secs(e.mono - call.entered)
        out = self._ring_no_answer(call, e.mono) if what == "EXITWITHTIMEOUT" else []
        return [*out, (call.queue, NONE, what, str(position), str(call.origposition), str(wait))]

    def _on_transferred(self, e: CallEvent) -> list[tuple[str, ...]]:
        call = self._get(e)
        if call is None or call.connected_at is None or call.transferred:
            return []
        call.transferred = True
        target = e.data.get("target", e.data.get("to", ""))
        hold, talk = _secs(call.connected_at - call.entered), _secs(e.mono - call.connected_at)
        agent = e.operator or call.agent or NONE
        fields = (target, CONTEXT, str(hold), str(talk), str(call.origposition))
        return [(call.queue, agent, "TRANSFER", *fields)]

    def _on_ended(self, e: CallEvent) -> list[tuple[str, ...]]:
        call = self._calls.pop(e.call_id or "", None)
        if call is None:
            return []
        if call.connected_at is None:
            self._calls[e.call_id or ""] = call
            return self._on_gave_up(e)
        if call.transferred:
            return []
        what = "COMPLETEAGENT" if e.data.get("by") == "operator" else "COMPLETECALLER"
        hold, talk = _secs(call.connected_at - call.entered), _secs(e.mono - call.connected_at)
        agent = e.operator or call.agent or NONE
        return [(call.queue, agent, what, str(hold), str(talk), str(call.origposition))]

    # -- operators ------------------------------------------------------------------------

    def _on_operator_state(self, e: CallEvent) -> list[tuple[str, ...]]:
        if e.operator is None:
            return []
        new = _OFFLINE.get(e.data.get("state", ""), e.data.get("state", ""))
        old = self._operator_state.get(e.operator, "offline")
        self._operator_state[e.operator] = new
        queue, reason = e.queue or NONE, e.data.get("reason", "")
        out: list[tuple[str, ...]] = []
        if old == "offline" and new != "offline":
            out.append((queue, e.operator, "ADDMEMBER", ""))
        if old == "paused" and new != "paused":
            out.append((queue, e.operator, "UNPAUSE", reason))
        if new == "paused" and old != "paused":
            out.append((queue, e.operator, "PAUSE", reason))
        if new == "offline" and old != "offline":
            out.append((queue, e.operator, "REMOVEMEMBER", ""))
        return out

    # -- helpers --------------------------------------------------------------------------

    def _get(self, e: CallEvent) -> _Waiting | None:
        return None if e.call_id is None else self._calls.get(e.call_id)

    def _leave(self, call_id: str | None, call: _Waiting) -> int:
        waiting = self._queues.get(call.queue, [])
        if call_id not in waiting:
            return 0
        position = waiting.index(call_id) + 1
        waiting.remove(call_id)
        return position

    def _ring_no_answer(self, call: _Waiting, now: float) -> list[tuple[str, ...]]:
        if call.offered_to is None:
            return []
        ring_ms = round((now - call.offered_at) * 1000)
        agent, call.offered_to = call.offered_to, None
        self._ringing.pop(agent, None)
        return [(call.queue, agent, "RINGNOANSWER", str(ring_ms))]


def export(events: Iterable[CallEvent]) -> Iterator[str]:
    """queue_log lines (without newlines) for `events` given in `seq` order."""
    log = QueueLog()
    for event in events:
        yield from log.receive_event(event)


def _secs(seconds: float) -> int:
    return max(round(seconds), 0)


def _clean(text: str) -> str:
    # The format has no quoting: a '|' or newline inside a field would shift the columns.
    return text.replace("|", "_").replace("\n", " ").replace("\r", " ")


def _line(wall_us: int, call_id: str | None, queue: str, agent: str, *fields: str) -> str:
    epoch = wall_us // 1_000_000
    parts = [str(epoch), call_id or NONE, queue, agent, *fields]
    return "|".join(_clean(p) for p in parts)


_HANDLERS: dict[EventKind, Callable[[QueueLog, CallEvent], list[tuple[str, ...]]]] = {
    EventKind.QUEUED: QueueLog._on_queued,
    EventKind.OFFERED: QueueLog._on_offered,
    EventKind.ANSWERED: QueueLog._on_answered,
    EventKind.ABANDONED: QueueLog._on_gave_up,
    EventKind.OVERFLOWED: QueueLog._on_gave_up,
    EventKind.TRANSFERRED: QueueLog._on_transferred,
    EventKind.ENDED: QueueLog._on_ended,
    EventKind.OPERATOR_STATE: QueueLog._on_operator_state,
}
