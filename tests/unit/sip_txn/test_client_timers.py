"""Client transaction timers in virtual time: exact instants (RFC 3261 §17.1)."""

from __future__ import annotations

import pytest
from txn_link import A, B, Link, events, request

from sip.events import RequestReceived, ResponseReceived, TransactionTimedOut
from sip.message import make_response
from sip.timers import TimerConfig


def test_timer_a_doubles_from_t1_and_timer_b_fires_at_32s() -> None:
    link = Link(drop=lambda s: True)
    key = link.a.send_request(request("INVITE"), B, now=0.0)
    link.run_until(100.0)
    assert link.sent(A, "INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert events(link.a) == [TransactionTimedOut(at=32.0, key=key, method="INVITE")]
    assert link.a.transaction_count == 0
    assert link.a.get_timer() is None


def test_timer_e_is_capped_at_t2_and_timer_f_fires_at_32s() -> None:
    link = Link(drop=lambda s: True)
    key = link.a.send_request(request("OPTIONS"), B, now=0.0)
    link.run_until(100.0)
    expected = [0.0, 0.5, 1.5, 3.5, 7.5, *[7.5 + 4.0 * n for n in range(1, 7)]]
    assert link.sent(A, "OPTIONS") == expected
    assert events(link.a) == [TransactionTimedOut(at=32.0, key=key, method="OPTIONS")]


def test_timers_follow_a_configured_t1() -> None:
    link = Link(drop=lambda s: True)
    link.a.config = TimerConfig(t1=0.1, t2=4.0, t4=5.0)
    link.a.send_request(request("INVITE"), B, now=0.0)
    link.run_until(100.0)
    assert link.sent(A, "INVITE") == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert [e.at for e in events(link.a)] == pytest.approx([6.4])


def test_timer_e_fires_every_t2_once_a_provisional_arrived() -> None:
    link = Link(drop=lambda s: s.src == A and s.at > 0)
    link.a.send_request(request("OPTIONS"), B, now=0.0)
    link.transfer()
    (received,) = events(link.b)
    assert isinstance(received, RequestReceived)
    link.b.send_response(received.key, make_response(received.request, 183), now=0.0)
    link.run_until(20.0)
    # Proceeding: E fires every T2 after its pending 0.5 s expiry.
    assert link.sent(A, "OPTIONS") == [0.0, 0.5, 4.5, 8.5, 12.5, 16.5]


def test_invite_retransmissions_stop_on_a_provisional_and_timer_b_no_longer_applies() -> None:
    link = Link()
    link.a.send_request(request("INVITE"), B, now=0.0)
    link.run_until(200.0)
    assert link.sent(A, "INVITE") == [0.0]
    assert link.sent(B, "SIP/2.0 100") == [0.0]
    assert [type(e) for e in events(link.a)] == [ResponseReceived]
    assert link.a.transaction_count == 1  # §17.1.1.2: Proceeding waits for the TU's final
