"""The media plane of a running `centralino serve`, heard from a trunk caller (issue 3).

Calls offering PCMU only, PCMA only and G729 only are answered with that codec and hear
the welcome prompt as RTP that decodes to the bundled WAV, paced at 50 packets/s with
consecutive sequence numbers and timestamps; RFC 2833/4733 digits replayed from SIPp's
captures and from an Asterisk capture are recognised (`digit` events in the log); an
offer with no common codec gets 488 with a Warning; SIPp's per-codec trunk scenarios
finish with exit code 0.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from caller import (
    PROMPTS,
    RtpPacket,
    TrunkCall,
    event_digits,
    events_from_pcap,
    read_events,
    trentino_config,
    wait_event,
)
from conftest import Switch, need, run_sipp, start_switch, stop_process

from media import g711
from media.g729 import load_g729
from media.wav import read_wav

pytestmark = pytest.mark.e2e

NUMBER = "800228040"
SIPP_PCAPS = Path("/usr/share/sip-tester")
ASTERISK_PCAP = (
    Path(__file__).resolve().parents[3]
    / "shared/corpus/pcap/asterisk_ulaw-2013785496_rtp_rfc2833.pcap"
)
ASTERISK_DIGITS = "2013785496"  # the capture's known answer (issue 3)
WELCOME = PROMPTS / "it" / "welcome-trentino-digitale.wav"
PAYLOAD_TYPE = {"PCMU": 0, "PCMA": 8, "G729": 18}

FRAME = 160  # samples per 20 ms packet at 8 kHz
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Exception in callback")
# Every SIPp digit capture but 9: 9 switches the welcome to English (languages.switch),
# which would restart the prompt these calls measure.
SIPP_DIGITS = {d: f"dtmf_2833_{d}.pcap" for d in "012345678"} | {
    "*": "dtmf_2833_star.pcap",
    "#": "dtmf_2833_pound.pcap",
}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trentino_config(tmp_path_factory.mktemp("media-config"), open_now=True)


@pytest.fixture(scope="module")
def rtp_range(config: Path) -> range:
    rtp = yaml.safe_load(config.read_text())["rtp"]
    return range(rtp["port_min"], rtp["port_max"] + 1)


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Iterator[Switch]:
    switch = start_switch(tmp_path_factory.mktemp("media"), config)
    yield switch
    alive = switch.process.poll() is None
    code = stop_process(switch.process)
    assert alive, f"the switch died (exit {code}):\n{switch.log()[-4000:]}"
    assert not TRACEBACK.search(switch.log()), switch.log()[-4000:]


def target(switch: Switch) -> tuple[str, int]:
    return ("127.0.0.1", switch.sip_port)


def decoder(codec: str) -> Callable[[bytes], bytes]:
    """One stream's decoder (G.729 keeps state from packet to packet)."""
    if codec == "PCMU":
        return g711.ulaw_to_linear
    if codec == "PCMA":
        return g711.alaw_to_linear
    library = load_g729()
    if library is None:
        pytest.fail("libbcg729 is not installed, yet the switch answered G729")
    return library.decoder().decode


def envelope(pcm: bytes) -> list[float]:
    """RMS level of each 20 ms frame of 16-bit little-endian PCM."""
    samples = memoryview(pcm).cast("h")
    frames = range(0, len(samples) - FRAME + 1, FRAME)
    return [math.sqrt(sum(s * s for s in samples[i : i + FRAME]) / FRAME) for i in frames]


def correlation(a: list[float], b: list[float]) -> float:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = math.sqrt(sum((x - ma) ** 2 for x in a))
    vb = math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (va * vb) if va and vb else 0.0


def check_stream(packets: list[RtpPacket], payload_type: int) -> dict[str, float]:
    """One RTP stream of consecutive 20 ms packets (RFC 3550 §5.1); returns its pacing."""
    assert packets, "no RTP received"
    assert {p.payload_type for p in packets} == {payload_type}
    assert len({p.ssrc for p in packets}) == 1, "the SSRC changed inside one prompt"
    assert packets[0].marker, "the first packet of a talkspurt carries the marker bit"
    for before, after in itertools.pairwise(packets):
        assert (after.seq - before.seq) & 0xFFFF == 1, (before.seq, after.seq)
        assert (after.timestamp - before.timestamp) & 0xFFFFFFFF == FRAME
    return pacing(packets)


def pacing(packets: list[RtpPacket], settle: int = 10) -> dict[str, float]:
    """Packets/s and drift measured from packet `settle` on (a prompt's first packets
    may leave in a burst when its start is late), and how early the first packets came
    against their timestamps (the start burst)."""

    def lateness(packets: list[RtpPacket]) -> list[float]:
        first = packets[0]
        return [
            (p.arrival - first.arrival) - ((p.timestamp - first.timestamp) & 0xFFFFFFFF) / 8000
            for p in packets
        ]

    steady = packets[settle:]
    offsets = lateness(steady)
    return {
        "packets_per_s": (len(steady) - 1) / (steady[-1].arrival - steady[0].arrival),
        "drift_s": offsets[-1],
        "worst_s": max(offsets, key=abs),
        "start_burst_s": -min(lateness(packets)),
    }


def welcome_packets(call: TrunkCall, frames: int, timeout: float) -> list[RtpPacket]:
    deadline = time.monotonic() + timeout
    while len(call.rtp.packets()) < frames and time.monotonic() < deadline:
        time.sleep(0.05)
    return call.rtp.packets()[:frames]


def send_digits(call: TrunkCall, digits: str) -> None:
    for digit in digits:
        assert call.send_digit_pcap(SIPP_PCAPS / SIPP_DIGITS[digit]) == digit
        time.sleep(0.1)


def digits_logged(switch: Switch, call_id: str, count: int) -> str:
    events = wait_event(switch.data_dir, call_id, "digit", timeout=5, count=count)
    return "".join(e["data"]["digit"] for e in events if e["kind"] == "digit")


@pytest.mark.parametrize("codec", ["PCMU", "PCMA", "G729"])
def test_one_codec_offer_hears_the_welcome_and_is_heard(
    sw: Switch, rtp_range: range, codec: str
) -> None:
    need("sipp")  # the digit captures come with SIPp
    reference = read_wav(WELCOME.read_bytes())
    frames = len(reference) // 2 // FRAME
    with TrunkCall(target(sw), NUMBER, codecs=[codec]) as call:
        assert call.invite().status == 200
        assert call.sdp is not None
        assert call.sdp.codec == codec
        assert call.sdp.payload_types == (PAYLOAD_TYPE[codec], 101)
        assert call.sdp.telephone_event == 101
        time.sleep(0.3)
        send_digits(call, "".join(SIPP_DIGITS))
        packets = welcome_packets(call, frames, timeout=frames * 0.02 + 3)
        sources = set(call.rtp.sources)
        assert call.hang_up() == 200
    assert len(packets) == frames
    assert sources == {(call.sdp.host, call.sdp.port)}, "RTP comes from the answered port"
    assert call.sdp.port in rtp_range and call.sdp.port % 2 == 0
    figures = check_stream(packets, PAYLOAD_TYPE[codec])
    print(f"\n{codec}: {figures}")
    assert 49.5 <= figures["packets_per_s"] <= 50.5, figures
    assert abs(figures["drift_s"]) < 0.05, figures
    assert figures["start_burst_s"] < 0.2, figures
    decode = decoder(codec)
    heard = b"".join(decode(p.payload) for p in packets)
    if codec == "G729":
        level = correlation(envelope(heard), envelope(reference))
        energy = sum(envelope(heard)) / sum(envelope(reference))
        print(f"G729 envelope correlation {level:.3f}, energy ratio {energy:.2f}")
        assert level > 0.9 and 0.5 < energy < 2.0, (level, energy)
    else:
        encode = g711.linear_to_ulaw if codec == "PCMU" else g711.linear_to_alaw
        assert heard == decode(encode(reference[: len(heard)]))
    assert digits_logged(sw, call.call_id, len(SIPP_DIGITS)) == "".join(SIPP_DIGITS)


@pytest.mark.parametrize(("codec", "event_pt"), [("PCMU", 101), ("PCMA", 96), ("G729", 110)])
def test_asterisk_capture_digits_are_recognised(sw: Switch, codec: str, event_pt: int) -> None:
    """The capture's events (payload type 101, Asterisk's SSRC) are rewritten to the
    payload type we offered, our SSRC and our clock; the silences between digits are
    shortened so that all ten fit in the welcome."""
    packets = events_from_pcap(ASTERISK_PCAP, max_gap=0.15)
    assert event_digits(packets) == ASTERISK_DIGITS
    with TrunkCall(target(sw), NUMBER, codecs=[codec], telephone_event=event_pt) as call:
        assert call.invite().status == 200
        assert call.sdp is not None and call.sdp.telephone_event == event_pt
        time.sleep(0.3)
        call.send_events(packets)
        logged = digits_logged(sw, call.call_id, len(ASTERISK_DIGITS))
    assert logged == ASTERISK_DIGITS


@pytest.mark.parametrize("offer", [["3/GSM"], ["9/G722", "3/GSM"]])
def test_no_common_codec_gets_488_with_a_warning(sw: Switch, offer: list[str]) -> None:
    with TrunkCall(target(sw), NUMBER, codecs=offer) as call:
        answer = call.invite()
        assert answer.status == 488
        warning = answer.header("warning") or ""
        assert re.match(r'^3\d\d \S+ ".+"$', warning), warning
        assert call.answer is None
    events = read_events(sw.data_dir, call.call_id)
    assert events == [], "a refused call never entered the IVR"


@pytest.mark.parametrize("codec", ["pcmu", "pcma", "g729"])
def test_sipp_trunk_call_per_codec(sw: Switch, codec: str) -> None:
    need("sipp")
    args = ["-m", "1", "-s", NUMBER, "-key", "welcome_ms", "800", "-key", "hold_ms", "1200"]
    args += ["-key", "digit_pcap", str(SIPP_PCAPS / "dtmf_2833_5.pcap")]
    args += ["-cid_str", f"sipp-{codec}-%u-%p@%s"]
    done = run_sipp(f"trunk-call-{codec}.xml", sw.sip, *args, timeout=30)
    assert done.returncode == 0, done.stdout.decode(errors="replace")[-3000:]
    time.sleep(0.7)  # the event log commits every 0.5 s
    ours = [
        e for e in read_events(sw.data_dir) if (e["call_id"] or "").startswith(f"sipp-{codec}-")
    ]
    assert [e["kind"] for e in ours if e["kind"] in ("digit", "ended")] == ["digit", "ended"]
    assert next(e["data"]["digit"] for e in ours if e["kind"] == "digit") == "5"


def test_sip_info_digits_are_recognised(sw: Switch) -> None:
    """DTMF as SIP INFO, both bodies trunks use (application/dtmf-relay, application/dtmf)."""
    with TrunkCall(target(sw), NUMBER, codecs=["PCMA"]) as call:
        assert call.invite().status == 200
        assert call.info("application/dtmf-relay", "Signal=4\r\nDuration=160\r\n") == 200
        assert call.info("application/dtmf", "#") == 200
        assert digits_logged(sw, call.call_id, 2) == "4#"


def test_media_timeout_hangs_up_only_the_silent_caller(tmp_path: Path) -> None:
    """rtp.media_timeout 2 s: a caller who sends no RTP is hung up after about 2 s and
    the reason is logged; a caller who keeps talking stays on the line."""
    switch = start_switch(tmp_path, trentino_config(tmp_path, media_timeout=2))
    try:
        with (
            TrunkCall(target(switch), NUMBER, codecs=["PCMU"]) as silent,
            TrunkCall(target(switch), NUMBER, codecs=["PCMU"]) as talking,
        ):
            assert silent.invite().status == 200
            assert talking.invite().status == 200
            talking.send_audio(0, [bytes([0xFF]) * 160] * 200)  # 4 s of µ-law silence
            assert silent.bye_at is not None and silent.answered_at is not None
            assert 1.5 < silent.bye_at - silent.answered_at < 4.0
            assert talking.bye_at is None, "a caller sending RTP was hung up"
        log = switch.log()
        assert f"hanging up {silent.call_id}: media timeout" in log
        assert f"hanging up {talking.call_id}" not in log
    finally:
        code = stop_process(switch.process)
        assert code == 0 and not TRACEBACK.search(switch.log()), switch.log()[-3000:]


def prompt_frames(name: str, encode: Callable[[bytes], bytes]) -> list[bytes]:
    """A bundled Italian prompt as the player sends it: 20 ms frames, the last padded."""
    pcm = read_wav((PROMPTS / "it" / f"{name}.wav").read_bytes())
    pcm += bytes(-len(pcm) % (2 * FRAME))
    return [encode(pcm[i : i + 2 * FRAME]) for i in range(0, len(pcm), 2 * FRAME)]


def test_welcome_then_menu_is_one_continuous_stream(sw: Switch) -> None:
    """The welcome list (welcome, for-english) and then the menu prompt: every frame in
    order, one SSRC, consecutive sequence numbers and timestamps, no gap between them."""
    expected = [
        frame
        for name in ("welcome-trentino-digitale", "for-english")
        for frame in prompt_frames(name, g711.linear_to_alaw)
    ]
    menu = prompt_frames("menu-trentino-digitale", g711.linear_to_alaw)[:50]
    with TrunkCall(target(sw), NUMBER, codecs=["PCMA"]) as call:
        assert call.invite().status == 200
        packets = welcome_packets(call, len(expected) + len(menu), timeout=len(expected) * 0.02 + 4)
    assert len(packets) == len(expected) + len(menu)
    figures = check_stream(packets, PAYLOAD_TYPE["PCMA"])
    print(f"\nwelcome+menu PCMA: {figures}")
    assert not any(p.marker for p in packets[1:]), "no silence, so no new talkspurt"
    heard = [p.payload for p in packets]
    assert heard[: len(expected)] == expected
    assert heard[len(expected) :] == menu
    assert 49.5 <= figures["packets_per_s"] <= 50.5 and abs(figures["drift_s"]) < 0.05, figures


@pytest.mark.parametrize(
    ("offer", "chosen"),
    [(["PCMA", "PCMU", "G729"], "PCMA"), (["G729", "PCMU"], "G729"), (["3/GSM", "PCMU"], "PCMU")],
)
def test_the_offerers_order_decides_the_codec(sw: Switch, offer: list[str], chosen: str) -> None:
    """RFC 3264 §6.1: the answer keeps the offerer's preference among what we support."""
    with TrunkCall(target(sw), NUMBER, codecs=offer) as call:
        assert call.invite().status == 200
        assert call.sdp is not None
        assert (call.sdp.codec, call.sdp.payload_types) == (chosen, (PAYLOAD_TYPE[chosen], 101))
        deadline = time.monotonic() + 3
        while not call.rtp.packets() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {p.payload_type for p in call.rtp.packets()} == {PAYLOAD_TYPE[chosen]}
