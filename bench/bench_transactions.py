"""Transaction-layer throughput: full INVITE/100/200/ACK/BYE/200 cycles between two
TransactionLayers wired in memory (no sockets), with dialogs on both sides.

Run: python bench/bench_transactions.py [--calls 3000]

Printed next to a reference measured in the same run: parsing, validating and
serializing the same six messages alone, which is the floor any SIP stack pays; the
difference is the cost of the transaction and dialog machinery. Process CPU time is
measured (the machine is shared). Virtual time advances 1 ms per call, so the
layers carry the realistic load of transactions lingering in Accepted/Completed.
"""

from __future__ import annotations

import argparse
import time

from sip.dialog import Dialog, DialogSet
from sip.events import RequestReceived, ResponseReceived
from sip.header_fields import Headers
from sip.ids import CounterIds
from sip.message import Message, Request, make_response
from sip.parser import parse_message, validate_request, validate_response
from sip.transaction import Addr
from sip.transaction_layer import TransactionLayer

ALICE: Addr = ("10.0.0.1", 5060)
BOB: Addr = ("10.0.0.2", 5060)


class Pair:
    """Alice calls Bob; Bob answers and Alice hangs up."""

    def __init__(self) -> None:
        self.ids = CounterIds("x")
        self.alice = TransactionLayer(local_host=ALICE[0], local_port=ALICE[1], ids=CounterIds("a"))
        self.bob = TransactionLayer(local_host=BOB[0], local_port=BOB[1], ids=CounterIds("b"))
        self.alice_dialogs = DialogSet(fraction=lambda: 0.5)
        self.bob_dialogs = DialogSet(fraction=lambda: 0.5)
        self.wire: list[bytes] = []

    def transfer(self, now: float) -> None:
        for data, _ in self.alice.datagrams_to_send():
            self.wire.append(data)
            self.bob.receive_datagram(data, ALICE, now=now)
        for data, _ in self.bob.datagrams_to_send():
            self.wire.append(data)
            self.alice.receive_datagram(data, BOB, now=now)

    def invite(self) -> Request:
        headers = Headers.of(
            ("Max-Forwards", "70"),
            ("From", f"<sip:alice@{ALICE[0]}>;tag={self.ids.tag()}"),
            ("To", f"<sip:bob@{BOB[0]}>"),
            ("Call-ID", self.ids.call_id()),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:alice@{ALICE[0]}:{ALICE[1]}>"),
            ("Content-Type", "application/sdp"),
        )
        return Request("INVITE", f"sip:bob@{BOB[0]}", headers, SDP)

    def call(self, now: float) -> None:
        request = self.invite()
        self.alice.send_request(request, BOB, now=now)
        self.transfer(now)
        self._answer(now)
        self.transfer(now)
        uac = self._accepted(request, now)
        self.alice.send_request(uac.create_ack(1), BOB, now=now)
        bye = uac.create_request("BYE")
        self.alice.send_request(bye, BOB, now=now)
        self.transfer(now)
        self._answer(now)
        self.transfer(now)
        self._drain_alice(bye, now)
        self.alice.handle_timer(now=now)
        self.bob.handle_timer(now=now)

    def _answer(self, now: float) -> None:
        while (event := self.bob.next_event()) is not None:
            if isinstance(event, RequestReceived):
                found = self.bob_dialogs.receive_request(event.request)
                tag = None if isinstance(found, Dialog) else self.ids.tag()
                contact = (("Contact", f"<sip:bob@{BOB[0]}:{BOB[1]}>"),)
                response = make_response(event.request, 200, to_tag=tag, extra=contact)
                self.bob.send_response(event.key, response, now=now)
                self.bob_dialogs.response_sent(event.request, response)
            else:
                self.bob_dialogs.receive_request(event.request)  # type: ignore[union-attr]

    def _accepted(self, request: Request, now: float) -> Dialog:
        dialog = None
        while (event := self.alice.next_event()) is not None:
            if isinstance(event, ResponseReceived) and event.response.status == 200:
                dialog = self.alice_dialogs.receive_response(request, event.response, now=now)
        assert dialog is not None
        return dialog

    def _drain_alice(self, bye: Request, now: float) -> None:
        while (event := self.alice.next_event()) is not None:
            if isinstance(event, ResponseReceived):
                self.alice_dialogs.receive_response(bye, event.response, now=now)


SDP = (
    b"v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def run_calls(calls: int) -> tuple[float, list[bytes]]:
    pair = Pair()
    start = time.process_time()
    for n in range(calls):
        pair.call(now=n * 0.001)
    elapsed = time.process_time() - start
    assert len(pair.alice_dialogs) == 0 and len(pair.bob_dialogs) == 0
    return elapsed, pair.wire[:6]


def run_reference(messages: list[bytes], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        for data in messages:
            message: Message = parse_message(data)
            if isinstance(message, Request):
                validate_request(message)
            else:
                validate_response(message)
            message.to_bytes()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    best = min(run_calls(args.calls)[0] for _ in range(3))
    _, sample = run_calls(10)
    reference = min(run_reference(sample, args.calls) for _ in range(3))
    per_call_ms = best / args.calls * 1000
    print(f"full call cycles (INVITE/100/200/ACK/BYE/200): {args.calls / best:,.0f} calls/s")
    print(f"  transactions (INVITE + BYE):                  {2 * args.calls / best:,.0f} /s")
    print(f"  CPU per call:                                 {per_call_ms:.3f} ms")
    print(f"reference, parse+validate+serialize the 6 msgs: {args.calls / reference:,.0f} calls/s")
    print(f"  machinery overhead over the reference:        {best / reference:.2f}x")


if __name__ == "__main__":
    main()
