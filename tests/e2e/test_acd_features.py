"""End to end: an operator's real softphone (baresip) dials feature codes; the switch
challenges it with digest, applies the code to the ACD, answers, beeps and hangs up
(routing/feature_codes_glue.py). SIPp cannot be the phone here: it computes the digest
over sip:remote_ip:remote_port, not over the dialed Request-URI (-auth_uri would break
its REGISTER), so the right credentials would never match."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from acd_helpers import (
    Processes,
    events,
    of_kind,
    operator_states,
    processes,
    wait_for,
    wait_registered,
    write_config,
)
from conftest import Switch, need, start_switch, stop_process

pytestmark = pytest.mark.e2e


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    need("baresip")
    need("sipp")
    with processes(tmp_path) as p:
        yield p


def states(switch: Switch, operator: str) -> list[tuple[str, str]]:
    return operator_states(events(switch), operator)


def test_softphone_pauses_and_makes_ready_with_feature_codes(
    tmp_path: Path, procs: Processes
) -> None:
    switch = start_switch(tmp_path, write_config(tmp_path, ring_timeout=5.0))
    try:
        phone = procs.baresip(switch, "1001")
        wait_registered(switch, 1)
        wait_for("1001 logged in", lambda: states(switch, "1001"), 5)
        phone.command("dial", f"sip:*42@{switch.sip}")
        wait_for("1001 paused", lambda: ("paused", "paused") in states(switch, "1001"), 10)
        # The switch hung up after the tone (baresip's own log is block-buffered).
        wait_for("the BYE", lambda: "of 1001: hanging up" in switch.log(), 10)
        # Paused, 1001 is skipped although idle longest: the call goes to 1002.
        procs.phone(switch, "1002", ring_ms=300, talk_ms=500, life_ms=30000)
        wait_registered(switch, 2)
        caller = procs.callers(switch, "caller-wait.xml", 1)
        assert caller.wait(30) == 0, caller.output()[-3000:]
        wait_for("answered", lambda: of_kind(events(switch), "answered"), 5)
        assert [e.operator for e in of_kind(events(switch), "offered")] == ["1002"]
        phone.command("dial", f"sip:*43@{switch.sip}")
        wait_for("1001 ready", lambda: states(switch, "1001")[-1] == ("available", ""), 10)
        assert "feature ready applied for operator 1001" in switch.log()
        wait_for("the second BYE", lambda: switch.log().count("of 1001: hanging up") == 2, 10)
        stop_process(phone.process)  # flushes its log: both calls were answered, then ended
        assert phone.output().count("Call established") == 2
        assert phone.output().count("session closed") == 2
    finally:
        stop_process(switch.process)
