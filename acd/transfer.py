"""Blind transfers of an answered call to another operator, through the ACD.

A transfer to an operator reserves them as an offer does (Asterisk and FreeSWITCH
mod_callcenter never ring an agent for two calls): `transfer_to_operator` moves the
target to `offered`, so dispatch offers them nothing else while their phone rings. Then

| what happens                          | the target                   | the call and its owner  |
| ------------------------------------- | ---------------------------- | ----------------------- |
| the target answers                    | on call with this call id    | now theirs: hang-up,    |
| (`transfer_answered`)                 |                              | wrap-up and disposition |
|                                       |                              | as for a queue call; the|
|                                       |                              | transferring operator   |
|                                       |                              | goes to wrap-up         |
| no answer in time (`no-answer`)       | the call's queue's ring-no-  | back to the transferring|
|                                       | answer policy: paused "no    | operator, who never left|
|                                       | answer", or skipped for      | `on_call`               |
|                                       | `no_answer_delay`            |                         |
| busy, decline, unreachable            | available, skipped for the   | same                    |
|                                       | queue's delay for that       |                         |
| caller gone, any other reason         | available                    | same, or ended          |
| paused, logged out, unregistered      | as the control says;         | same; `CancelTransfer`  |
| while ringing                         |                              | tells routing           |

The same policy as a queue offer's, on purpose: a phone that does not answer a
colleague's transfer for `transfer_timeout` seconds is as unattended as one that does
not answer a queue call. If the transferring operator hangs up while the target rings
(`transferring_operator_left`), they go to wrap-up at once and the call rings on; if
the transfer then fails, the call ends here (`CallEnded`, by the transferring
operator) and routing queues the caller again. The transfer's deadline is routing's
(`transfer_timeout`): the engine arms no timer for it.
"""

from __future__ import annotations

from acd.core import Answered, refusal_delay
from acd.errors import InvalidInputError, InvalidOperatorActionError, UnknownCallError
from acd.events import CallTransferred, CancelTransfer, OfferFailure
from acd.operator import Operator, OperatorInput, OperatorState
from acd.queue import Call, CallState, PendingTransfer
from acd.staff import NO_ANSWER_REASON, OperatorControls

_REFUSED = (OfferFailure.BUSY, OfferFailure.DECLINE, OfferFailure.UNREACHABLE)


class TransferInputs(OperatorControls):
    def transfer_to_operator(self, call_id: str, target: str, *, now: float) -> None:
        """The operator on `call_id` transfers it to `target`, whose phone routing is
        about to ring: `target` is reserved (offered) for it. Refused with
        `InvalidOperatorActionError` unless `target` is available and registered."""
        op = self._op(target)
        call = self._talking(call_id)
        if call.transfer is not None:
            raise InvalidInputError(f"call {call_id!r} is already being transferred")
        if op.id == call.operator:
            raise InvalidInputError(f"call {call_id!r} is already with {target!r}")
        if not op.registered:
            raise InvalidOperatorActionError(op.id, "take a transfer", "unregistered")
        if op.state is not OperatorState.AVAILABLE:
            raise InvalidOperatorActionError(op.id, "take a transfer", op.state.value)
        self._move(op, OperatorInput.OFFER, now=now)
        op.call_id = call_id
        call.transfer = PendingTransfer(target=op.id, by=call.operator or "", since=now)

    def transfer_answered(self, call_id: str, target: str, *, now: float) -> None:
        """The target answered: the call is theirs. A late answer (the reservation was
        taken back) changes nothing and yields `CancelTransfer`."""
        op = self._op(target)
        call = self._pending(call_id, target)
        if call is None:
            gone = call_id not in self._calls
            reason = OfferFailure.CALLER_GONE if gone else OfferFailure.WITHDRAWN
            self._emit(CancelTransfer(call_id=call_id, operator=target, reason=reason))
            return
        assert call.transfer is not None
        by, call.transfer = call.transfer.by, None
        if call.operator is not None:
            self._talker_leaves(call, now=now)
        self._take_over(call, op, now=now)
        self._emit(CallTransferred(call_id=call_id, operator=by, target=op.id, at=now))
        self._dispatch(now=now)

    def transfer_failed(
        self, call_id: str, target: str, *, reason: OfferFailure | str, now: float
    ) -> None:
        """The target did not take the call (`reason`: why, as for an offer): they are
        released under the queue's policy (module docstring). A transfer no longer
        ringing is ignored."""
        op = self._op(target)
        failure = _failure(reason)
        call = self._pending(call_id, target)
        if call is None:
            return
        cfg = self._queue_cfg[call.queue]
        paused = failure is OfferFailure.NO_ANSWER and cfg.pause_on_no_answer
        then = OperatorInput.NO_ANSWER if paused else OperatorInput.OFFER_ENDED
        self._release_target(
            call, failure, now=now, then=then, pause_reason=NO_ANSWER_REASON if paused else None
        )
        if failure is OfferFailure.NO_ANSWER and not paused:
            self._cool_down(op, cfg.no_answer_delay, now=now)
        elif failure in _REFUSED:
            self._cool_down(op, refusal_delay(cfg, failure), now=now)
        self._dispatch(now=now)

    # ---------------------------------------------------------------- helpers

    def _talking(self, call_id: str) -> Call:
        """An answered call with its operator and caller on the line."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.ON_CALL or call.operator is None:
            raise UnknownCallError(f"call {call_id!r} is not answered by an operator")
        if call.callback_number is not None and not call.callback_connected:
            raise UnknownCallError(f"callback {call_id!r} has nobody on the line yet")
        return call

    def _pending(self, call_id: str, target: str) -> Call | None:
        """The call whose transfer rings `target`, if any."""
        call = self._calls.get(call_id)
        if call is None or call.transfer is None or call.transfer.target != target:
            return None
        return call

    def _talker_leaves(self, call: Call, *, now: float) -> None:
        """The operator talking on `call` is done with it: wrap-up, as after any call
        (their part counts in the queue's handle time)."""
        op = self._operators[call.operator or ""]
        call.operator, op.call_id = None, None
        self._handle.add(call.queue, now - call.answered_at)
        self._move(op, OperatorInput.CALL_END, now=now)
        self._start_wrapup(op, call.queue, now=now)

    def _take_over(self, call: Call, op: Operator, *, now: float) -> None:
        """`op` now owns the call: its end, wrap-up and disposition are theirs."""
        self._move(op, OperatorInput.ANSWER, now=now)
        call.operator, call.answered_at = op.id, now
        op.calls_answered += 1
        op.last_call_id = call.call_id
        before = self._answered.get(call.call_id)
        record = Answered(queue=call.queue, operator=op.id)
        if before is not None:
            record.disposition, record.explicit = before.disposition, before.explicit
        self._remember_answered(call.call_id, record)


def _failure(reason: OfferFailure | str) -> OfferFailure:
    try:
        return OfferFailure(reason)
    except ValueError:
        known = ", ".join(r.value for r in OfferFailure)
        raise InvalidInputError(f"unknown failure {reason!r} (expected {known})") from None
