"""Telemetry of dropped datagrams: the counter is exact, the log is rate-limited."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from server.telemetry import Telemetry
from sip.endpoint import DatagramDropped, RequestAnswered


def dropped_total(telemetry: Telemetry) -> float:
    value = telemetry.registry.get_sample_value("centralino_sip_dropped_total")
    assert value is not None
    return value


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_flood_is_counted_exactly_and_logged_once_per_source_then_summarised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sip")
    telemetry = Telemetry(CollectorRegistry())
    for n in range(1_000):
        source = ("198.51.100.7", 5060) if n % 2 else ("198.51.100.8", 40000 + n)
        telemetry.observe(DatagramDropped(at=100.0 + n * 0.01, reason="junk", addr=source))
    assert dropped_total(telemetry) == 1_000
    assert warnings(caplog) == ["dropped datagram: junk"] * 2
    # The next event a window after the first suppressed drop brings the summary.
    answered = RequestAnswered(
        at=161.0, method="OPTIONS", status=200, reason="OK", addr=("192.0.2.1", 5060)
    )
    telemetry.observe(answered)
    assert warnings(caplog)[2:] == ["998 more dropped datagrams from 2 sources suppressed"]
    telemetry.observe(DatagramDropped(at=161.5, reason="junk", addr=("198.51.100.7", 1)))
    assert warnings(caplog)[3:] == ["dropped datagram: junk"]
    assert dropped_total(telemetry) == 1_001
