"""The ACD's invariants under any interleaving of inputs (hypothesis stateful test).

Random callers, operators, phones and clock ticks, including late and stale inputs a
real network produces (an answer after a cancel, a hang-up after the end). After every
step: no call offered to two operators (except ring-all), no operator holding two
calls nor rung for two (a blind transfer to an operator reserves them like an offer), at
most one operator on a call, every live call reachable (in a queue or held by its
operator), every call that left the engine left with exactly one outcome, every
operator's reported state changes chain up to the state it is in, nobody still offered
past the ring timeout, and no call waiting while an operator could take it.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from acd.config import AcdConfig, OverflowKind, parse_acd_config
from acd.engine import AcdEngine
from acd.errors import AcdError, InvalidOperatorActionError
from acd.events import (
    CallAbandoned,
    CallbackFailed,
    CallbackRequested,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    Disposition,
    OfferCall,
    OfferFailure,
    OperatorStateChanged,
    Output,
)
from acd.operator import OperatorState
from acd.queue import CallState
from acd.strategy import RING_ALL, STRATEGIES

STRATEGY_NAMES = sorted(STRATEGIES)


def make_config(
    qa: str = "longest-idle", qb: str = "ring-all", qc: str = "skill-level"
) -> AcdConfig:
    return parse_acd_config(
        {
            "queues": [
                {
                    "name": "qa",
                    "skill": "a",
                    "strategy": qa,
                    "wrapup": 10,
                    "max_wait": 40,
                    "on_overflow": {"action": "queue", "target": "qc"},
                    "announce_interval": 30,
                    "callback_digit": "1",
                    "callback_retry_delay": 20,
                },
                {
                    "name": "qb",
                    "skill": "b",
                    "strategy": qb,
                    "ring_timeout": 10,
                    "max_len": 3,
                    "on_no_operator": {"action": "voicemail", "target": "mb"},
                },
                {
                    "name": "qc",
                    "skill": "c",
                    "strategy": qc,
                    "max_wait": 70,
                    "pause_on_no_answer": False,
                    "on_overflow": {"action": "message-and-hangup"},
                },
            ],
            "operators": [
                {"id": "op1", "skills": {"a": 5, "c": 2}},
                {"id": "op2", "skills": {"a": 3, "b": 5}},
                {"id": "op3", "skills": {"b": 4, "c": 9}},
                {"id": "op4", "skills": {"a": 1, "b": 1, "c": 1}},
            ],
        }
    )


CONFIG = make_config()
OPS = [o.id for o in CONFIG.operators]
RING_TIMEOUT = {q.name: q.ring_timeout for q in CONFIG.queues}
MAX_WAIT = {q.name: q.max_wait for q in CONFIG.queues if q.max_wait is not None}
SKILL = {q.name: q.skill for q in CONFIG.queues}
SKILLS = {o.id: set(o.skills) for o in CONFIG.operators}
ops = st.sampled_from(OPS)


class AcdMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._start(CONFIG)

    @initialize(
        qa=st.sampled_from(STRATEGY_NAMES),
        qb=st.sampled_from(STRATEGY_NAMES),
        qc=st.sampled_from(STRATEGY_NAMES),
    )
    def choose_strategies(self, qa: str, qb: str, qc: str) -> None:
        self._start(make_config(qa, qb, qc))

    def _start(self, config: AcdConfig) -> None:
        self.now = 0.0
        self.engine = AcdEngine(config, now=0.0)
        self.ring_all = {q.name for q in config.queues if q.strategy == RING_ALL}
        self.log: list[Output] = []
        self.created: list[str] = []
        self.offered_at: dict[tuple[str, str], float] = {}
        self.offered_queue: dict[tuple[str, str], str] = {}
        self.joined_at: dict[str, float] = {}
        self.callbacks: set[str] = set()
        for op in OPS:  # start with a staffed team so offers flow from the first step
            self.engine.operator_registered(op, now=0.0)
            self.engine.operator_login(op, now=0.0)
        self._drain()

    def _drain(self) -> None:
        for item in self.engine.commands():
            self.log.append(item)
            if isinstance(item, CallbackRequested):
                self.callbacks.add(item.call_id)
            if isinstance(item, CallQueued):
                self.joined_at[item.call_id] = item.at
            if isinstance(item, OfferCall):
                assert SKILL[item.queue] in SKILLS[item.operator], item
            if isinstance(item, CallOffered):
                self.offered_at[(item.call_id, item.operator)] = item.at
                self.offered_queue[(item.call_id, item.operator)] = item.queue

    def _call(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.created))

    # ------------------------------------------------------------------ callers

    @rule(queue=st.sampled_from(["qa", "qb", "qb", "qc"]), priority=st.integers(0, 2))
    def enqueue(self, queue: str, priority: int) -> None:
        call_id = f"c{len(self.created)}"
        self.created.append(call_id)
        self.engine.enqueue(call_id, queue, priority=priority, caller="0461", now=self.now)
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data())
    def caller_hangs_up(self, data: st.DataObject) -> None:
        self.engine.caller_hung_up(self._call(data), now=self.now)
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data())
    def call_ends(self, data: st.DataObject) -> None:
        self.engine.call_ended(self._call(data), now=self.now)
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data())
    def callback_request(self, data: st.DataObject) -> None:
        # Not waiting, or its queue has no callback: a clear refusal.
        with contextlib.suppress(AcdError):
            self.engine.request_callback(self._call(data), now=self.now)
        self._drain()

    def _waiting_in_qa(self) -> list[str]:
        return [c for c in self.engine.queued_calls("qa") if c in self.engine.call_ids()]

    @precondition(lambda self: self._waiting_in_qa())
    @rule(data=st.data())
    def waiting_caller_asks_for_callback(self, data: st.DataObject) -> None:
        self.engine.request_callback(
            data.draw(st.sampled_from(self._waiting_in_qa())), now=self.now
        )
        self._drain()

    @precondition(lambda self: self._on_call())
    @rule(data=st.data(), ok=st.booleans())
    def live_callback_outcome(self, data: st.DataObject, ok: bool) -> None:
        call_id = data.draw(st.sampled_from(self._on_call()))
        try:
            if ok:
                self.engine.callback_answered(call_id, now=self.now)
            else:
                self.engine.callback_failed(call_id, now=self.now)
        except AcdError:
            pass  # not a callback
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data(), ok=st.booleans())
    def callback_outcome(self, data: st.DataObject, ok: bool) -> None:
        call_id = self._call(data)
        try:
            if ok:
                self.engine.callback_answered(call_id, now=self.now)
            else:
                self.engine.callback_failed(call_id, now=self.now)
        except AcdError:
            pass
        self._drain()

    # ------------------------------------------------------------------- phones

    @precondition(lambda self: self.created)
    @rule(data=st.data(), op=ops)
    def phone_answers(self, data: st.DataObject, op: str) -> None:
        self.engine.offer_answered(self._call(data), op, now=self.now)
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data(), op=ops, reason=st.sampled_from(["busy", "decline", "unreachable"]))
    def phone_refuses(self, data: st.DataObject, op: str, reason: str) -> None:
        self.engine.offer_rejected(self._call(data), op, reason=OfferFailure(reason), now=self.now)
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data(), op=ops)
    def phone_rings(self, data: st.DataObject, op: str) -> None:
        self.engine.offer_ringing(self._call(data), op, now=self.now)
        self._drain()

    def _ringing(self) -> list[tuple[str, str]]:
        return sorted((c, op) for c in self.engine.call_ids() for op in self.engine.offered_to(c))

    @precondition(lambda self: self._ringing())
    @rule(data=st.data(), answer=st.booleans())
    def phone_responds_to_a_live_offer(self, data: st.DataObject, answer: bool) -> None:
        call_id, op = data.draw(st.sampled_from(self._ringing()))
        if answer:
            self.engine.offer_answered(call_id, op, now=self.now)
        else:
            self.engine.offer_rejected(call_id, op, reason=OfferFailure.BUSY, now=self.now)
        self._drain()

    @precondition(lambda self: self._on_call())
    @rule(data=st.data())
    def live_call_ends(self, data: st.DataObject) -> None:
        self.engine.call_ended(data.draw(st.sampled_from(self._on_call())), now=self.now)
        self._drain()

    def _on_call(self) -> list[str]:
        return [c for c in self.engine.call_ids() if self.engine.call_state(c) is CallState.ON_CALL]

    # ---------------------------------------------------------------- transfers

    def _talker(self, call_id: str) -> str | None:
        for op in OPS:
            snap = self.engine.operator_snapshot(op, now=self.now)
            if snap.state is OperatorState.ON_CALL and snap.call_id == call_id:
                return op
        return None

    def _may_take_transfer(self, call_id: str, target: str) -> bool:
        snap = self.engine.operator_snapshot(target, now=self.now)
        talker = self._talker(call_id)
        return (
            talker is not None
            and talker != target
            and self.engine.transfer_target(call_id) is None
            and snap.registered
            and snap.state is OperatorState.AVAILABLE
        )

    @precondition(lambda self: self.created)
    @rule(data=st.data(), to=ops)
    def operator_transfers(self, data: st.DataObject, to: str) -> None:
        call_id = data.draw(st.sampled_from(self._on_call() or self.created))
        expected = self._may_take_transfer(call_id, to)
        try:
            self.engine.transfer_to_operator(call_id, to, now=self.now)
            taken = True
        except AcdError:
            taken = False
        # A callback whose citizen is not on the line yet is refused too.
        assert taken == expected or (call_id in self.callbacks and not taken), call_id
        if taken:
            assert self.engine.operator_state(to) is OperatorState.OFFERED
        self._drain()

    def _transferring(self) -> list[tuple[str, str]]:
        found = ((c, self.engine.transfer_target(c)) for c in self.engine.call_ids())
        return sorted((c, t) for c, t in found if t is not None)

    @precondition(lambda self: self._transferring())
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["answered", "no-answer", "busy", "caller-gone", "left"]),
    )
    def transfer_outcome(self, data: st.DataObject, outcome: str) -> None:
        call_id, target = data.draw(st.sampled_from(self._transferring()))
        if outcome == "answered":
            self.engine.transfer_answered(call_id, target, now=self.now)
            assert self.engine.operator_state(target) is OperatorState.ON_CALL
        elif outcome == "left":
            self.engine.transferring_operator_left(call_id, now=self.now)
        else:
            self.engine.transfer_failed(call_id, target, reason=outcome, now=self.now)
            assert self.engine.transfer_target(call_id) is None
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data(), to=ops, answered=st.booleans())
    def stale_transfer_input(self, data: st.DataObject, to: str, answered: bool) -> None:
        call_id = self._call(data)
        if answered:
            self.engine.transfer_answered(call_id, to, now=self.now)
        else:
            self.engine.transfer_failed(call_id, to, reason="no-answer", now=self.now)
        self._drain()

    @precondition(lambda self: self.created)
    @rule(data=st.data())
    def transferring_operator_leaves(self, data: st.DataObject) -> None:
        self.engine.transferring_operator_left(self._call(data), now=self.now)
        self._drain()

    @rule(op=ops, up=st.sampled_from([True, True, False]))
    def registration(self, op: str, up: bool) -> None:
        if up:
            self.engine.operator_registered(op, now=self.now)
        else:
            self.engine.operator_unregistered(op, now=self.now)
        self._drain()

    # ---------------------------------------------------------------- operators

    @rule(
        op=ops,
        action=st.sampled_from(
            ["login", "login", "login", "logout", "pause", "ready", "ready", "wrapup_done"]
        ),
    )
    def control(self, op: str, action: str) -> None:
        # E.g. ready while logged out: refused, nothing changed.
        with contextlib.suppress(InvalidOperatorActionError):
            getattr(self.engine, f"operator_{action}")(op, now=self.now)
        self._drain()

    @rule(op=ops, disposition=st.sampled_from(list(Disposition)))
    def disposition(self, op: str, disposition: Disposition) -> None:
        with contextlib.suppress(AcdError):
            self.engine.set_operator_disposition(op, disposition, now=self.now)
        self._drain()

    # -------------------------------------------------------------------- clock

    @rule(dt=st.one_of(st.floats(0, 2), st.floats(0, 40)))
    def tick(self, dt: float) -> None:
        until = self.now + dt
        while (deadline := self.engine.get_timer()) is not None and deadline <= until:
            assert deadline >= self.now, "a timer was left in the past"
            self.now = deadline
            self.engine.handle_timer(now=self.now)
            self._drain()
        self.now = until

    # --------------------------------------------------------------- invariants

    def _holders(self) -> dict[str, list[str]]:
        held: dict[str, list[str]] = {}
        for op in OPS:
            snap = self.engine.operator_snapshot(op, now=self.now)
            if snap.call_id is not None:
                held.setdefault(snap.call_id, []).append(op)
        return held

    @invariant()
    def one_offer_per_call_unless_ring_all(self) -> None:
        for call_id in self.engine.call_ids():
            offered = self.engine.offered_to(call_id)
            if self.engine.call_queue(call_id) not in self.ring_all:
                assert len(offered) <= 1, (call_id, offered)

    def _ringing_for(self, call_id: str) -> set[str]:
        """Operators a call rings: its offers' and its transfer's target."""
        target = self.engine.transfer_target(call_id)
        return set(self.engine.offered_to(call_id)) | ({target} if target else set())

    @invariant()
    def operators_hold_at_most_one_call_consistently(self) -> None:
        holders = self._holders()
        for op in OPS:
            snap = self.engine.operator_snapshot(op, now=self.now)
            if snap.state is OperatorState.OFFERED:
                assert snap.call_id is not None and op in self._ringing_for(snap.call_id)
            elif snap.state is OperatorState.ON_CALL:
                assert self.engine.call_state(snap.call_id or "") is CallState.ON_CALL
            else:
                assert snap.call_id is None, (op, snap)
        for call_id, held_by in holders.items():
            ringing = self._ringing_for(call_id)
            talking = set(held_by) - ringing
            if self.engine.call_state(call_id) is CallState.ON_CALL:
                # A transfer rings at most one operator; the talker may have left it.
                assert self.engine.offered_to(call_id) == frozenset()
                assert len(talking) == 1 or (not talking and len(ringing) == 1), held_by
            else:
                assert set(held_by) == ringing and not talking

    @invariant()
    def an_operator_is_never_offered_two_calls(self) -> None:
        for op in OPS:
            rung = [c for c in self.engine.call_ids() if op in self._ringing_for(c)]
            assert len(rung) <= 1, (op, rung)
            if rung:
                assert self.engine.operator_state(op) is OperatorState.OFFERED, (op, rung)

    @invariant()
    def a_call_has_at_most_one_operator_on_it(self) -> None:
        for call_id in self.engine.call_ids():
            on_it = [
                op
                for op in OPS
                if self.engine.operator_state(op) is OperatorState.ON_CALL
                and self.engine.operator_snapshot(op, now=self.now).call_id == call_id
            ]
            assert len(on_it) <= 1, (call_id, on_it)

    @invariant()
    def no_call_is_lost(self) -> None:
        holders = self._holders()
        outcomes = Counter(self._terminal_call_ids())
        live = set(self.engine.call_ids())
        for call_id in self.created:
            if call_id in live:
                assert outcomes[call_id] == 0, call_id
                state = self.engine.call_state(call_id)
                if state is CallState.ON_CALL:
                    assert call_id in holders
                else:
                    queue = self.engine.call_queue(call_id) or ""
                    assert call_id in self.engine.queued_calls(queue)
            else:
                assert outcomes[call_id] == 1, (call_id, outcomes[call_id])

    def _terminal_call_ids(self) -> list[str]:
        ids: list[str] = []
        for item in self.log:
            if isinstance(item, CallAbandoned | CallEnded):
                ids.append(item.call_id)
            if isinstance(item, CallOverflowed) and item.action is not OverflowKind.QUEUE:
                ids.append(item.call_id)
            if isinstance(item, CallbackFailed) and item.final:
                ids.append(item.call_id)
        return ids

    @invariant()
    def reported_state_changes_chain_to_the_current_state(self) -> None:
        last: dict[str, OperatorState] = dict.fromkeys(OPS, OperatorState.LOGGED_OUT)
        for item in self.log:
            if isinstance(item, OperatorStateChanged):
                assert item.old is last[item.operator], item
                last[item.operator] = item.new
        for op in OPS:
            assert self.engine.operator_state(op) is last[op]

    @invariant()
    def paused_operators_and_only_they_have_a_reason(self) -> None:
        for op in OPS:
            snap = self.engine.operator_snapshot(op, now=self.now)
            assert (snap.reason is not None) == (snap.state is OperatorState.PAUSED), snap

    @invariant()
    def nobody_stays_offered_past_the_ring_timeout(self) -> None:
        for op in OPS:
            snap = self.engine.operator_snapshot(op, now=self.now)
            if snap.state is OperatorState.OFFERED:
                assert snap.registered, f"{op} rings with no registered phone"
                if self.engine.transfer_target(snap.call_id or "") == op:
                    continue  # a transfer's deadline is routing's `transfer_timeout`
                key = (snap.call_id or "", op)
                deadline = self.offered_at[key] + RING_TIMEOUT[self.offered_queue[key]]
                assert self.now < deadline
                timer = self.engine.get_timer()
                assert timer is not None and timer <= deadline

    @invariant()
    def nobody_waits_past_max_wait_unless_ringing(self) -> None:
        for call_id in self.engine.call_ids():
            queue = self.engine.call_queue(call_id) or ""
            max_wait = MAX_WAIT.get(queue)
            if max_wait is None or self.engine.call_state(call_id) is not CallState.WAITING:
                continue
            if call_id in self.callbacks:
                continue
            assert self.now < self.joined_at[call_id] + max_wait, call_id

    @invariant()
    def no_call_waits_while_an_operator_could_take_it(self) -> None:
        for queue in self.engine.queue_names():
            snapshot = self.engine.queue_snapshot(queue, now=self.now)
            if snapshot.waiting:
                assert self.engine.eligible_operators(queue, now=self.now) == [], queue


AcdMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAcdInvariants = AcdMachine.TestCase
