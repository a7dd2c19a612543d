"""Runtime counters of the SIP endpoint, exported to Prometheus with the KPI metrics."""

from __future__ import annotations

import logging

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

    def observe(self, event: ep.EndpointEvent) -> None:
        """Log and count one endpoint event."""
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
            log.warning("dropped datagram: %s", event.reason, extra={"src": event.addr})
        elif isinstance(event, ep.RegistrationsChanged):
            self.registrations.set(event.count)
            log.info("registration %s %s", event.user, event.change)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


_KNOWN = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "REFER", "NOTIFY"}
)
