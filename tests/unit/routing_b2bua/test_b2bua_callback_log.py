"""Whatever happens to its attempts, a callback call's log has one `ended`, its last
event, and the KPI engine never counts it as abandoned (docs/events.md, docs/kpi.md)."""

from __future__ import annotations

from b2bua_harness import PHONE, TRUNK, Harness, answer_request, register
from callback_peers import (
    ANSWER_SDP,
    ask_callback,
    call_events,
    callback_harness,
    kinds_of,
    kpi,
    operator_answers,
    peer_request,
    queue_log,
    requests,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.events import EventKind
from metrics.kpi import CallCounted
from metrics.tally import Outcome
from routing import callback
from sip.message import Message, Request

FAILURES = ("refused", "operator-left", "no-answer")
TALKS = ("citizen-hangs-up", "operator-hangs-up")
RETRY = 10.0


def next_offer(h: Harness, attempt: int) -> tuple[Request, list[Message]]:
    """The operator answers the offer of this attempt (the first one registers)."""
    if attempt == 1:
        return operator_answers(h)
    register(h)  # the test phone refreshes nothing by itself
    h.advance(RETRY + 1)
    offers = [m for m, a in h.sent if isinstance(m, Request) and m.method == "INVITE"]
    offer = [m for m in offers if m.headers.get("x-centralino-callback")][-1]
    tag = f"op{attempt}"
    return offer, h.deliver(answer_request(offer, 200, to_tag=tag, body=ANSWER_SDP), PHONE)


def play(h: Harness, attempt: int, outcome: str) -> None:
    offer, out = next_offer(h, attempt)
    (dial,) = requests(out, "INVITE")
    tag = f"cit{attempt}"
    h.now += 1.0
    if outcome == "refused":
        h.deliver(answer_request(dial, 486, to_tag=tag), TRUNK)
    elif outcome == "no-answer":
        h.deliver(answer_request(dial, 180, to_tag=tag), TRUNK)
        h.advance(callback.RING_TIMEOUT + 1)
    elif outcome == "operator-left":
        bye = peer_request("BYE", offer, tag=f"op{attempt}", source=PHONE, cseq=1)
        h.deliver(bye, PHONE)
    else:
        h.deliver(answer_request(dial, 200, to_tag=tag, body=ANSWER_SDP), TRUNK)
        h.now += 30.0
        if outcome == "citizen-hangs-up":
            h.deliver(peer_request("BYE", dial, tag=tag, source=TRUNK, cseq=1), TRUNK)
        else:
            h.deliver(peer_request("BYE", offer, tag=f"op{attempt}", source=PHONE, cseq=1), PHONE)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    attempts=st.integers(min_value=1, max_value=3),
    failures=st.lists(st.sampled_from(FAILURES), max_size=3),
    talk=st.sampled_from((*TALKS, None)),
)
def test_one_end_last_and_never_abandoned(
    attempts: int, failures: list[str], talk: str | None
) -> None:
    h, _ = callback_harness(attempts=attempts, retry=RETRY)
    ask_callback(h)
    h.now = 100.0
    plan = [*failures[:attempts], *([talk] if talk else [])][:attempts]
    for attempt, outcome in enumerate(plan, 1):
        play(h, attempt, outcome)
    kinds = kinds_of(h)
    answered = bool(plan) and plan[-1] in TALKS
    given_up = len(plan) == attempts and not answered
    assert kinds.count(EventKind.ENDED) == (1 if answered or given_up else 0)
    if EventKind.ENDED in kinds:
        assert kinds[-1] is EventKind.ENDED
    engine = kpi(h)
    outcomes = [o.outcome for o in iter(engine.next_event, None) if isinstance(o, CallCounted)]
    expected = [Outcome.ANSWERED] if answered else [Outcome.OVERFLOWED] if given_up else []
    assert outcomes == expected
    assert "ABANDON" not in queue_log(h)
    if answered:
        (ended,) = [e for e in call_events(h) if e.kind is EventKind.ENDED]
        assert ended.data == {"by": "caller" if plan[-1] == TALKS[0] else "operator"}
    assert h.core.active_calls() == 0
