"""RFC 4475 and RFC 5118 torture messages, and unseen malformed input, sent over UDP
from the configured trunk address to a running `centralino serve`.

Each message must get the verdict an endpoint/UAS owes it (the tables below, judged
against the RFC sections the corpus INDEX.md files cite), the switch must still answer
OPTIONS right after it, and at the end the process is alive with no traceback logged.

Only two things are changed on the wire: the top Via gets `;rport` (RFC 3581) so that
the answer comes back to the sending socket instead of the sent-by port of a host named
in the message, and an RFC 3261 branch gets a unique suffix, because the corpus reuses
branches (`z9hG4bKkdjuw` with the same sent-by in cparam01/cparam02 and escnull/regescrt):
the switch rightly takes such a message as a retransmission (§17.2.3) and answers it
to where the first one came from.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
    TRACEBACK,
    SipPeer,
    SipResponse,
    Switch,
    need_ipv6,
    start_switch,
    stop_process,
    with_rport,
)

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
NO_ANSWER = frozenset({0})

# file -> the final statuses an endpoint/UAS may answer; 0 stands for no answer at all.
RFC4475: dict[str, frozenset[int]] = {
    "wsinv": frozenset({481}),  # §3.1.1.1; its To has a tag: an unknown dialog (§12.2.2)
    "intmeth": frozenset({501}),  # §3.1.1.2 unknown method
    "esc01": frozenset({404}),  # §3.1.1.3 valid; the user is no number we serve
    "escnull": frozenset({401}),  # §3.1.1.4 valid REGISTER: challenged (§10.3 step 3)
    "esc02": frozenset({501}),  # §3.1.1.5 RE%47IST%45R is not REGISTER
    "lwsdisp": frozenset({200}),  # §3.1.1.6 OPTIONS
    "longreq": frozenset({404}),  # §3.1.1.7
    "dblreq": frozenset({401}),  # §3.1.1.8 the REGISTER only; trailing bytes ignored
    "semiuri": frozenset({200}),  # §3.1.1.9 OPTIONS
    "transports": frozenset({200}),  # §3.1.1.10 OPTIONS
    "mpart01": frozenset({405}),  # §3.1.1.11 MESSAGE: known, not served (§8.2.1)
    "unreason": NO_ANSWER,  # §3.1.1.12 a response no transaction waits for
    "noreason": NO_ANSWER,  # §3.1.1.13 likewise
    "badinv01": frozenset({400}),  # §3.1.2.1
    "clerr": frozenset({400}),  # §3.1.2.2 (§18.3: UDP, body shorter than Content-Length)
    "ncl": frozenset({400}),  # §3.1.2.3
    "scalar02": frozenset({400}),  # §3.1.2.4
    "scalarlg": NO_ANSWER,  # §3.1.2.5 a response: discarded
    "quotbal": frozenset({400}),  # §3.1.2.6
    "ltgtruri": frozenset({400}),  # §3.1.2.7
    "lwsruri": frozenset({400}),  # §3.1.2.8
    "lwsstart": frozenset({400, 404}),  # §3.1.2.9 may reject; if taken, an unknown user
    "trws": frozenset({400, 200}),  # §3.1.2.10 may reject; OPTIONS
    "escruri": frozenset({400}),  # §3.1.2.11
    "baddate": frozenset({404}),  # §3.1.2.12 the Date does not matter to us
    "regbadct": frozenset({400}),  # §3.1.2.13
    "badaspec": frozenset({400}),  # §3.1.2.14
    "baddn": frozenset({400}),  # §3.1.2.15
    "badvers": frozenset({505}),  # §3.1.2.16
    "mismatch01": frozenset({400}),  # §3.1.2.17
    "mismatch02": frozenset({501}),  # §3.1.2.18 501 preferred
    "bigcode": NO_ANSWER,  # §3.1.2.19 a response: dropped
    "badbranch": frozenset({200}),  # §3.2.1 OPTIONS, matched the RFC 2543 way
    "insuf": frozenset({400}) | NO_ANSWER,  # §3.3.1 no Call-ID/From/To: 400 or a drop
    "unkscm": frozenset({416}),  # §3.3.2
    "novelsc": frozenset({416}),  # §3.3.3
    # §3.3.4: RFC 4475 has a registrar answer 400; RFC 3261 §10.3 step 5 says 404 for an
    # address-of-record not valid for the domain. Either refuses it.
    "unksm2": frozenset({400, 404}),
    "bext01": frozenset({420}),  # §3.3.5
    "invut": frozenset({415}),  # §3.3.6
    "regaut01": frozenset({401}),  # §3.3.7 a challenge we understand
    "multi01": frozenset({400}),  # §3.3.8
    "mcl01": frozenset({400}),  # §3.3.9
    "bcast": NO_ANSWER,  # §3.3.10 a response: discarded
    "zeromf": frozenset({200}),  # §3.3.11 an endpoint processes it normally
    "cparam01": frozenset({401}),  # §3.3.12 REGISTER: challenged first
    "cparam02": frozenset({401}),  # §3.3.13
    "regescrt": frozenset({401}),  # §3.3.14
    "sdp01": frozenset({406}),  # §3.3.15
    "inv2543": frozenset({404}),  # §3.4.1 accepted, matched the RFC 2543 way
    "test": frozenset({400}) | NO_ANSWER,  # stray file with no SIP version, no Via
}

RFC5118: dict[str, frozenset[int]] = {
    "ipv6-good": frozenset({401}),  # §4.1 REGISTER
    "ipv6-bad": frozenset({400}),  # §4.2
    "port-ambiguous": frozenset({401}),  # §4.3 parses; REGISTER
    "port-unambiguous": frozenset({401}),  # §4.4
    "via-received-param-with-delim": frozenset({481}),  # §4.5 BYE outside any dialog
    "via-received-param-no-delim": frozenset({200}),  # §4.5 OPTIONS
    "ipv6-in-sdp": frozenset({404}),  # §4.6 INVITE to no number we serve
    "mult-ip-in-header": frozenset({481}),  # §4.7 BYE outside any dialog
    "mult-ip-in-sdp": frozenset({404}),  # §4.8
    "ipv4-mapped-ipv6": frozenset({404}),  # §4.9
    "ipv6-bug-abnf-3-colons": frozenset({400, 200}),  # §4.10 reject or repair
    "ipv6-correct-abnf-2-colons": frozenset({200}),  # §4.10 OPTIONS
}

_BRANCH = re.compile(rb"(branch[ \t]*=[ \t]*z9hG4bK[^;, \t\r\n]+)", re.IGNORECASE)
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[^\r\n]*", re.I | re.M)
_suffix = itertools.count(1)


def unique_branch(data: bytes) -> bytes:
    """Suffix the first RFC 3261 branch (the top Via's) so no two messages share it."""
    return _BRANCH.sub(lambda m: m.group(1) + b".e2e%d" % next(_suffix), data, count=1)


def rfc5118_wire(data: bytes) -> bytes:
    """LF -> CRLF and a recomputed Content-Length, as the corpus INDEX.md says."""
    data = data.replace(b"\n", b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return data
    head = _CONTENT_LENGTH.sub(b"Content-Length: %d" % len(body), head)
    return head + sep + body


def corpus_cases() -> list[tuple[str, bytes, frozenset[int]]]:
    cases = []
    for name, allowed in RFC4475.items():
        data = (CORPUS / "rfc4475" / f"{name}.dat").read_bytes()
        cases.append((f"rfc4475/{name}", data, allowed))
    for name, allowed in RFC5118.items():
        data = rfc5118_wire((CORPUS / "rfc5118" / f"{name}.dat").read_bytes())
        cases.append((f"rfc5118/{name}", data, allowed))
    return cases


@pytest.fixture(scope="module")
def torture_switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    sw = start_switch(tmp_path_factory.mktemp("torture"))
    yield sw
    alive = sw.process.poll() is None
    code = stop_process(sw.process)
    assert alive, f"the switch died (exit {code}):\n{sw.log()[-4000:]}"
    assert not TRACEBACK.search(sw.log()), sw.log()[-4000:]


@pytest.fixture(scope="module")
def torture_switch_v6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    """The switch on [::1] (the trunk's IPv6 address in config/trentino.yaml)."""
    need_ipv6()
    sw = start_switch(tmp_path_factory.mktemp("torture6"), sip_host="::1")
    yield sw
    alive = sw.process.poll() is None
    code = stop_process(sw.process)
    assert alive, f"the switch died (exit {code}):\n{sw.log()[-4000:]}"
    assert not TRACEBACK.search(sw.log()), sw.log()[-4000:]


def finals(responses: list[SipResponse]) -> list[SipResponse]:
    return [r for r in responses if r.status >= 200]


def test_corpus_files_all_listed() -> None:
    """The tables cover every file of both corpora (a new file needs a verdict)."""
    for folder, table in (("rfc4475", RFC4475), ("rfc5118", RFC5118)):
        names = {p.stem for p in (CORPUS / folder).glob("*.dat")}
        assert names == set(table), folder


@pytest.mark.parametrize(
    ("name", "data", "allowed"), corpus_cases(), ids=[c[0] for c in corpus_cases()]
)
def test_torture_message_verdict(
    torture_switch: Switch, name: str, data: bytes, allowed: frozenset[int]
) -> None:
    with SipPeer(("127.0.0.1", torture_switch.sip_port)) as peer:
        got, pinged = peer.exchange(unique_branch(with_rport(data)))
    statuses = [r.status for r in finals(got)]
    assert pinged, f"{name}: OPTIONS unanswered afterwards"
    observed = statuses or [0]
    assert len(observed) == 1 and observed[0] in allowed, f"{name}: {statuses} not in {allowed}"


def rfc5118_cases() -> list[tuple[str, bytes, frozenset[int]]]:
    return [c for c in corpus_cases() if c[0].startswith("rfc5118/")]


@pytest.mark.parametrize(
    ("name", "data", "allowed"), rfc5118_cases(), ids=[c[0] for c in rfc5118_cases()]
)
def test_rfc5118_over_ipv6(
    torture_switch_v6: Switch, name: str, data: bytes, allowed: frozenset[int]
) -> None:
    """The IPv6 torture messages over IPv6, from ::1 (a trunk address): same verdicts."""
    with SipPeer(torture_switch_v6.sip_addr, source="::1") as peer:
        got, pinged = peer.exchange(unique_branch(with_rport(data)))
    statuses = [r.status for r in finals(got)] or [0]
    assert pinged, f"{name}: OPTIONS over IPv6 unanswered afterwards"
    assert len(statuses) == 1 and statuses[0] in allowed, f"{name}: {statuses} not in {allowed}"


def answer_to(switch: Switch, name: str) -> SipResponse:
    """The one final answer to a corpus message, from a fresh socket (answers to INVITEs
    are retransmitted until ACKed: they must not reach the next exchange)."""
    data = (CORPUS / "rfc4475" / f"{name}.dat").read_bytes()
    with SipPeer(("127.0.0.1", switch.sip_port)) as peer:
        got, pinged = peer.exchange(unique_branch(with_rport(data)))
    assert pinged
    (response,) = finals(got)
    return response


def test_torture_answers_carry_the_rfc_headers(torture_switch: Switch) -> None:
    """420 lists the Require tags (not Proxy-Require's, §8.2.2.3), 405/501 say Allow
    (§8.2.1, §21.5.2), 415 says Accept (§21.4.13), 406 carries a Warning (RFC 4475)."""
    bext = answer_to(torture_switch, "bext01")
    unsupported = {t.strip() for t in (bext.header("Unsupported") or "").split(",")}
    assert unsupported == {"nothingSupportsThis", "nothingSupportsThisEither"}
    for name in ("mpart01", "intmeth", "esc02"):
        assert "INVITE" in (answer_to(torture_switch, name).header("Allow") or ""), name
    invut = answer_to(torture_switch, "invut")
    assert "application/sdp" in (invut.header("Accept") or ""), invut.raw
    sdp01 = answer_to(torture_switch, "sdp01")
    assert (sdp01.header("Warning") or "").startswith("399"), sdp01.raw


# -- unseen malformed input -------------------------------------------------------------

SDP = (
    "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
)
UNKNOWN_NUMBER = "999000111"


def invite(peer: SipPeer, switch: Switch) -> bytes:
    """A well-formed INVITE from the trunk to a number nobody serves (answer: 404)."""
    uri = f"sip:{UNKNOWN_NUMBER}@127.0.0.1:{switch.sip_port}"
    _, data = peer.request("INVITE", uri, "Content-Type: application/sdp", body=SDP)
    return data


def options_with(peer: SipPeer, switch: Switch, *extra: str, body: str = "") -> bytes:
    _, data = peer.request("OPTIONS", f"sip:127.0.0.1:{switch.sip_port}", *extra, body=body)
    return data


def verdict(switch: Switch, build: bytes | Callable[[SipPeer], bytes]) -> list[int]:
    """Send bytes (or bytes built for a fresh socket) and return the final statuses
    they got; the OPTIONS that follows must be answered."""
    with SipPeer(("127.0.0.1", switch.sip_port)) as peer:
        payload = build if isinstance(build, bytes) else build(peer)
        got, pinged = peer.exchange(payload)
    assert pinged, f"OPTIONS unanswered after {payload[:80]!r}"
    return [r.status for r in finals(got)]


def test_full_invite_is_refused_with_404(torture_switch: Switch) -> None:
    """The control for the truncations: the whole INVITE is well-formed."""
    assert verdict(torture_switch, lambda p: invite(p, torture_switch)) == [404]


def truncated(switch: Switch, cut: int, peer: SipPeer) -> bytes:
    return invite(peer, switch)[:cut]


def test_every_truncation_of_an_invite(torture_switch: Switch) -> None:
    """50 cuts through request line, headers and body: a 400 or a drop, never 2xx."""
    with SipPeer(("127.0.0.1", torture_switch.sip_port)) as probe:
        length = len(invite(probe, torture_switch))
    for i in range(50):
        cut = max(1, length * i // 50)
        statuses = verdict(torture_switch, functools.partial(truncated, torture_switch, cut))
        assert len(statuses) <= 1 and set(statuses) <= {400, 404}, (cut, statuses)


def test_random_binary_datagrams(torture_switch: Switch) -> None:
    rng = random.Random(4475)
    with SipPeer(("127.0.0.1", torture_switch.sip_port)) as peer:
        for i in range(60):
            junk = rng.randbytes(rng.randint(1, 1400))
            if i % 3 == 1:
                junk = b"INVITE sip:1@127.0.0.1 SIP/2.0\r\n" + junk
            elif i % 3 == 2:
                junk = b"SIP/2.0 200 OK\r\n" + junk
            got, pinged = peer.exchange(junk, settle=0.0)
            assert pinged, junk[:60]
            assert all(r.status == 400 for r in finals(got)), [r.status for r in got]


def test_64k_datagram_gets_513(torture_switch: Switch) -> None:
    """§21.5.14: a readable request over the size limit gets 513; unreadable, a drop."""
    body = "x" * 65000
    statuses = verdict(torture_switch, lambda p: options_with(p, torture_switch, body=body))
    assert statuses == [513]
    junk = random.Random(5118).randbytes(65507)
    assert verdict(torture_switch, junk) == []


def test_thousands_of_headers(torture_switch: Switch) -> None:
    many = [f"X-T: {i}" for i in range(4000)]
    statuses = verdict(torture_switch, lambda p: options_with(p, torture_switch, *many))
    assert statuses == [513]
    # 1,200 compact headers fit in the size limit: answered (200), or refused once (400,
    # or 513 for too many header fields).
    compact = ["a:b"] * 1200
    statuses = verdict(torture_switch, lambda p: options_with(p, torture_switch, *compact))
    assert len(statuses) == 1 and statuses[0] in (200, 400, 513), statuses


@pytest.mark.parametrize(
    "where",
    ["request-uri", "header-value", "header-name", "call-id", "only-nuls", "body"],
)
def test_nul_bytes(torture_switch: Switch, where: str) -> None:
    def build(peer: SipPeer) -> bytes:
        data = options_with(
            peer, torture_switch, "Subject: hello", body="v=0\r\n" if where == "body" else ""
        )
        if where == "request-uri":
            return data.replace(b"OPTIONS sip:", b"OPTIONS sip:a\x00b@", 1)
        if where == "header-value":
            return data.replace(b"Subject: hello", b"Subject: he\x00llo")
        if where == "header-name":
            return data.replace(b"Subject: hello", b"Sub\x00ject: hello")
        if where == "call-id":
            return data.replace(b"Call-ID: ", b"Call-ID: \x00", 1)
        if where == "body":
            return data.replace(b"v=0", b"\x00=0")
        return b"\x00" * 1000

    statuses = verdict(torture_switch, build)
    allowed = {"only-nuls": set(), "body": {200}}.get(where, {200, 400})
    assert len(statuses) <= 1 and set(statuses) <= allowed, statuses
