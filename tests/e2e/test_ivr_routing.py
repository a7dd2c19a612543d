"""Dial plan, IVR and service calendar of a running `centralino serve` (issue 4).

Trunk calls to every number of config/trentino.yaml (national, +39 and 0039 spellings),
menu digits sent as RFC 2833 from SIPp's captures, land in the right queue (a `queued`
event, and `centralino_queue_calls` on /metrics); an unknown number gets 404; invalid
digits and silence follow the menu's retry rules; out of hours callers hear the opening
hours and are hung up (an `after_hours` event); an override opens a closed service at
once. The calendar decides by the real clock, so each switch runs on a copy of
config/trentino.yaml whose calendars are open (or closed) right now.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from caller import (
    PROMPTS,
    ROME,
    TrunkCall,
    prompt_seconds,
    read_events,
    trentino_config,
    wait_event,
)
from conftest import Switch, need, run_sipp, start_switch, stop_process

from media import g711
from media.wav import read_wav

pytestmark = pytest.mark.e2e

SIPP_PCAPS = Path("/usr/share/sip-tester")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Exception in callback")
MENU = {
    "1": "mepat",
    "2": "cps",
    "3": "trentino-in-rete",
    "4": "geo-cartografico",
    "5": "trentino-accessibile",
    "6": "banda-ultra-larga",
}
# Dialed number (national) -> (service, queue when no menu is involved).
NUMBERS = {
    "800228040": ("trentino-digitale", None),
    "800264760": ("agenzia-lavoro", "agenzia-lavoro"),
    "0461800133": ("uru", "uru"),
    "0461499335": ("io-partecipo", "io-partecipo"),
}
WELCOME = {
    "trentino-digitale": "welcome-trentino-digitale",
    "agenzia-lavoro": "welcome-agenzia-lavoro",
    "uru": "welcome-uru",
    "io-partecipo": "welcome-io-partecipo",
}
QUEUE_GAUGE = re.compile(r'^centralino_queue_calls\{queue="([^"]+)"\} ([0-9.e+]+)$', re.M)


def spellings(national: str) -> list[str]:
    """The ways the trunk may send a number: national, +39 and 0039 (dialplan.py)."""
    return [national, f"+39{national}", f"0039{national}"]


def pcap(digit: str) -> Path:
    return SIPP_PCAPS / f"dtmf_2833_{digit}.pcap"


def stop_checked(switch: Switch) -> None:
    alive = switch.process.poll() is None
    code = stop_process(switch.process)
    assert alive, f"the switch died (exit {code}):\n{switch.log()[-4000:]}"
    assert not TRACEBACK.search(switch.log()), switch.log()[-4000:]


def switch_with(tmp: Path, **config: Any) -> Switch:
    return start_switch(tmp, trentino_config(tmp, **config))


@pytest.fixture(scope="module")
def open_sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    switch = switch_with(tmp_path_factory.mktemp("open"), open_now=True)
    yield switch
    stop_checked(switch)


@pytest.fixture(scope="module")
def closed_sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    switch = switch_with(tmp_path_factory.mktemp("closed"), open_now=False)
    yield switch
    stop_checked(switch)


def target(switch: Switch) -> tuple[str, int]:
    return ("127.0.0.1", switch.sip_port)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def queue_gauges(switch: Switch) -> dict[str, float]:
    status, body = switch.http_get("/metrics")
    assert status == 200
    return {q: float(v) for q, v in QUEUE_GAUGE.findall(body.decode())}


def call_to_queue(switch: Switch, dialed: str, digit: str | None) -> TrunkCall:
    """A call that waits for the welcome to end, presses `digit` if given, and stays
    on the line until it is queued (or the bounded wait ends)."""
    need("sipp")  # the digit captures come with SIPp
    call = TrunkCall(target(switch), dialed)
    answer = call.invite()
    assert answer.status == 200, answer.first_line
    if digit is not None:
        events = wait_event(switch.data_dir, call.call_id, "welcome_finished", timeout=20)
        assert "welcome_finished" in kinds(events), events
        assert call.send_digit_pcap(pcap(digit)) == digit
    wait_event(switch.data_dir, call.call_id, "queued", timeout=30)
    return call


# -- routing ------------------------------------------------------------------------------


def routing_cases() -> list[tuple[str, str | None, str, str]]:
    """(dialed, menu digit, service, queue): every menu option, every number, every
    spelling."""
    cases: list[tuple[str, str | None, str, str]] = [
        ("800228040", digit, "trentino-digitale", queue) for digit, queue in MENU.items()
    ]
    cases += [("+39800228040", "2", "trentino-digitale", "cps")]
    cases += [("0039800228040", "5", "trentino-digitale", "trentino-accessibile")]
    for national, (service, queue) in NUMBERS.items():
        if queue is not None:
            cases += [(dialed, None, service, queue) for dialed in spellings(national)]
    return cases


def test_every_number_and_menu_choice_lands_in_its_queue(open_sw: Switch) -> None:
    cases = routing_cases()
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = [pool.submit(call_to_queue, open_sw, d, digit) for d, digit, _, _ in cases]
        calls = [f.result(timeout=60) for f in futures]
    try:
        expected: dict[str, int] = {}
        for call, (dialed, digit, service, queue) in zip(calls, cases, strict=True):
            events = read_events(open_sw.data_dir, call.call_id)
            queued = [e for e in events if e["kind"] == "queued"]
            assert len(queued) == 1, (dialed, digit, kinds(events))
            assert (queued[0]["service"], queued[0]["queue"]) == (service, queue), dialed
            assert "after_hours" not in kinds(events)
            if digit is not None:
                choice = next(e for e in events if e["kind"] == "choice")
                assert choice["data"] == {"digit": digit, "node": "menu", "target": queue}
            expected[queue] = expected.get(queue, 0) + 1
        gauges = queue_gauges(open_sw)
        assert {q: gauges.get(q) for q in expected} == expected
    finally:
        for call in calls:
            call.close()
    deadline = time.monotonic() + 5
    while any(queue_gauges(open_sw).get(q) for q in expected) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(queue_gauges(open_sw).get(q) for q in expected), "callers who hung up left"
    time.sleep(0.6)
    for call in calls:
        events = read_events(open_sw.data_dir, call.call_id)
        assert kinds(events)[-2:] in (["ended", "abandoned"], ["abandoned", "ended"]), kinds(events)


def sipp_call(switch: Switch, dialed: str, digit: str, tag: str) -> tuple[int, str]:
    """trunk-call.xml to `dialed`: the digit after the welcome, on the line until the
    hold prompt has ended and the call is queued."""
    service, _ = NUMBERS[dialed]
    wait = prompt_seconds(WELCOME[service], "for-english")
    hold = prompt_seconds("please-hold")
    args = ["-m", "1", "-s", dialed, "-key", "digit_pcap", str(pcap(digit))]
    args += ["-key", "welcome_ms", str(int(wait * 1000) + 800)]
    args += ["-key", "hold_ms", str(int(hold * 1000) + 1500)]
    args += ["-cid_str", f"sipp-{tag}-%u-%p@%s"]
    done = run_sipp("trunk-call.xml", switch.sip, *args, timeout=40)
    return done.returncode, done.stdout.decode(errors="replace")[-3000:]


def test_sipp_trunk_calls_to_every_number(open_sw: Switch) -> None:
    need("sipp")
    cases = [("800228040", "4", "geo-cartografico")]
    cases += [(number, "1", queue) for number, (_, queue) in NUMBERS.items() if queue]
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        runs = [
            pool.submit(sipp_call, open_sw, d, digit, f"q{i}")
            for i, (d, digit, _) in enumerate(cases)
        ]
        results = [run.result(timeout=70) for run in runs]
    time.sleep(0.7)  # the event log commits every 0.5 s
    logged = read_events(open_sw.data_dir)
    for i, ((code, out), (dialed, _, queue)) in enumerate(zip(results, cases, strict=True)):
        assert code == 0, (dialed, out)
        ours = [e for e in logged if e["call_id"].startswith(f"sipp-q{i}-")]
        queued = [e["queue"] for e in ours if e["kind"] == "queued"]
        assert queued == [queue], (dialed, kinds(ours))


@pytest.mark.parametrize("dialed", ["800999999", "+39800999999", "0461000000"])
def test_unknown_number_gets_404(open_sw: Switch, dialed: str) -> None:
    with TrunkCall(target(open_sw), dialed) as call:
        assert call.invite().status == 404
    time.sleep(0.6)
    assert read_events(open_sw.data_dir, call.call_id) == []


# -- menu retry rules ---------------------------------------------------------------------


def log_lines_for(switch: Switch, call_id: str) -> list[str]:
    return [line for line in switch.log().splitlines() if call_id in line]


def test_invalid_digits_are_retried_then_the_call_is_hung_up(open_sw: Switch) -> None:
    """Menu retries: 2 (config/trentino.yaml); the third invalid digit plays
    too-many-attempts and goodbye, then the switch hangs up."""
    need("sipp")
    with TrunkCall(target(open_sw), "800228040") as call:
        assert call.invite().status == 200
        events = wait_event(open_sw.data_dir, call.call_id, "welcome_finished", timeout=20)
        assert "welcome_finished" in kinds(events)
        for digit in "78":  # the menu (and invalid-choice) prompts allow barge-in
            call.send_digit_pcap(pcap(digit))
            time.sleep(0.6)
            assert call.bye_at is None, "hung up before the retries ran out"
        call.send_digit_pcap(pcap("0"))
        last_digit = time.monotonic()
        goodbye = prompt_seconds("too-many-attempts", "goodbye")
        assert call.wait_hung_up(goodbye + 8), "no BYE after the last retry"
        assert call.bye_at is not None
        assert call.bye_at - last_digit > goodbye - 0.5, "hung up before the goodbye played"
    time.sleep(0.6)
    events = read_events(open_sw.data_dir, call.call_id)
    digits = [(e["data"]["digit"], e["data"]["node"]) for e in events if e["kind"] == "digit"]
    assert digits == [("7", "menu"), ("8", "menu"), ("0", "menu")]
    assert not {"choice", "queued"} & set(kinds(events))
    lines = log_lines_for(open_sw, call.call_id)
    retries = [line for line in lines if "invalid at menu" in line]
    assert [int(re.findall(r"attempt (\d+)", line)[0]) for line in retries] == [1, 2, 3]
    assert "IVR: no_choice" in lines[-1], lines


def test_silence_is_retried_then_the_call_is_hung_up(tmp_path: Path) -> None:
    """Same retry rules, menu timeout and prompt shortened (the real menu prompt lasts
    20 s): the menu is offered 1 + retries times, each followed by `timeout` s of
    silence, with no-input before each retry; then too-many-attempts, goodbye, BYE."""
    menu = {"prompts": ["beep"], "timeout": 2, "retries": 2}
    switch = switch_with(tmp_path, open_now=True, menu=menu)
    try:
        with TrunkCall(target(switch), "800228040") as call:
            assert call.invite().status == 200
            welcome = prompt_seconds("welcome-trentino-digitale", "for-english")
            offers = 3 * (prompt_seconds("beep") + 2) + 2 * prompt_seconds("no-input")
            expected = welcome + offers + prompt_seconds("too-many-attempts", "goodbye")
            assert call.wait_hung_up(expected + 10), "no BYE after the retries"
            assert call.bye_at is not None and call.answered_at is not None
            took = call.bye_at - call.answered_at
            assert expected - 1 < took < expected + 6, (took, expected)
        time.sleep(0.6)
        events = read_events(switch.data_dir, call.call_id)
        assert not {"digit", "choice", "queued"} & set(kinds(events))
        lines = log_lines_for(switch, call.call_id)
        retries = [line for line in lines if "timeout at menu" in line]
        assert [int(re.findall(r"attempt (\d+)", line)[0]) for line in retries] == [1, 2, 3]
        assert "IVR: no_choice" in lines[-1], lines
    finally:
        stop_checked(switch)


# -- the calendar -------------------------------------------------------------------------


def closed_call(switch: Switch, dialed: str) -> tuple[TrunkCall, float]:
    """A call out of hours, held until the switch hangs up; returns it and the seconds
    of prompts it should have heard before the BYE."""
    service, _ = NUMBERS[dialed]
    heard = prompt_seconds(WELCOME[service], "for-english", "opening-hours", "goodbye")
    call = TrunkCall(target(switch), dialed)
    assert call.invite().status == 200
    call.wait_hung_up(heard + 10)
    return call, heard


def voicemail_call(switch: Switch) -> tuple[TrunkCall, float, int]:
    """Agenzia del Lavoro out of hours: the hours, then the voicemail prompts; the caller
    speaks for 3 s after the beep and hangs up. Returns the call, the seconds of prompts
    and the packets heard by the end of the beep."""
    prompts = ("welcome-agenzia-lavoro", "for-english", "opening-hours", "voicemail-intro")
    heard = prompt_seconds(*prompts, "beep")
    call = TrunkCall(target(switch), "800264760", codecs=["PCMU"])
    assert call.invite().status == 200
    time.sleep(heard + 0.5)
    packets = len(call.rtp.packets())
    assert call.bye_at is None, "the caller may leave a message"
    speech = read_wav((PROMPTS / "it" / "welcome-uru.wav").read_bytes())
    frames = [g711.linear_to_ulaw(speech[i : i + 320]) for i in range(0, 150 * 320, 320)]
    call.send_audio(0, frames)
    time.sleep(0.3)
    assert call.hang_up() == 200
    return call, heard, packets


def test_out_of_hours_callers_hear_the_hours_and_are_hung_up(closed_sw: Switch) -> None:
    """Every service out of hours: welcome, opening hours, goodbye and BYE; Agenzia del
    Lavoro offers its voicemail instead of hanging up."""
    dialed = ["800228040", "0461800133", "0461499335"]
    with ThreadPoolExecutor(max_workers=len(dialed) + 1) as pool:
        voicemail = pool.submit(voicemail_call, closed_sw)
        results = list(pool.map(lambda d: closed_call(closed_sw, d), dialed))
        agenzia, agenzia_heard, agenzia_packets = voicemail.result(timeout=60)
    time.sleep(0.6)
    for number, (call, heard) in zip(dialed, results, strict=True):
        call.close()
        assert call.bye_at is not None and call.answered_at is not None, number
        took = call.bye_at - call.answered_at
        assert heard - 0.5 < took < heard + 5, (number, took, heard)
        packets = len(call.rtp.packets())
        assert abs(packets - heard * 50) < 0.05 * heard * 50, (number, packets, heard)
        events = read_events(closed_sw.data_dir, call.call_id)
        after = [e for e in events if e["kind"] == "after_hours"]
        assert [e["data"] for e in after] == [{"reason": "after_hours"}], number
        assert after[0]["service"] == NUMBERS[number][0]
        assert not {"queued", "digit", "choice"} & set(kinds(events)), number
        assert "IVR: closed" in log_lines_for(closed_sw, call.call_id)[-1]
    agenzia.close()
    events = read_events(closed_sw.data_dir, agenzia.call_id)
    assert [e["data"] for e in events if e["kind"] == "after_hours"] == [{"reason": "after_hours"}]
    assert "queued" not in kinds(events)
    tolerance = 0.05 * agenzia_heard * 50
    assert abs(agenzia_packets - agenzia_heard * 50) < tolerance, (agenzia_packets, agenzia_heard)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", agenzia.call_id)
    recorded = list((closed_sw.data_dir / "voicemail").glob(f"agenzia-lavoro-{safe}*.wav"))
    assert len(recorded) == 1, list((closed_sw.data_dir / "voicemail").iterdir())
    seconds = len(read_wav(recorded[0].read_bytes())) / 16000
    assert 2.5 < seconds < 3.5, seconds


def test_a_closure_day_closes_the_service(tmp_path: Path) -> None:
    """An extra closure day in the configuration (today) closes a service that its
    weekly hours would open."""
    today = datetime.now(ROME).date().isoformat()
    switch = switch_with(tmp_path, open_now=True, calendar={"closures": [today]})
    try:
        with TrunkCall(target(switch), "0461499335") as call:
            assert call.invite().status == 200
            events = wait_event(switch.data_dir, call.call_id, "after_hours", timeout=5)
        assert [e["data"] for e in events if e["kind"] == "after_hours"] == [{"reason": "closure"}]
    finally:
        stop_checked(switch)


def http(switch: Switch, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{switch.http_port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def test_override_opens_a_closed_service_at_once(closed_sw: Switch) -> None:
    path = "/api/services/trentino-digitale"
    status, view = http(closed_sw, "GET", path)
    if status == 404 and "unknown service" not in str(view):
        pytest.skip("the switch serves no /api/services (override API not there)")
    assert (status, view["state"], view["reason"]) == (200, "closed", "after_hours")
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    status, view = http(closed_sw, "PUT", f"{path}/override", {"state": "open", "until": until})
    assert status == 200, view
    assert view["state"] == "open"
    try:
        call = call_to_queue(closed_sw, "800228040", "1")
        with call:
            events = read_events(closed_sw.data_dir, call.call_id)
            assert "after_hours" not in kinds(events)
            assert [e["queue"] for e in events if e["kind"] == "queued"] == ["mepat"]
    finally:
        status, view = http(closed_sw, "DELETE", f"{path}/override")
    assert (status, view["state"]) == (200, "closed")
    with TrunkCall(target(closed_sw), "800228040") as call:
        assert call.invite().status == 200
        events = wait_event(closed_sw.data_dir, call.call_id, "after_hours", timeout=5)
        assert [e["data"] for e in events if e["kind"] == "after_hours"] == [
            {"reason": "after_hours"}
        ]


def test_override_written_in_the_config_opens_a_closed_service(tmp_path: Path) -> None:
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    calendar = {"override": {"state": "open", "until": until}}
    switch = switch_with(tmp_path, open_now=False, calendar=calendar)
    try:
        with TrunkCall(target(switch), "0461800133") as call:
            assert call.invite().status == 200
            events = wait_event(switch.data_dir, call.call_id, "ivr_entered", timeout=5)
            assert "ivr_entered" in kinds(events)
            time.sleep(0.6)
            assert "after_hours" not in kinds(read_events(switch.data_dir, call.call_id))
    finally:
        stop_checked(switch)


# -- language -----------------------------------------------------------------------------


def test_nine_during_the_welcome_switches_to_english(open_sw: Switch) -> None:
    """languages.switch {"9": en}: the welcome starts again in English, and what the
    caller hears is the English prompt, sample for sample (G.711 is exact)."""
    need("sipp")
    english = read_wav((PROMPTS / "en" / "welcome-trentino-digitale.wav").read_bytes())
    frames = [g711.linear_to_ulaw(english[i : i + 320]) for i in range(0, len(english) - 319, 320)]
    with TrunkCall(target(open_sw), "800228040", codecs=["PCMU"]) as call:
        assert call.invite().status == 200
        time.sleep(1.0)
        call.send_digit_pcap(pcap("9"))
        switched_at = time.monotonic()
        time.sleep(len(frames) * 0.02 + 1.5)
        packets = [p for p in call.rtp.packets() if p.arrival > switched_at - 0.5]
    payloads = [p.payload for p in packets]
    first = next(i for i, f in enumerate(frames) if f != frames[0])  # skip leading silence
    assert frames[first] in payloads, "the English welcome was not heard"
    start = payloads.index(frames[first]) - first
    assert payloads[start : start + len(frames)] == frames
    events = read_events(open_sw.data_dir, call.call_id)
    assert [e["data"] for e in events if e["kind"] == "digit"] == [
        {"digit": "9", "node": "welcome"}
    ]
