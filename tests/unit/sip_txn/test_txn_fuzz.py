"""receive_datagram never raises, whatever arrives (RFC 3261 §18.3, issue 2)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from txn_link import A, events, request

from sip.events import MalformedRequestAnswered, MessageDropped, RequestReceived
from sip.ids import CounterIds
from sip.transaction_layer import TransactionLayer

VALID = (
    request("INVITE")
    .to_bytes()
    .replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKf;rport\r\nMax-Forwards"
    )
)


def fresh() -> TransactionLayer:
    return TransactionLayer(local_host="10.0.0.2", local_port=5060, ids=CounterIds())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    ep = fresh()
    ep.receive_datagram(data, A, now=0.0)
    assert all(
        isinstance(e, MessageDropped | MalformedRequestAnswered | RequestReceived)
        for e in events(ep)
    )


@settings(max_examples=400, deadline=None)
@given(
    cuts=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.binary(max_size=4)), max_size=4),
    truncate=st.integers(1, len(VALID)),
)
def test_mutated_invites_never_raise_and_always_leave_a_trace(
    cuts: list[tuple[int, bytes]], truncate: int
) -> None:
    data = VALID
    for where, what in cuts:
        data = data[:where] + what + data[where + 1 :]
    ep = fresh()
    ep.receive_datagram(data[:truncate], A, now=0.0)
    ep.handle_timer(now=100.0)
    traced = events(ep)
    assert len(traced) >= 1  # answered, passed up or dropped: never silent
