"""The thin runtime that drives a sans-I/O endpoint from a UDP socket and the loop clock.

As aioquic's `asyncio/protocol.py`: after every input the driver sends what the endpoint
queued (in order, from this one place, so a dialog's messages never overtake each other),
hands its events to the application and re-arms the single timer at `get_timer()`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, cast

log = logging.getLogger(__name__)

Address = tuple[str, int]


class SansIoEndpoint(Protocol):
    """The shape every pure endpoint has (DESIGN.md, the sans-I/O contract)."""

    def receive_datagram(self, data: bytes, addr: Address, *, now: float) -> None: ...

    def handle_timer(self, *, now: float) -> None: ...

    def get_timer(self) -> float | None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...


class Driver(asyncio.DatagramProtocol):
    """Owns one UDP socket and one timer for one endpoint."""

    def __init__(
        self,
        endpoint: SansIoEndpoint,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.endpoint = endpoint
        self.loop = loop
        self.transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport implements DatagramTransport without subclassing it.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = str(addr[0]), int(str(addr[1]))
        self.endpoint.receive_datagram(data, (host, port), now=self.loop.time())
        self.transmit()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction timers report the failure.
        log.debug("udp error: %s", exc)

    def transmit(self) -> None:
        """Send what the endpoint queued and re-arm the timer."""
        if self.transport is not None and not self.transport.is_closing():
            for data, addr in self.endpoint.datagrams_to_send():
                self.transport.sendto(data, addr)
        self._arm(self.endpoint.get_timer())

    def _arm(self, at: float | None) -> None:
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None:
            self._timer = self.loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(now=self.loop.time())
        self.transmit()

    def close(self) -> None:
        """Stop the timer and close the socket."""
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()
