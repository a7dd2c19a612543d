"""Transaction timer values (RFC 3261 §17 and Table 4, RFC 6026 §8.4 and §8.7).

Every timer derives from T1, T2 and T4, so a deployment (or a test) changes three
numbers and the whole table follows. Only unreliable transports (UDP) are served: the
values below are the UDP column of RFC 3261 Table 4.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (maximum non-INVITE retransmit interval), T4 (network lifetime)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d_minimum: float = 32.0
    """§17.1.1.2: Timer D is at least 32 s for unreliable transports."""

    @property
    def a(self) -> float:
        """Timer A: first INVITE retransmission interval, doubled each time (§17.1.1.2)."""
        return self.t1

    @property
    def b(self) -> float:
        """Timer B: INVITE client transaction timeout, 64*T1 (§17.1.1.2)."""
        return 64 * self.t1

    @property
    def d(self) -> float:
        """Timer D: wait for response retransmissions in Completed, >= 32 s (§17.1.1.2)."""
        return max(self.d_minimum, 64 * self.t1)

    @property
    def e(self) -> float:
        """Timer E: first non-INVITE retransmission interval, capped at T2 (§17.1.2.2)."""
        return self.t1

    @property
    def f(self) -> float:
        """Timer F: non-INVITE client transaction timeout, 64*T1 (§17.1.2.2)."""
        return 64 * self.t1

    @property
    def g(self) -> float:
        """Timer G: first INVITE final response retransmission interval (§17.2.1)."""
        return self.t1

    @property
    def h(self) -> float:
        """Timer H: wait for the ACK of a non-2xx final response, 64*T1 (§17.2.1)."""
        return 64 * self.t1

    @property
    def i(self) -> float:
        """Timer I: absorb ACK retransmissions in Confirmed, T4 (§17.2.1)."""
        return self.t4

    @property
    def j(self) -> float:
        """Timer J: absorb non-INVITE request retransmissions, 64*T1 (§17.2.2)."""
        return 64 * self.t1

    @property
    def k(self) -> float:
        """Timer K: absorb non-INVITE response retransmissions, T4 (§17.1.2.2)."""
        return self.t4

    @property
    def l(self) -> float:  # noqa: E743 - the RFC's name for the timer
        """Timer L: INVITE server transaction in Accepted, 64*T1 (RFC 6026 §8.7)."""
        return 64 * self.t1

    @property
    def m(self) -> float:
        """Timer M: INVITE client transaction in Accepted, 64*T1 (RFC 6026 §8.4)."""
        return 64 * self.t1

    def doubled(self, interval: float, *, cap: float | None = None) -> float:
        """The next retransmission interval: doubled, and capped at `cap` if given."""
        nxt = 2 * interval
        return nxt if cap is None else min(nxt, cap)
