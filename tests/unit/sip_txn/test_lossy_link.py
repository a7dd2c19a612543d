"""Property: over a link that loses and duplicates datagrams, every transaction either
completes or times out cleanly, exactly once, and nothing is left behind (§17)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from txn_link import B, Link, Sent, events, request

from sip.events import (
    AckReceived,
    AckTimedOut,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
)
from sip.header_fields import Headers
from sip.message import Request, Response, make_response


@dataclass
class Outcome:
    finals: list[int] = field(default_factory=list)
    client_timeouts: int = 0
    requests_seen: int = 0
    acks: int = 0
    ack_timeouts: int = 0


def ack_for(response: Response, invite: Request) -> Request:
    headers = Headers.of(
        ("From", invite.headers.get("from") or ""),
        ("To", response.headers.get("to") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} ACK"),
        ("Max-Forwards", "70"),
    )
    return Request("ACK", invite.uri, headers)


class Users:
    """Scripted TUs: B answers 180 then `status`; A ACKs every 2xx it is given."""

    def __init__(self, link: Link, original: Request, status: int) -> None:
        self.link, self.original, self.status, self.out = link, original, status, Outcome()

    def react(self) -> bool:
        acted = False
        for event in events(self.link.b):
            acted = True
            self._on_b(event)
        for event in events(self.link.a):
            acted = True
            self._on_a(event)
        return acted

    def _on_b(self, event: object) -> None:
        now = self.link.now
        if isinstance(event, RequestReceived):
            self.out.requests_seen += 1
            if event.request.method == "INVITE":
                self.link.b.send_response(
                    event.key, make_response(event.request, 180, to_tag="b"), now=now
                )
            self.link.b.send_response(
                event.key, make_response(event.request, self.status, to_tag="b"), now=now
            )
        elif isinstance(event, AckReceived):
            self.out.acks += 1
        elif isinstance(event, AckTimedOut):
            self.out.ack_timeouts += 1

    def _on_a(self, event: object) -> None:
        if isinstance(event, ResponseReceived) and event.response.status >= 200:
            self.out.finals.append(event.response.status)
            if event.key.method == "INVITE" and event.response.status < 300:
                self.link.a.send_request(
                    ack_for(event.response, self.original), B, now=self.link.now
                )
        elif isinstance(event, TransactionTimedOut):
            self.out.client_timeouts += 1


def drive(link: Link, users: Users) -> None:
    for _ in range(10_000):
        link.transfer()
        if users.react():
            continue
        deadline = link.next_timer()
        if deadline is None:
            return
        link.now = deadline
        link.a.handle_timer(now=deadline)
        link.b.handle_timer(now=deadline)
    raise AssertionError("did not settle")


def lossy(seed: int, loss: float, dup: float) -> Link:
    rng = random.Random(seed)
    return Link(drop=lambda s: rng.random() < loss, duplicate=lambda s: rng.random() < dup)


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0.0, 0.7),
    dup=st.floats(0.0, 0.5),
    method=st.sampled_from(["INVITE", "OPTIONS", "BYE"]),
    status=st.sampled_from([200, 486]),
)
def test_transactions_complete_or_time_out_once(
    seed: int, loss: float, dup: float, method: str, status: int
) -> None:
    link = lossy(seed, loss, dup)
    original = request(method)
    link.a.send_request(original, B, now=0.0)
    users = Users(link, original, status)
    drive(link, users)
    out = users.out
    if method == "INVITE" and not out.finals and not out.client_timeouts:
        # A provisional got through, then every final was lost: the server gave up (the
        # 2xx retransmissions of §13.3.1.4, or Timer H for a non-2xx) and the client
        # transaction waits in Proceeding, which has no timer in §17.1.1 (Timer C belongs
        # to the UAC core, which cancels).
        assert out.ack_timeouts == (1 if status == 200 else 0), out
        assert link.a.transaction_count == 1 and link.b.transaction_count == 0
        return
    assert bool(out.finals) + out.client_timeouts == 1, out
    assert set(out.finals) <= {status}
    if not (method == "INVITE" and status == 200):
        # RFC 6026 §7.2: only 2xx retransmissions reach the TU (which must ACK each).
        assert len(out.finals) <= 1
    assert out.requests_seen <= 1
    if out.finals:
        assert out.requests_seen == 1
    if method == "INVITE" and out.finals == [200]:
        assert (out.acks > 0) != (out.ack_timeouts > 0), out
    assert link.a.transaction_count == 0 and link.b.transaction_count == 0
    assert link.a.get_timer() is None and link.b.get_timer() is None


def test_lossless_link_sends_each_message_once() -> None:
    link = lossy(0, 0.0, 0.0)
    original = request("INVITE")
    link.a.send_request(original, B, now=0.0)
    users = Users(link, original, 200)
    drive(link, users)
    lines = [s.line.split(" ")[0] + " " + s.line.split(" ")[1] for s in link.wire]
    assert lines == [
        "INVITE sip:bob@10.0.0.2:5060",
        "SIP/2.0 100",
        "SIP/2.0 180",
        "SIP/2.0 200",
        "ACK sip:bob@10.0.0.2:5060",
    ]
    assert users.out.acks == 1 and link.now == 32.0


def test_sent_record_is_wire_order() -> None:
    sent = Sent(0.0, B, B, b"OPTIONS sip:x SIP/2.0\r\n")
    assert sent.line == "OPTIONS sip:x SIP/2.0"
