"""Captured from real peers: SIPp 3.6.1 and baresip 1.0.0 registering over UDP.

The datagrams were recorded from the registrar behind a loopback socket with the nonce
secret below (digest MD5 only, as both peers need); the times are the monotonic instants
they arrived at, so the stateless nonces they carry are still fresh when replayed.
"""

from __future__ import annotations

SIPP = [
    (
        b"REGISTER sip:127.0.0.1:15160 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:15199;branch=z9hG4bK-23992-1-0\r\n"
        b"From: <sip:1001@127.0.0.1>;tag=1\r\n"
        b"To: <sip:1001@127.0.0.1>\r\n"
        b"Call-ID: 1-23992@127.0.0.1\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b"Contact: <sip:1001@127.0.0.1:15199>\r\n"
        b"Expires: 60\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
        1157.394189958,
    ),
    (
        b"REGISTER sip:127.0.0.1:15160 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:15199;branch=z9hG4bK-23992-1-2\r\n"
        b"From: <sip:1001@127.0.0.1>;tag=1\r\n"
        b"To: <sip:1001@127.0.0.1>\r\n"
        b"Call-ID: 1-23992@127.0.0.1\r\n"
        b"CSeq: 2 REGISTER\r\n"
        b"Contact: <sip:1001@127.0.0.1:15199>\r\n"
        b'Authorization: Digest username="1001",realm="centralino",cnonce="6b8b4567",'
        b'nc=00000001,qop=auth,uri="sip:127.0.0.1:15160",'
        b'nonce="AAAAAAARqRIAAAAAAAAAAfS-ZLivAM23YWOal_HCkE8",'
        b'response="89fc24571856e0e47584f4f61a56a87e",algorithm=MD5,'
        b'opaque="QntqmFb1l5qTig49"\r\n'
        b"Expires: 60\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
        1157.394868824,
    ),
]

BARESIP = [
    (
        b"REGISTER sip:127.0.0.1:15160 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:15062;branch=z9hG4bK93ea7e37ce459c61;rport\r\n"
        b"Contact: <sip:1002-0x55f257d62400@127.0.0.1:15062>;expires=60;"
        b'+sip.instance="<urn:uuid:e4c84da2-f317-c60b-e75d-89e8b40366fa>"\r\n'
        b"Max-Forwards: 70\r\n"
        b"To: <sip:1002@127.0.0.1:15160>\r\n"
        b"From: <sip:1002@127.0.0.1:15160>;tag=60a9ebf860020246\r\n"
        b"Call-ID: bcbdbfa555d02e14\r\n"
        b"CSeq: 49172 REGISTER\r\n"
        b"User-Agent: baresip v1.0.0 (x86_64/linux)\r\n"
        b"Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
        1151.568350168,
    ),
    (
        b"REGISTER sip:127.0.0.1:15160 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:15062;branch=z9hG4bK7a1a30ce310446be;rport\r\n"
        b"Contact: <sip:1002-0x55f257d62400@127.0.0.1:15062>;expires=60;"
        b'+sip.instance="<urn:uuid:e4c84da2-f317-c60b-e75d-89e8b40366fa>"\r\n'
        b"Max-Forwards: 70\r\n"
        b'Authorization: Digest username="1002", realm="centralino",'
        b' nonce="AAAAAAARklEAAAAAAAAAAcrVCRFQbsjyqATZYGuTs1s", uri="sip:127.0.0.1:15160",'
        b' response="7eea11ab7cf7b6bbda54dc55571dac38", opaque="QntqmFb1l5qTig49",'
        b' cnonce="b01891ed805c0b9b", qop=auth, nc=00000001\r\n'
        b"To: <sip:1002@127.0.0.1:15160>\r\n"
        b"From: <sip:1002@127.0.0.1:15160>;tag=60a9ebf860020246\r\n"
        b"Call-ID: bcbdbfa555d02e14\r\n"
        b"CSeq: 49173 REGISTER\r\n"
        b"User-Agent: baresip v1.0.0 (x86_64/linux)\r\n"
        b"Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
        1151.572050792,
    ),
]
