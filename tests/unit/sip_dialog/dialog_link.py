"""Two endpoints (transaction layer + dialog set) on an in-memory link, virtual time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sip.dialog import DialogSet
from sip.events import Event
from sip.header_fields import Headers
from sip.ids import CounterIds
from sip.message import Request
from sip.transaction import Addr
from sip.transaction_layer import TransactionLayer

ALICE: Addr = ("10.0.0.1", 5060)
BOB: Addr = ("10.0.0.2", 5060)


def fractions(*values: float) -> Iterator[float]:
    """An injected random source that replays `values` (then 0.5 forever)."""
    yield from values
    while True:
        yield 0.5


@dataclass
class Endpoint:
    addr: Addr
    name: str
    draws: Iterator[float] = field(default_factory=fractions)

    def __post_init__(self) -> None:
        self.ids = CounterIds(self.name)
        self.layer = TransactionLayer(
            local_host=self.addr[0], local_port=self.addr[1], ids=self.ids
        )
        self.dialogs = DialogSet(fraction=lambda: next(self.draws))

    def events(self) -> list[Event]:
        out: list[Event] = []
        while (event := self.layer.next_event()) is not None:
            out.append(event)
        return out


def transfer(*eps: Endpoint, now: float = 0.0) -> None:
    """Deliver datagrams between the endpoints until none are queued."""
    by_addr = {ep.addr: ep for ep in eps}
    moved = True
    while moved:
        moved = False
        for ep in eps:
            for data, dst in ep.layer.datagrams_to_send():
                moved = True
                if dst in by_addr:
                    by_addr[dst].layer.receive_datagram(data, ep.addr, now=now)


def invite(caller: Endpoint, callee: Endpoint, *, record_route: tuple[str, ...] = ()) -> Request:
    headers = Headers.of(
        *(("Record-Route", rr) for rr in record_route),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{caller.name}@{caller.addr[0]}>;tag={caller.ids.tag()}"),
        ("To", f"<sip:{callee.name}@{callee.addr[0]}>"),
        ("Call-ID", caller.ids.call_id()),
        ("CSeq", "1 INVITE"),
        ("Contact", f"<sip:{caller.name}@{caller.addr[0]}:{caller.addr[1]}>"),
    )
    return Request("INVITE", f"sip:{callee.name}@{callee.addr[0]}", headers)
