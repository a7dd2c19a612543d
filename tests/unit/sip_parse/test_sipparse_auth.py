"""Authorization / WWW-Authenticate parameter parsing (RFC 3261 §25.1, RFC 7616 §3)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import RemoteProtocolError
from sip.headers import format_auth_params, parse_auth_params, quote_string

REAL_CREDENTIALS = (
    'Digest username="voi18062",realm="sip.cybercity.dk",uri="sip:192.168.1.2",'
    'nonce="1701b16a2a09bc3847cfd2015612fe2",opaque="1701a1351f70795",nc="00000001",'
    'response="29cd776112a709cb9cbe978baff5e478"'
)


def test_real_softphone_credentials() -> None:
    scheme, params = parse_auth_params(REAL_CREDENTIALS)
    assert scheme == "Digest"
    assert params["username"] == "voi18062"
    assert params["uri"] == "sip:192.168.1.2"
    assert params["nc"] == "00000001"
    assert params["response"] == "29cd776112a709cb9cbe978baff5e478"
    assert len(params) == 7


def test_challenge_with_tokens_spaces_and_case() -> None:
    raw = 'Digest  Realm = "a\\"b" ,NONCE="n", stale=TRUE ,algorithm=SHA-256, qop="auth,auth-int"'
    scheme, params = parse_auth_params(raw)
    assert scheme == "Digest"
    assert params == {
        "realm": 'a"b',
        "nonce": "n",
        "stale": "TRUE",
        "algorithm": "SHA-256",
        "qop": "auth,auth-int",
    }


def test_unknown_scheme_rfc4475_regaut01() -> None:
    assert parse_auth_params("NoOneKnowsThisScheme opaque-data=here") == (
        "NoOneKnowsThisScheme",
        {"opaque-data": "here"},
    )


def test_empty_list_elements_are_skipped() -> None:
    assert parse_auth_params("Digest ,realm=x,, nonce=y,")[1] == {"realm": "x", "nonce": "y"}


@pytest.mark.parametrize(
    "raw",
    ["", "  ", '"Digest"', "Digest realm", 'Digest realm="x', "Digest a=1 b=2", "Digest a=1, A=2"],
)
def test_malformed_is_refused(raw: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_auth_params(raw)
    assert info.value.status_hint == 400


def test_format_quotes_all_but_tokens() -> None:
    text = format_auth_params(
        "Digest",
        {"realm": 'c"d\\', "nonce": "n", "algorithm": "MD5"},
        tokens=frozenset({"algorithm"}),
    )
    assert text == 'Digest realm="c\\"d\\\\", nonce="n", algorithm=MD5'


_values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
_names = st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True)


@given(st.dictionaries(_names, _values, max_size=6))
def test_format_then_parse_round_trips(params: dict[str, str]) -> None:
    assert parse_auth_params(format_auth_params("Digest", params)) == ("Digest", params)


@given(st.text(max_size=80))
def test_arbitrary_text_only_raises_remote_errors(raw: str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse_auth_params(raw)


def test_quote_string_escapes() -> None:
    assert quote_string('a"b\\c') == '"a\\"b\\\\c"'
