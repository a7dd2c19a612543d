"""Callbacks that keep the caller's place (issue 5, "Callback keeping the caller's place").

While waiting, the caller presses the queue's `callback_digit`; routing calls
`request_callback` and the caller hangs up. The call stays where it was in the queue,
with its original queue-entry time, and is offered like any other when its turn
comes, with `callback_number` set. Operator first: once the operator answers,
`PlaceCallback` asks routing to dial the citizen, so nobody answers a callback to wait
again. `callback_answered` makes it an answered call (`CallAnswered`, callback=True);
`callback_failed` frees the operator and retries after `callback_retry_delay`, up to
`callback_attempts`, keeping the place.
"""

from __future__ import annotations

from acd.core import RETRY
from acd.errors import (
    CallbackUnavailableError,
    DuplicateCallError,
    UnknownCallError,
    UnknownQueueError,
)
from acd.events import CallbackFailed, CallbackRequested, OfferFailure
from acd.operator import OperatorInput
from acd.queue import Call, CallInput, CallState
from acd.staff import OperatorControls


class CallbackInputs(OperatorControls):
    def request_callback(self, call_id: str, *, number: str | None = None, now: float) -> None:
        """The waiting caller pressed the callback digit: they keep their place and
        hang up; when their turn comes an operator is offered the call, and on
        answer `PlaceCallback` dials `number` (default: the caller's number)."""
        call = self._calls.get(call_id)
        if call is None or call.state is CallState.ON_CALL:
            raise UnknownCallError(f"call {call_id!r} is not waiting in a queue")
        if self._queue_cfg[call.queue].callback_digit is None:
            raise CallbackUnavailableError(f"queue {call.queue!r} offers no callback")
        target = number or call.callback_number or call.caller
        if not target:
            raise CallbackUnavailableError(f"call {call_id!r} has no number to call back")
        if call.callback_number is None:
            self._cancel_all_legs(call, OfferFailure.CALLBACK_REQUESTED, now=now)
            if call.state is CallState.OFFERED:
                call.move(CallInput.OFFER_ENDED)
            self._disarm_waiting_timers(call_id)
            self._emit(CallbackRequested(call_id=call_id, queue=call.queue, number=target, at=now))
        call.callback_number = target
        self._dispatch(now=now)

    def restore_callback(
        self,
        call_id: str,
        queue: str,
        *,
        number: str,
        entered_at: float,
        priority: int = 0,
        caller: str = "",
        attempts: int = 0,
        retry_at: float | None = None,
        now: float,
    ) -> None:
        """A callback saved at a shutdown comes back (the engine lives in memory): in
        `queue` at its place (`entered_at`, on this process's clock), with the attempts
        already made, not offered before `retry_at`. It is a promise already made, so
        the checks of a new caller do not apply: a full queue, nobody logged in yet (at
        start nobody is), max-wait and announcements (nobody is on the line). No fact
        is emitted: routing logs the restart itself."""
        if queue not in self._queues:
            raise UnknownQueueError(f"unknown queue {queue!r}")
        if call_id in self._calls:
            raise DuplicateCallError(f"call {call_id!r} is already in the ACD")
        if self._queue_cfg[queue].callback_digit is None:
            raise CallbackUnavailableError(f"queue {queue!r} offers no callback")
        self._seq += 1
        call = Call(call_id, queue, priority, entered_at, now, caller, self._seq)
        call.callback_number, call.callback_attempts = number, attempts
        call.visited = (queue,)
        self._calls[call_id] = call
        self._queues[queue].add(call)
        if retry_at is not None and retry_at > now:
            call.not_before = retry_at
            self._timers.schedule((RETRY, call_id), retry_at)
        self._dispatch(now=now)

    def callback_retry_at(self, call_id: str) -> float | None:
        """When a callback may be offered again after a failed attempt (an instant in
        the past once due); None for a call that is not a callback or never failed."""
        call = self._calls.get(call_id)
        if call is None or call.callback_number is None or call.not_before <= 0.0:
            return None
        return call.not_before

    def callback_answered(self, call_id: str, *, now: float) -> None:
        """The citizen answered the callback: operator and citizen are talking."""
        call = self._callback_on_call(call_id)
        if not call.callback_connected:
            call.callback_connected = True
            self._record_answer(call, call.operator or "", now=now)

    def callback_failed(self, call_id: str, *, now: float) -> None:
        """The citizen did not answer the callback. The operator is freed at once (no
        wrap-up: there was no conversation); the call keeps its place for another
        attempt after `callback_retry_delay`, up to `callback_attempts`."""
        call = self._callback_on_call(call_id)
        if call.callback_connected:
            raise UnknownCallError(f"callback {call_id!r} is already connected")
        op = self._operators[call.operator or ""]
        op.call_id, call.operator = None, None
        self._move(op, OperatorInput.CALL_ABORTED, now=now)
        self._finish_work(op, now=now)
        self._retry_callback(call, now=now)
        self._dispatch(now=now)

    def _retry_callback(self, call: Call, *, now: float) -> None:
        cfg = self._queue_cfg[call.queue]
        call.callback_attempts += 1
        final = call.callback_attempts >= cfg.callback_attempts
        self._emit(
            CallbackFailed(
                call_id=call.call_id,
                queue=call.queue,
                attempt=call.callback_attempts,
                final=final,
                at=now,
            )
        )
        if final:
            del self._calls[call.call_id]
            return
        call.move(CallInput.RETRY)
        call.not_before = now + cfg.callback_retry_delay
        self._queues[call.queue].add(call)  # back in its original place
        self._timers.schedule((RETRY, call.call_id), call.not_before)

    def _callback_on_call(self, call_id: str) -> Call:
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.ON_CALL or call.callback_number is None:
            raise UnknownCallError(f"call {call_id!r} is not a callback being placed")
        return call
