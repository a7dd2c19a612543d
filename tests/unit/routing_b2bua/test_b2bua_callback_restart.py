"""Pending callbacks across a restart, in virtual time: what a shutdown saves, and a new
process (a second harness, with its own monotonic clock) putting them back in their
places, offering them and dialing the citizen; the callbacks that cannot come back."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from b2bua_harness import (
    OPEN_HOUR,
    PHONE,
    TRUNK,
    Harness,
    answer_request,
    in_dialog,
    invite,
    make_harness,
    register,
)
from callback_peers import (
    ANSWER_SDP,
    CALL_ID,
    NUMBER,
    QUEUE,
    ask_callback,
    call_events,
    callback_harness,
    citizen_bye,
    finish_prompts,
    kinds_of,
    operator_answers,
    requests,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from acd import events as ac
from acd.config import OverflowAction, OverflowKind
from metrics.events import EventKind
from metrics.kpi import CallCounted, KpiEngine
from metrics.tally import Outcome
from routing import callback, callback_store
from routing.callback_store import SavedCallback
from routing.media_plane import DigitDetected
from sip.message import Request, Response

SECOND = "call-2@pbx"


def shut_down(h: Harness, *, now: float) -> list[SavedCallback]:
    """What a clean shutdown saves, through the file's bytes."""
    pending = callback_store.pending_at_shutdown(h.core.b2bua, now=now)
    callback_store.saved(h.core.b2bua, pending)
    data = callback_store.encode(pending, saved_at=OPEN_HOUR + timedelta(seconds=now))
    restored, unreadable = callback_store.decode(data)
    assert unreadable == []
    return restored


def restarted(offset: float) -> tuple[Harness, list[ac.Output]]:
    """A new process whose monotonic 0 is `offset` seconds after the old one's."""
    h, seen = callback_harness()
    h.core.b2bua.wall = lambda at: OPEN_HOUR + timedelta(seconds=at + offset)
    return h, seen


def another_caller(h: Harness, call_id: str = SECOND) -> None:
    """A caller who reaches QUEUE through the IVR (digit 3), as `queued_caller`."""
    (ok,) = [
        m
        for m in h.deliver(invite(call_id=call_id), TRUNK)
        if isinstance(m, Response) and m.status == 200
    ]
    h.deliver(in_dialog("ACK", ok, cseq=1, source=TRUNK), TRUNK)
    finish_prompts(h)
    h.media_event(DigitDetected(at=h.now, leg=f"{call_id}/caller", digit="3", duration_ms=100))
    finish_prompts(h)


def test_shutdown_saves_the_waiting_callback_with_what_restoring_it_needs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, _ = callback_harness()
    ask_callback(h)  # queued at 10 s, asked at 22 s
    with caplog.at_level(logging.WARNING, logger="routing.callback_store"):
        (item,) = shut_down(h, now=30.0)
    (queued, *_) = [e for e in call_events(h) if e.kind is EventKind.QUEUED]
    assert (item.call_id, item.queue, item.number) == (CALL_ID, QUEUE, NUMBER)
    assert (item.service, item.sub_service) == (queued.service, queued.sub_service)
    assert item.sub_service is not None
    assert item.entered == OPEN_HOUR + timedelta(seconds=10.0)
    assert item.entered.tzinfo is UTC
    assert "Mario Rossi" in item.from_header and "800228040" in item.to_header
    assert (item.trunk, item.priority, item.attempts) == (TRUNK, 0, 0)
    (record,) = caplog.records
    assert (
        record.getMessage()
        == f"shutdown: 1 pending callbacks of queue {QUEUE} saved for the next start"
    )
    assert NUMBER not in record.getMessage()
    # Saved is no end: the call goes on after the restart, and is not saved twice.
    assert EventKind.ENDED not in kinds_of(h)
    assert callback_store.pending_at_shutdown(h.core.b2bua, now=31.0) == []


def test_a_restored_callback_keeps_its_place_ahead_of_a_later_caller() -> None:
    """Saved with a queue entry at 10 s of the old clock; the new process's clock starts
    1000 s later. A caller who entered after that but before the restore (at 3 s of the
    new clock) must still come second: the restore converts the wall time back."""
    old, _ = callback_harness()
    ask_callback(old)
    saved = shut_down(old, now=30.0)
    h, seen = restarted(1000.0)
    h.now = 3.0
    another_caller(h)
    h.now = 5.0
    assert callback_store.restore(h.core.b2bua, saved, now=h.now) == []
    acd = h.core.b2bua.acd
    assert acd.queued_calls(QUEUE) == [CALL_ID, SECOND]
    assert acd.queue_snapshot(QUEUE, now=h.now).longest_wait == pytest.approx(995.0)
    offer, out = operator_answers(h)
    assert offer.headers.get("x-centralino-call-id") == CALL_ID
    assert offer.headers.get("x-centralino-callback") == NUMBER
    assert "Mario Rossi" in (offer.headers.get("p-asserted-identity") or "")
    (dial,) = requests(out, "INVITE")
    assert [addr for m, addr in h.sent if m is dial] == [TRUNK]
    assert dial.uri == f"sip:{NUMBER}@{TRUNK[0]}:{TRUNK[1]}"
    assert dial.from_.uri.user == "800228040"
    h.deliver(answer_request(dial, 200, to_tag="cit", body=ANSWER_SDP), TRUNK)
    (answered,) = [o for o in seen if isinstance(o, ac.CallAnswered)]
    assert answered.callback and answered.entered_at == pytest.approx(-990.0)


def test_the_log_goes_on_under_the_same_call_id_and_ends_once() -> None:
    """Same machine, same monotonic clock (a restart without a reboot): the KPI engine
    fed with both processes' logs counts one call, answered, waited from its first
    queue entry; no second `arrived`, never abandoned."""
    old, _ = callback_harness()
    ask_callback(old)
    saved = shut_down(old, now=30.0)
    h, _ = restarted(0.0)
    h.now = 40.0
    callback_store.restore(h.core.b2bua, saved, now=h.now)
    assert [e.data for e in call_events(h)] == [{"callback": "restored"}]
    h.now = 100.0
    _, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    h.now = 105.0
    h.deliver(answer_request(dial, 200, to_tag="cit", body=ANSWER_SDP), TRUNK)
    h.now = 200.0
    h.deliver(citizen_bye(dial), TRUNK)
    kinds = kinds_of(h)
    assert EventKind.ARRIVED not in kinds
    assert kinds.count(EventKind.ENDED) == 1 and kinds[-1] is EventKind.ENDED
    engine = KpiEngine(in_window=lambda service, local: True, outputs=True)
    first = call_events(old)
    engine.load(first)  # the new process replays the month from the log
    for event in call_events(h):
        engine.receive_event(event)
    counted = [o for o in iter(engine.next_event, None) if isinstance(o, CallCounted)]
    (queued, *_) = [e for e in first if e.kind is EventKind.QUEUED]
    assert [(c.outcome, c.wait) for c in counted] == [(Outcome.ANSWERED, 105.0 - queued.mono)]
    assert h.core.active_calls() == 0 and callback.desk(h.core.b2bua).waiting == {}


def test_callbacks_that_cannot_come_back_are_ended_with_a_count_and_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old, _ = callback_harness()
    ask_callback(old)
    (item,) = shut_down(old, now=30.0)
    gone = replace(item, call_id="call-9@pbx", queue="removed-queue")
    h, _ = restarted(0.0)
    h.now = 40.0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="routing.callback_store"):
        lost = callback_store.restore(h.core.b2bua, [item, gone], now=h.now)
        callback_store.end_lost(h.core.b2bua, lost, now=h.now)
    assert [c.call_id for c in lost] == ["call-9@pbx"]
    (record,) = caplog.records
    assert record.getMessage() == (
        "restart: 1 pending callbacks of queue removed-queue lost: "
        "queue removed from the configuration"
    )
    assert NUMBER not in record.getMessage()
    assert [e.data for e in call_events(h) if e.call_id == "call-9@pbx"] == [
        {"reason": "shutdown", "action": "callback"},
        {"by": "switch", "reason": "shutdown"},
    ]
    assert h.core.b2bua.acd.queued_calls(QUEUE) == [CALL_ID]


def test_a_queue_without_callback_any_more_or_a_known_call_id_is_not_restored() -> None:
    old, _ = callback_harness()
    ask_callback(old)
    saved = shut_down(old, now=30.0)
    plain = make_harness()  # the bundled queues offer no callback
    (lost,) = callback_store.restore(plain.core.b2bua, saved, now=40.0)
    assert (lost.call_id, lost.reason) == (CALL_ID, "queue offers no callback any more")
    assert plain.core.b2bua.acd.queued_calls(QUEUE) == []
    h, _ = restarted(0.0)
    assert callback_store.restore(h.core.b2bua, saved, now=40.0) == []
    (again,) = callback_store.restore(h.core.b2bua, saved, now=41.0)
    assert again.reason == "call id already in use"
    assert h.core.b2bua.acd.queued_calls(QUEUE) == [CALL_ID]


def test_unreadable_entries_and_files() -> None:
    old, _ = callback_harness()
    ask_callback(old)
    pending = callback_store.pending_at_shutdown(old.core.b2bua, now=30.0)
    data = callback_store.encode(pending, saved_at=OPEN_HOUR)
    text = data.decode()
    broken = text.replace('"attempts": 0', '"attempts": "none"')
    good, bad = callback_store.decode(broken.encode())
    assert good == [] and [(b.call_id, b.queue, b.reason) for b in bad] == [
        (CALL_ID, QUEUE, "unreadable entry")
    ]
    for garbage in (b"{", b"[]", b'{"version": 2, "callbacks": []}', b'{"version": 1}'):
        with pytest.raises(callback_store.CallbackFileError):
            callback_store.decode(garbage)
    nameless = b'{"version": 1, "callbacks": [{"queue": "q"}, 7]}'
    assert callback_store.decode(nameless) == ([], [])


def test_priority_and_failed_attempts_are_saved() -> None:
    h, _ = callback_harness(attempts=3, retry=60)
    ask_callback(h)
    b2bua = h.core.b2bua
    callback.forget(
        b2bua,
        ac.CallQueued(
            call_id=CALL_ID, queue=QUEUE, priority=2, position=1, entered_at=10.0, at=10.0
        ),
    )
    h.now = 100.0
    offer, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    h.deliver(answer_request(dial, 486, to_tag="cit"), TRUNK)
    (item,) = callback_store.pending_at_shutdown(b2bua, now=110.0)
    assert (item.priority, item.attempts) == (2, 1)
    assert offer.call_id != dial.call_id


def test_an_offer_made_during_the_shutdown_is_withdrawn_and_its_callback_saved() -> None:
    """Between the hang-up of every call and the save, an operator freed by the drain
    may be offered a waiting callback: the offer is withdrawn (CANCEL after the 180, RFC
    3261 §9.1) and the callback saved, with no `ended` in the log."""
    h, _ = callback_harness()
    ask_callback(h)
    h.now = 100.0
    register(h)
    (offer,) = [m for m, _ in h.sent if isinstance(m, Request) and m.method == "INVITE"][-1:]
    h.deliver(answer_request(offer, 180, to_tag="op1"), PHONE)
    assert h.core.active_calls() == 1
    pending = callback_store.pending_at_shutdown(h.core.b2bua, now=101.0)
    assert [c.call_id for c in pending] == [CALL_ID]
    assert [c.call_id for c in requests(h.flush(), "CANCEL")] == [offer.call_id]
    assert h.core.active_calls() == 0
    assert EventKind.ENDED not in kinds_of(h)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1)
NAME = st.text("abcdefghijklmnopqrstuvwxyzàèéìòù ABC", min_size=1, max_size=20).map(str.strip)


@settings(max_examples=60, deadline=None)
@given(
    call_id=TEXT,
    number=st.from_regex(r"\+?[0-9]{3,15}", fullmatch=True),
    display=NAME.filter(bool),
    sub_service=st.none() | TEXT,
    priority=st.integers(-10, 10),
    attempts=st.integers(0, 9),
    entered=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_the_file_gives_back_what_was_saved(
    call_id: str,
    number: str,
    display: str,
    sub_service: str | None,
    priority: int,
    attempts: int,
    entered: datetime,
) -> None:
    item = SavedCallback(
        call_id=call_id, service="td", sub_service=sub_service, queue="q", number=number,
        from_header=f'"{display}" <sip:{number}@10.0.0.1>;tag=x', to_header="<sip:800@h>",
        caller=number, language="it", trunk=("10.0.0.1", 5060), codec="PCMA",
        priority=priority, attempts=attempts, entered=entered,
    )  # fmt: skip
    data = callback_store.encode([item], saved_at=entered)
    assert callback_store.decode(data) == ([item], [])


def test_a_queue_sending_new_callers_elsewhere_when_nobody_is_logged_in_keeps_it() -> None:
    """At start nobody is logged in: a queue with `on_no_operator` would turn a new
    caller away, but a restored callback is a promise already made: it waits, and the
    first operator who logs in is offered it."""
    old, _ = callback_harness()
    ask_callback(old)
    saved = shut_down(old, now=30.0)
    settings = old.settings
    elsewhere = OverflowAction(action=OverflowKind.MESSAGE_AND_HANGUP)
    queues = [
        q.model_copy(update={"callback_digit": "5", "on_no_operator": elsewhere})
        if q.name == QUEUE
        else q
        for q in settings.queues
    ]
    h = make_harness(settings.model_copy(update={"queues": queues}))
    h.now = 40.0
    assert callback_store.restore(h.core.b2bua, saved, now=h.now) == []
    assert h.core.b2bua.acd.queued_calls(QUEUE) == [CALL_ID]
    offer, _ = operator_answers(h)
    assert offer.headers.get("x-centralino-callback") == NUMBER


def test_the_attempts_made_and_a_running_retry_delay_survive_the_restart() -> None:
    """Two attempts at most, 60 s apart. The first fails before the shutdown (at 105 s):
    saved with 1 attempt and a retry at 165 s. After the restart an operator is ready at
    130 s but is not offered it before 165 s; the second failure is the last one."""
    old, _ = callback_harness(attempts=2, retry=60)
    ask_callback(old)
    old.now = 100.0
    _, out = operator_answers(old)
    (dial,) = requests(out, "INVITE")
    old.now = 105.0
    old.deliver(answer_request(dial, 486, to_tag="cit"), TRUNK)
    (item,) = shut_down(old, now=110.0)
    assert item.attempts == 1 and item.retry_at == OPEN_HOUR + timedelta(seconds=165.0)

    h, _ = restarted(0.0)  # the same monotonic clock: no reboot
    h.now = 120.0
    assert callback_store.restore(h.core.b2bua, [item], now=h.now) == []
    h.now = 130.0
    register(h)
    invites = lambda: [m for m, _ in h.sent if isinstance(m, Request) and m.method == "INVITE"]  # noqa: E731
    h.advance(30.0)  # 160 s: the retry is not due
    assert invites() == []
    h.advance(10.0)  # 170 s: offered (and retransmitted, unanswered, over UDP)
    offer = invites()[0]
    assert {m.call_id for m in invites()} == {offer.call_id}
    assert offer.headers.get("x-centralino-callback") == NUMBER
    out = h.deliver(answer_request(offer, 200, to_tag="op1", body=ANSWER_SDP), PHONE)
    (dial,) = requests(out, "INVITE")
    h.deliver(answer_request(dial, 486, to_tag="cit"), TRUNK)
    assert kinds_of(h)[-2:] == [EventKind.OVERFLOWED, EventKind.ENDED]  # 2 of 2: given up
