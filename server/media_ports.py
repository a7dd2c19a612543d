"""RTP/RTCP port pairs from a configured range (RFC 3550 §11: RTP on an even port, RTCP on
the next odd one).

Pairs are handed out in FIFO order, so a port just released is the last to be reused: a
stray packet of the previous call (a late retransmission, a peer that has not yet seen
the BYE) is unlikely to reach the next call on the same port. A pair that another
process holds is skipped, and tried again after the rest of the range.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections import deque
from dataclasses import dataclass

__all__ = ["MediaPortsExhaustedError", "PortPair", "PortPool"]

log = logging.getLogger(__name__)

# A second of G.711 at 50 packets/s is about 60 kB of kernel buffer with its overhead;
# 256 kB lets a leg ride out a scheduling hiccup of the event loop without loss.
_SOCKET_BUFFER = 256 * 1024


class MediaPortsExhaustedError(OSError):
    """Every RTP port pair of the range is in use (the call should get 503)."""


@dataclass(slots=True)
class PortPair:
    """Two bound non-blocking UDP sockets: RTP on `port` (even), RTCP on `port + 1`."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class PortPool:
    """Even ports of [port_min, port_max] whose +1 is also in the range."""

    def __init__(self, *, host: str, port_min: int, port_max: int) -> None:
        first = port_min + (port_min % 2)
        if not 0 < first < port_max <= 65535:
            raise ValueError(f"RTP port range {port_min}-{port_max} holds no even/odd pair")
        self.host = host
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()

    @property
    def available(self) -> int:
        return len(self._free)

    def acquire(self) -> PortPair:
        """Bind the next free pair; raises MediaPortsExhaustedError when none can be bound."""
        for _ in range(len(self._free)):
            port = self._free.popleft()
            pair = self._try_bind(port)
            if pair is not None:
                self._used.add(port)
                return pair
            self._free.append(port)
        raise MediaPortsExhaustedError(errno.EADDRINUSE, f"no free RTP port pair on {self.host}")

    def _try_bind(self, port: int) -> PortPair | None:
        try:
            rtp = _bind(self.host, port)
        except OSError as exc:
            log.debug("RTP port %d unavailable: %s", port, exc)
            return None
        try:
            rtcp = _bind(self.host, port + 1)
        except OSError as exc:
            log.debug("RTCP port %d unavailable: %s", port + 1, exc)
            rtp.close()
            return None
        return PortPair(port=port, rtp=rtp, rtcp=rtcp)

    def release(self, pair: PortPair) -> None:
        """Close both sockets and put the pair at the back of the queue."""
        pair.close()
        if pair.port in self._used:
            self._used.discard(pair.port)
            self._free.append(pair.port)
