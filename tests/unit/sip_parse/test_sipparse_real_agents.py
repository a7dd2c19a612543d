"""Messages shaped like those of the agents we meet: SIPp, baresip, Linphone, a trunk."""

from __future__ import annotations

from sip.headers import parse_auth_params
from sip.message import Request, Response, make_response
from sip.parser import parse_message, validate_request, validate_response


def crlf(text: str, body: str = "") -> bytes:
    head = "\r\n".join(line.strip() for line in text.strip().splitlines())
    return (head + "\r\n\r\n" + body).encode()


def valid_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)
    again = parse_message(message.to_bytes())
    assert again.to_bytes() == message.to_bytes()
    return message


SDP = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"


def test_sipp_uac_invite_and_ack() -> None:
    invite = valid_request(
        crlf(
            f"""
            INVITE sip:800@127.0.0.1:5060 SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4321-1-0
            From: sipp <sip:sipp@127.0.0.1:5061>;tag=4321SIPpTag001
            To: 800 <sip:800@127.0.0.1:5060>
            Call-ID: 1-4321@127.0.0.1
            CSeq: 1 INVITE
            Contact: sip:sipp@127.0.0.1:5061
            Max-Forwards: 70
            Subject: Performance Test
            Content-Type: application/sdp
            Content-Length: {len(SDP)}
            """,
            SDP,
        )
    )
    assert invite.top_via.branch == "z9hG4bK-4321-1-0"
    assert invite.top_via.sent_by == ("127.0.0.1", 5061)
    assert invite.to.display == "800"
    assert invite.contacts[0].uri.port == 5061
    assert invite.body == SDP.encode()
    ok = make_response(invite, 200, to_tag="srv1")
    ack = valid_request(
        crlf(
            """
            ACK sip:800@127.0.0.1:5060 SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4321-1-5
            From: sipp <sip:sipp@127.0.0.1:5061>;tag=4321SIPpTag001
            To: 800 <sip:800@127.0.0.1:5060>;tag=srv1
            Call-ID: 1-4321@127.0.0.1
            CSeq: 1 ACK
            Contact: sip:sipp@127.0.0.1:5061
            Max-Forwards: 70
            Subject: Performance Test
            Content-Length: 0
            """
        )
    )
    assert ack.to.tag == ok.to.tag == "srv1"
    assert (ack.cseq.seq, ack.call_id) == (invite.cseq.seq, invite.call_id)


def test_baresip_register_with_digest_credentials() -> None:
    register = valid_request(
        crlf(
            """
            REGISTER sip:127.0.0.1 SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:40123;branch=z9hG4bK1c2d9a8f0c3e4a21;rport
            Contact: <sip:1002-0x55d5e8a0@127.0.0.1:40123>;expires=3600
            Max-Forwards: 70
            To: <sip:1002@127.0.0.1>
            From: <sip:1002@127.0.0.1>;tag=8f7e3c2a1b
            Call-ID: 6b1c2f0e9d8a7b6c
            CSeq: 2 REGISTER
            User-Agent: baresip v2.0.0 (x86_64/linux)
            Authorization: Digest username="1002", realm="centralino", nonce="abc", \
uri="sip:127.0.0.1", response="0123456789abcdef0123456789abcdef", algorithm=MD5, \
cnonce="7c2b", qop=auth, nc=00000001
            Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER,UPDATE
            Supported: replaces,norefersub,gruu
            Content-Length: 0
            """.replace("\\\n", "")
        )
    )
    assert register.top_via.wants_rport
    assert register.contacts[0].expires == 3600
    assert register.to.uri.aor == "sip:1002@127.0.0.1"
    assert "REFER" in register.option_tags("allow")
    assert register.option_tags("supported") == ["replaces", "norefersub", "gruu"]
    scheme, params = parse_auth_params(register.headers.get("authorization") or "")
    assert scheme == "Digest"
    assert (params["qop"], params["nc"], params["uri"]) == ("auth", "00000001", "sip:127.0.0.1")


def test_linphone_register_with_instance_and_push_parameters() -> None:
    register = valid_request(
        crlf(
            """
            REGISTER sip:centralino.example.it SIP/2.0
            Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK.Yf3~kQ0aZ;rport
            From: <sip:1003@centralino.example.it>;tag=Q9x~ab.1
            To: sip:1003@centralino.example.it
            CSeq: 20 REGISTER
            Call-ID: aBcD-EfGh.1
            Max-Forwards: 70
            Supported: replaces, outbound, gruu, path
            Accept: application/sdp, text/plain, application/vnd.gsma.rcs-ft-http+xml
            Contact: <sip:1003@192.168.1.20;transport=udp;pn-provider=apns.dev;\
pn-prid=AB12:remote&CD34:voip;pn-param=ABCD1234.org.linphone.phone.remote&voip>\
;+sip.instance="<urn:uuid:5a1b-77c2>";+org.linphone.specs="groupchat/1.1,lime";reg-id=1
            Expires: 600
            User-Agent: LinphoneAndroid/5.0 (belle-sip/5.0)
            Content-Length: 0
            """.replace("\\\n", "")
        )
    )
    contact = register.contacts[0]
    assert contact.params["+sip.instance"] == '"<urn:uuid:5a1b-77c2>"'
    assert contact.uri.params["pn-provider"] == "apns.dev"
    assert register.expires == 600
    assert register.to.uri.user == "1003"


def test_trunk_invite_with_identity_diversion_and_timers() -> None:
    invite = valid_request(
        crlf(
            f"""
            INVITE sip:0461495000@192.0.2.10:5060;user=phone SIP/2.0
            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK3f1a.8c2e7d11;rport
            Via: SIP/2.0/UDP 10.1.1.1:5060;received=10.1.1.1;branch=z9hG4bKabc
            Record-Route: <sip:192.0.2.1;lr;ftag=as1f2e>
            Max-Forwards: 69
            From: "+393331234567" <sip:+393331234567@192.0.2.1;user=phone>;tag=as1f2e
            To: <sip:0461495000@192.0.2.10;user=phone>
            Contact: <sip:+393331234567@192.0.2.1:5060;transport=udp>
            Call-ID: 5f0a1c2e3b4d@192.0.2.1
            CSeq: 102 INVITE
            P-Asserted-Identity: "Mario Rossi" <sip:+393331234567@operator.example;user=phone>
            Diversion: <sip:0461000000@192.0.2.1>;reason=unconditional;counter=1;privacy=off
            Privacy: none
            Session-Expires: 1800;refresher=uac
            Min-SE: 90
            Supported: timer, 100rel, replaces
            Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PRACK
            P-Charging-Vector: icid-value=abc.123;icid-generated-at=192.0.2.1
            Content-Type: application/sdp
            Content-Length: {len(SDP)}
            """,
            SDP,
        )
    )
    assert [via.host for via in invite.vias] == ["192.0.2.1", "10.1.1.1"]
    assert invite.vias[1].received == "10.1.1.1"
    assert invite.record_routes[0].uri.params == {"lr": None, "ftag": "as1f2e"}
    assert invite.from_.display_unescaped == "+393331234567"
    assert invite.max_forwards == 69
    assert "100rel" in invite.option_tags("supported")
    ringing = make_response(invite, 180, to_tag="c3n7")
    wire = parse_message(ringing.to_bytes())
    assert isinstance(wire, Response)
    validate_response(wire)
    assert [via.branch for via in wire.vias] == ["z9hG4bK3f1a.8c2e7d11", "z9hG4bKabc"]
    assert wire.to.tag == "c3n7"
