"""Operators' controls (login, logout, pause, ready, wrap-up done), their phones'
registration, and the resolution of answered calls (the Q KPI).

Controls take effect at once, from the HTTP API or a feature code alike. While the
operator is on a call, pause and logout are deferred to the end of the call (after
wrap-up), so a citizen is never cut off; ready cancels a deferred one. Pausing or
logging out while a call rings on the operator's phone cancels that offer and the call
goes to the next operator, keeping its place.
"""

from __future__ import annotations

from acd.core import WRAPUP, Answered, EngineCore
from acd.errors import InvalidInputError, InvalidOperatorActionError, UnknownCallError
from acd.events import (
    CallDispositionSet,
    CallTransferred,
    Disposition,
    OfferFailure,
    OperatorRegistrationChanged,
)
from acd.feature_codes import FeatureAction, FeatureCommand
from acd.operator import Operator, OperatorInput, OperatorState

DEFAULT_PAUSE_REASON = "paused"
NO_ANSWER_REASON = "no answer"


class OperatorControls(EngineCore):
    # ------------------------------------------------------------------- controls

    def operator_login(self, operator: str, *, now: float) -> None:
        op = self._op(operator)
        op.pending = op.pending_reason = None
        self._move(op, OperatorInput.LOGIN, now=now)
        self._dispatch(now=now)

    def operator_logout(self, operator: str, *, now: float) -> None:
        self._leave(self._op(operator), OperatorInput.LOGOUT, None, now=now)

    def operator_pause(self, operator: str, reason: str | None = None, *, now: float) -> None:
        self._leave(
            self._op(operator), OperatorInput.PAUSE, reason or DEFAULT_PAUSE_REASON, now=now
        )

    def operator_ready(self, operator: str, *, now: float) -> None:
        op = self._op(operator)
        self._check(op, OperatorInput.READY)
        op.pending = op.pending_reason = None
        self._timers.cancel((WRAPUP, op.id))
        self._move(op, OperatorInput.READY, now=now)
        self._dispatch(now=now)

    def operator_wrapup_done(self, operator: str, *, now: float) -> None:
        op = self._op(operator)
        self._check(op, OperatorInput.WRAPUP_DONE)
        if op.state is OperatorState.WRAP_UP:
            self._finish_work(op, now=now)
        self._dispatch(now=now)

    def _leave(self, op: Operator, event: OperatorInput, reason: str | None, *, now: float) -> None:
        """Pause or log out: deferred on a call, cancelling a ringing offer."""
        self._check(op, event)
        if op.state is OperatorState.ON_CALL:
            op.pending, op.pending_reason = event, reason
            return
        if op.state is OperatorState.OFFERED and op.call_id is not None:
            self._withdraw(op, OfferFailure.OPERATOR_LEFT, now=now, then=event, pause_reason=reason)
        else:
            self._timers.cancel((WRAPUP, op.id))
            self._move(op, event, now=now, reason=reason)
        self._after_leaving(op, now=now)

    def _withdraw(
        self,
        op: Operator,
        reason: OfferFailure,
        *,
        now: float,
        then: OperatorInput = OperatorInput.OFFER_ENDED,
        pause_reason: str | None = None,
    ) -> None:
        """Take back what rings an offered operator: a leg of an offer, or their
        reservation by a transfer (routing is told to stop ringing either way)."""
        call = self._calls[op.call_id or ""]
        if call.transfer is not None and call.transfer.target == op.id:
            self._release_target(
                call, reason, now=now, then=then, pause_reason=pause_reason, cancel=True
            )
        else:
            self._end_leg(call, op, reason, now=now, then=then, pause_reason=pause_reason)

    def _after_leaving(self, op: Operator, *, now: float) -> None:
        if op.state is OperatorState.LOGGED_OUT:
            self._empty_queues_of(op, now=now)
        self._dispatch(now=now)

    def _check(self, op: Operator, event: OperatorInput) -> None:
        if not op.can(event):
            raise InvalidOperatorActionError(op.id, event.value, op.state.value)

    def _start_wrapup(self, op: Operator, queue: str, *, now: float) -> None:
        """After a call: `queue`'s wrap-up time, or at once the end of work."""
        wrapup = self._queue_cfg[queue].wrapup
        if wrapup > 0:
            self._timers.schedule((WRAPUP, op.id), now + wrapup)
        else:
            self._finish_work(op, now=now)

    def _finish_work(self, op: Operator, *, now: float) -> None:
        """End of after-call work: a deferred pause or logout, else available."""
        self._timers.cancel((WRAPUP, op.id))
        pending, reason = op.pending, op.pending_reason
        op.pending = op.pending_reason = None
        if pending is None:
            event = (
                OperatorInput.WRAPUP_DONE
                if op.state is OperatorState.WRAP_UP
                else OperatorInput.READY
            )
            self._move(op, event, now=now)
            return
        self._move(op, pending, now=now, reason=reason)
        if op.state is OperatorState.LOGGED_OUT:
            self._empty_queues_of(op, now=now)

    # -------------------------------------------------------------- registration

    def operator_registered(self, operator: str, *, now: float) -> None:
        """The operator's phone is reachable (a REGISTER binding exists)."""
        op = self._op(operator)
        if not op.registered:
            op.registered = True
            self._refresh_free(op, now=now)
            self._emit(OperatorRegistrationChanged(operator=op.id, registered=True, at=now))
        self._dispatch(now=now)

    def operator_unregistered(self, operator: str, *, now: float) -> None:
        """The phone's binding is gone: a call ringing there is re-offered, never lost."""
        op = self._op(operator)
        if op.registered:
            op.registered = False
            self._refresh_free(op, now=now)
            self._emit(OperatorRegistrationChanged(operator=op.id, registered=False, at=now))
        if op.state is OperatorState.OFFERED and op.call_id is not None:
            self._withdraw(op, OfferFailure.UNREGISTERED, now=now)
        self._dispatch(now=now)

    # --------------------------------------------------------------- resolution

    def set_disposition(self, call_id: str, disposition: Disposition | str, *, now: float) -> None:
        """The operator says how an answered call ended (API or `*45`/`*46`)."""
        value = _disposition(disposition)
        record = self._answered_call(call_id)
        record.disposition, record.explicit = value, True
        self._emit_disposition(call_id, record, now=now)

    def set_operator_disposition(
        self, operator: str, disposition: Disposition, *, now: float
    ) -> str:
        """Set the disposition of the operator's last answered call; return its id."""
        call_id = self._op(operator).last_call_id
        if call_id is None:
            raise UnknownCallError(f"operator {operator!r} has answered no call")
        self.set_disposition(call_id, disposition, now=now)
        return call_id

    def transferred_to_referent(self, call_id: str, target: str, *, now: float) -> None:
        """A transfer to a second-level referent counts as escalated unless the
        operator has said (or later says) otherwise."""
        record = self._answered_call(call_id)
        self._emit(
            CallTransferred(call_id=call_id, operator=record.operator, target=target, at=now)
        )
        if not record.explicit:
            record.disposition = Disposition.ESCALATED
            self._emit_disposition(call_id, record, now=now)

    def disposition(self, call_id: str) -> Disposition:
        return self._answered_call(call_id).disposition

    def _answered_call(self, call_id: str) -> Answered:
        record = self._answered.get(call_id)
        if record is None:
            raise UnknownCallError(f"no answered call {call_id!r}")
        return record

    def _emit_disposition(self, call_id: str, record: Answered, *, now: float) -> None:
        self._emit(
            CallDispositionSet(
                call_id=call_id,
                queue=record.queue,
                operator=record.operator,
                disposition=record.disposition,
                explicit=record.explicit,
                at=now,
            )
        )

    # ------------------------------------------------------------ feature codes

    def apply_feature(self, operator: str, command: FeatureCommand, *, now: float) -> None:
        """Carry out a feature code dialed by `operator` (see `acd.feature_codes`)."""
        action = command.action
        if action is FeatureAction.PAUSE:
            reason = self.config.pause_reasons.get(command.reason_code or "")
            if reason is None and command.reason_code:
                reason = f"code {command.reason_code}"
            self.operator_pause(operator, reason, now=now)
        elif action in (FeatureAction.RESOLVED, FeatureAction.ESCALATED):
            self.set_operator_disposition(operator, Disposition(action.value), now=now)
        else:
            controls = {
                FeatureAction.LOGIN: self.operator_login,
                FeatureAction.LOGOUT: self.operator_logout,
                FeatureAction.READY: self.operator_ready,
                FeatureAction.WRAPUP_DONE: self.operator_wrapup_done,
            }
            controls[action](operator, now=now)


def _disposition(value: Disposition | str) -> Disposition:
    try:
        return Disposition(value)
    except ValueError:
        known = ", ".join(d.value for d in Disposition)
        raise InvalidInputError(f"unknown disposition {value!r} (expected {known})") from None
