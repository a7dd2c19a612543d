"""Runtime counters of the SIP endpoint, exported to Prometheus with the KPI metrics.

Dropped datagrams are counted exactly but logged sparingly (`DropLogLimiter`): a flood
of junk, or of spoofed sources, must not fill the log.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from sip import endpoint as ep

log = logging.getLogger("sip")


class Telemetry:
    """Turns endpoint events into logs and Prometheus series (bounded labels only)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "centralino_sip_requests_total",
            "SIP requests received, by method and final status class",
            ["method", "status_class"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "centralino_sip_dropped_total",
            "Datagrams dropped because no response could be formed",
            registry=self.registry,
        )
        # labels() costs a lock and a hash per call: keep the children at hand.
        self._children: dict[tuple[str, int], Counter] = {}
        self.registrations = Gauge(
            "centralino_sip_registrations",
            "Registered operator contacts",
            registry=self.registry,
        )
        self.drop_log = DropLogLimiter()

    def observe(self, event: ep.EndpointEvent) -> None:
        """Log and count one endpoint event."""
        self._log_suppressed(now=event.at)
        if isinstance(event, ep.RequestAnswered):
            key = (event.method if event.method in _KNOWN else "other", event.status // 100)
            counter = self._children.get(key)
            if counter is None:
                counter = self._children[key] = self.requests.labels(key[0], f"{key[1]}xx")
            counter.inc()
            if event.status >= 400:
                log.info(
                    "answered %s %s %s",
                    event.method,
                    event.status,
                    event.reason,
                    extra={"src": f"{event.addr[0]}:{event.addr[1]}"},
                )
        elif isinstance(event, ep.DatagramDropped):
            self.dropped.inc()
            if self.drop_log.admit(str(event.addr[0]), now=event.at):
                log.warning("dropped datagram: %s", event.reason, extra={"src": event.addr})
        elif isinstance(event, ep.RegistrationsChanged):
            self.registrations.set(event.count)
            log.info("registration %s %s", event.user, event.change)

    def render(self) -> bytes:
        """The Prometheus text exposition (a scrape also logs a summary that is due)."""
        self._log_suppressed(now=time.monotonic())
        return generate_latest(self.registry)

    def _log_suppressed(self, *, now: float) -> None:
        summary = self.drop_log.summary(now=now)
        if summary is not None:
            log.warning(
                "%d more dropped datagrams from %s%d sources suppressed",
                summary.datagrams,
                "more than " if summary.more_sources else "",
                summary.sources,
            )


_KNOWN = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "REFER", "NOTIFY"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DropsSuppressed:
    """What a window's summary line reports: drops not logged one by one."""

    datagrams: int
    sources: int
    more_sources: bool = False
    """More distinct sources than the limiter counts (`sources` is then a lower bound)."""


class DropLogLimiter:
    """Decides which dropped datagrams are logged: the first from each source address
    per `window` seconds, and at most `max_sources` of them per window whatever the
    number of sources; the rest are counted for one summary per window.

    Pure (time is the `now` argument) and bounded: it remembers at most `max_sources`
    logged sources and counts at most `max_counted` distinct suppressed ones.
    """

    def __init__(
        self, *, window: float = 60.0, max_sources: int = 20, max_counted: int = 1024
    ) -> None:
        self.window = window
        self.max_sources = max_sources
        self.max_counted = max_counted
        self._logged: OrderedDict[str, float] = OrderedDict()  # source -> when, oldest first
        self._suppressed = 0
        self._sources: set[str] = set()
        self._more_sources = False
        self._since: float | None = None  # the first suppressed drop of this summary

    def admit(self, source: str, *, now: float) -> bool:
        """True when this drop from `source` is to be logged; else it is counted."""
        self._forget(now=now)
        if source not in self._logged and len(self._logged) < self.max_sources:
            self._logged[source] = now
            return True
        self._count(source, now=now)
        return False

    def summary(self, *, now: float) -> DropsSuppressed | None:
        """The suppressed drops, once `window` seconds after the first of them; else None."""
        if self._since is None or now - self._since < self.window:
            return None
        done = DropsSuppressed(
            datagrams=self._suppressed, sources=len(self._sources), more_sources=self._more_sources
        )
        self._suppressed, self._since, self._more_sources = 0, None, False
        self._sources.clear()
        return done

    def _forget(self, *, now: float) -> None:
        """Drop the sources logged a whole window ago: they may be logged again."""
        while self._logged:
            source, at = next(iter(self._logged.items()))
            if now - at < self.window:
                return
            del self._logged[source]

    def _count(self, source: str, *, now: float) -> None:
        self._suppressed += 1
        if self._since is None:
            self._since = now
        if len(self._sources) < self.max_counted:
            self._sources.add(source)
        elif source not in self._sources:
            self._more_sources = True
