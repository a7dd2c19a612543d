"""Client-side Digest against RFC 7616 §3.9.1's worked example (MD5 and SHA-256)."""

from __future__ import annotations

import pytest
from digest_helpers import h

from sip.digest import DigestError, answer_challenge, digest_response, hash_password, pick_challenge
from sip.headers import parse_auth_params

# RFC 7616 §3.9.1: the same GET answered with MD5 and with SHA-256.
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


def rfc_challenge(algorithm: str) -> str:
    return (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_example_response(algorithm: str) -> None:
    value = answer_challenge(
        rfc_challenge(algorithm),
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        cnonce=RFC_CNONCE,
        nc=1,
    )
    scheme, params = parse_auth_params(value)
    assert scheme == "Digest"
    assert params["response"] == RFC_RESPONSES[algorithm]
    assert params["opaque"] == RFC_OPAQUE
    assert (params["qop"], params["nc"], params["cnonce"]) == ("auth", "00000001", RFC_CNONCE)
    assert params["algorithm"] == algorithm
    # RFC 7616 §3.4: algorithm, qop and nc are tokens, never quoted.
    assert "qop=auth," in value and "nc=00000001" in value and f"algorithm={algorithm}" in value


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_example_building_blocks(algorithm: str) -> None:
    ha1 = hash_password("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    response = digest_response(
        algorithm,
        ha1,
        nonce=RFC_NONCE,
        method="GET",
        uri="/dir/index.html",
        qop_fields=f"00000001:{RFC_CNONCE}:auth",
    )
    assert response == RFC_RESPONSES[algorithm]


def test_no_qop_gives_the_rfc2069_form() -> None:
    value = answer_challenge(
        'Digest realm="r", nonce="n1"', "REGISTER", "sip:x", "u", "p", cnonce="c", nc=1
    )
    _, params = parse_auth_params(value)
    expected = h("MD5", f"{h('MD5', 'u:r:p')}:n1:{h('MD5', 'REGISTER:sip:x')}")
    assert params["response"] == expected
    assert "qop" not in params and "nc" not in params and "cnonce" not in params


def test_nc_is_written_as_eight_hex_digits() -> None:
    value = answer_challenge(
        'Digest realm="r", nonce="n", qop="auth"', "REGISTER", "sip:x", "u", "p", cnonce="c", nc=26
    )
    assert parse_auth_params(value)[1]["nc"] == "0000001a"


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-1',
        'Digest realm="r", nonce="n", qop="auth-int"',
        'Digest realm="r"',
        'Digest realm="r, nonce="n"',
    ],
)
def test_unanswerable_challenges_raise_digest_error(challenge: str) -> None:
    with pytest.raises(DigestError):
        answer_challenge(challenge, "REGISTER", "sip:x", "u", "p", cnonce="c", nc=1)


def test_pick_challenge_takes_the_first_supported_algorithm() -> None:
    offered = [
        'Basic realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-1',
        'Digest realm="r", nonce="n", algorithm=SHA-256',
        'Digest realm="r", nonce="n", algorithm=MD5',
    ]
    assert pick_challenge(offered) == offered[2]
    assert pick_challenge(offered[:2]) is None
    assert pick_challenge(['Digest realm="r", nonce="n"']) is not None  # MD5 by default
