"""Server-side Digest: challenges, verification, staleness, replay, and secrecy."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from digest_helpers import (
    PASSWORDS,
    REALM,
    SECRET,
    authenticator,
    challenges,
    h,
    register,
    sipp_authorization,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.authenticator import AuthFailure, DigestAuthenticator, HashedPassword
from sip.digest import DigestError, answer_challenge, hash_password
from sip.headers import parse_auth_params
from sip.message import Request


def first_challenge(auth: DigestAuthenticator, *, now: float = 0.0) -> dict[str, dict[str, str]]:
    return challenges(auth.challenge(register(), now=now))


def answered(auth: DigestAuthenticator, algorithm: str, **kwargs: object) -> Request:
    challenge = first_challenge(auth)[algorithm]
    return register(authorization=sipp_authorization(challenge, algorithm=algorithm, **kwargs))  # type: ignore[arg-type]


def test_challenge_offers_sha256_then_md5_with_one_nonce() -> None:
    response = authenticator().challenge(register(), now=5.0, to_tag="t1")
    assert response.status == 401
    assert response.to.tag == "t1"
    values = response.headers.get_all("WWW-Authenticate")
    params = [parse_auth_params(v)[1] for v in values]
    assert [p["algorithm"] for p in params] == ["SHA-256", "MD5"]
    assert all(p["qop"] == "auth" and p["realm"] == REALM and "stale" not in p for p in params)
    assert params[0]["nonce"] == params[1]["nonce"] and params[0]["opaque"] == params[1]["opaque"]
    assert "algorithm=SHA-256" in values[0] and 'qop="auth"' in values[0]


def test_each_challenge_has_a_fresh_nonce() -> None:
    auth = authenticator()
    nonces = {first_challenge(auth, now=1.0)["MD5"]["nonce"] for _ in range(50)}
    assert len(nonces) == 50


def test_proxy_challenge_is_407_and_reads_proxy_authorization() -> None:
    auth = authenticator()
    response = auth.challenge(register(), now=0.0, proxy=True)
    assert response.status == 407
    assert not response.headers.get_all("WWW-Authenticate")
    challenge = challenges(response, "proxy-authenticate")["MD5"]
    request = register()
    request.headers.add("Proxy-Authorization", sipp_authorization(challenge))
    assert auth.verify(request, now=1.0, proxy=True).username == "1001"
    assert auth.verify(request, now=1.0).failure is AuthFailure.MISSING


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_sipp_style_answer_is_accepted(algorithm: str) -> None:
    auth = authenticator()
    result = auth.verify(answered(auth, algorithm), now=1.0)
    assert result.ok and result.username == "1001" and not result.stale


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_our_client_round_trips(algorithm: str) -> None:
    auth = authenticator()
    values = auth.challenge(register(), now=0.0).headers.get_all("WWW-Authenticate")
    value = next(v for v in values if f"algorithm={algorithm}" in v)
    authz = answer_challenge(
        value, "REGISTER", "sip:127.0.0.1:5060", "1002", "demo1002", cnonce="x", nc=1
    )
    assert auth.verify(register(authorization=authz), now=2.0).username == "1002"


def test_baresip_style_answer_without_algorithm_or_opaque_is_md5() -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["MD5"]
    authz = sipp_authorization(challenge, algorithm=None, cnonce="4a478bf84cab1775")
    assert auth.verify(register(authorization=authz), now=1.0).ok


def test_default_port_in_digest_uri_matches_a_request_uri_without_port() -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["MD5"]
    authz = sipp_authorization(challenge, uri="sip:127.0.0.1:5060")
    assert auth.verify(register("sip:127.0.0.1", authorization=authz), now=1.0).ok


@given(st.text(min_size=1, max_size=20).filter(lambda p: p != "demo1001"))
@settings(max_examples=50)
def test_wrong_password_is_never_accepted(password: str) -> None:
    auth = authenticator()
    for algorithm in ("MD5", "SHA-256"):
        challenge = first_challenge(auth)[algorithm]
        authz = sipp_authorization(challenge, password=password, algorithm=algorithm)
        result = auth.verify(register(authorization=authz), now=1.0)
        assert result.failure is AuthFailure.BAD_RESPONSE and result.username is None


def test_replayed_nonce_count_is_refused_and_higher_is_accepted() -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["SHA-256"]

    def attempt(nc: str) -> AuthFailure | None:
        authz = sipp_authorization(challenge, nc=nc, algorithm="SHA-256")
        return auth.verify(register(authorization=authz), now=1.0).failure

    assert attempt("00000001") is None
    assert attempt("00000001") is AuthFailure.REPLAY
    assert attempt("00000003") is None
    assert attempt("00000002") is AuthFailure.REPLAY
    assert attempt("00000004") is None


def test_a_wrong_answer_does_not_use_up_a_nonce_count() -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["MD5"]
    bad = sipp_authorization(challenge, password="nope")
    assert auth.verify(register(authorization=bad), now=1.0).failure is AuthFailure.BAD_RESPONSE
    assert auth.verify(register(authorization=sipp_authorization(challenge)), now=1.0).ok


def test_expired_nonce_with_right_answer_is_stale() -> None:
    auth = authenticator(nonce_ttl=300)
    challenge = first_challenge(auth, now=0.0)["MD5"]
    request = register(authorization=sipp_authorization(challenge))
    result = auth.verify(request, now=300.5)
    assert result.failure is AuthFailure.STALE and result.stale
    again = challenges(auth.challenge(request, now=300.5, stale=result.stale))
    assert again["MD5"]["stale"] == "true" and again["SHA-256"]["stale"] == "true"


def test_nonce_is_good_up_to_its_ttl() -> None:
    auth = authenticator(nonce_ttl=300)
    challenge = first_challenge(auth, now=10.0)["MD5"]
    assert auth.verify(register(authorization=sipp_authorization(challenge)), now=310.0).ok


def test_expired_nonce_with_wrong_answer_is_not_stale() -> None:
    auth = authenticator(nonce_ttl=300)
    challenge = first_challenge(auth, now=0.0)["MD5"]
    bad = sipp_authorization(challenge, password="nope")
    result = auth.verify(register(authorization=bad), now=1000.0)
    assert result.failure is AuthFailure.BAD_RESPONSE and not result.stale


def test_nonces_not_ours_are_refused() -> None:
    auth = authenticator()
    other = DigestAuthenticator(
        REALM, b"another secret, 32 bytes long!!!", credentials=PASSWORDS.get
    )
    foreign = first_challenge(other)["MD5"]
    assert auth.verify(register(authorization=sipp_authorization(foreign)), now=1.0).failure is (
        AuthFailure.BAD_NONCE
    )
    future = first_challenge(auth, now=100.0)["MD5"]
    early = auth.verify(register(authorization=sipp_authorization(future)), now=50.0)
    assert early.failure is AuthFailure.BAD_NONCE


Answer = Callable[[dict[str, str]], str]

FIELD_CASES: list[tuple[Answer, AuthFailure]] = [
    (lambda c: sipp_authorization(c, uri="sip:10.0.0.9:5060"), AuthFailure.URI_MISMATCH),
    (lambda c: sipp_authorization(c, user="1003", password="x"), AuthFailure.UNKNOWN_USER),
    (lambda c: sipp_authorization(c, nc="0000001"), AuthFailure.MALFORMED),
    (lambda c: sipp_authorization(c, nc="0000000g"), AuthFailure.MALFORMED),
    (
        lambda c: sipp_authorization(c).replace("algorithm=MD5", "algorithm=SHA-512-256"),
        AuthFailure.ALGORITHM,
    ),
]


@pytest.mark.parametrize(("answer", "failure"), FIELD_CASES)
def test_field_checks(answer: Answer, failure: AuthFailure) -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["MD5"]
    assert auth.verify(register(authorization=answer(challenge)), now=1.0).failure is failure


def test_algorithm_must_be_one_offered() -> None:
    auth = authenticator(algorithms=("SHA-256",))
    challenge = first_challenge(auth)["SHA-256"]
    authz = sipp_authorization(challenge, algorithm="MD5")
    assert auth.verify(register(authorization=authz), now=1.0).failure is AuthFailure.ALGORITHM


def test_answers_without_qop_are_refused() -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["MD5"]
    plain = answer_challenge(
        f'Digest realm="{REALM}", nonce="{challenge["nonce"]}"',
        "REGISTER",
        "sip:127.0.0.1:5060",
        "1001",
        "demo1001",
        cnonce="c",
        nc=1,
    )
    assert auth.verify(register(authorization=plain), now=1.0).failure is AuthFailure.MALFORMED
    with_int = sipp_authorization(challenge).replace("qop=auth", "qop=auth-int")
    assert auth.verify(register(authorization=with_int), now=1.0).failure is AuthFailure.QOP


def test_opaque_must_be_ours_when_present() -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["MD5"]
    good = sipp_authorization(challenge, with_opaque=True)
    assert auth.verify(register(authorization=good), now=1.0).ok
    forged = sipp_authorization(challenge, with_opaque=True, nc="00000002")
    forged = forged.replace(challenge["opaque"], "bm90IG91cnM")
    assert auth.verify(register(authorization=forged), now=1.0).failure is AuthFailure.OPAQUE


def test_credentials_for_our_realm_are_found_among_others() -> None:
    auth = authenticator()
    challenge = first_challenge(auth)["MD5"]
    request = register()
    request.headers.add("Authorization", 'Digest username="x", realm="elsewhere", nonce="n"')
    request.headers.add("Authorization", sipp_authorization(challenge))
    assert auth.verify(request, now=1.0).ok
    assert auth.verify(register(), now=1.0).failure is AuthFailure.MISSING
    lone = register(authorization='Digest username="x", realm="elsewhere", nonce="n"')
    assert auth.verify(lone, now=1.0).failure is AuthFailure.MISSING


@pytest.mark.parametrize(
    "value",
    [
        "Digest",
        'Digest username="1001", realm="centralino"',
        'Digest realm="centralino", username="1001" nonce=',
        'Digest realm="centralino", realm="centralino"',
        'Digest realm="centralino", userhash=true, username="aa", nonce="n", uri="sip:x", '
        'response="r", nc=00000001, cnonce="c", qop=auth',
        "\udcff\udcfe",
    ],
)
def test_malformed_credentials_are_refused_without_raising(value: str) -> None:
    result = authenticator().verify(register(authorization=value), now=1.0)
    assert result.failure in (AuthFailure.MALFORMED, AuthFailure.MISSING)


@given(st.text(max_size=200))
@settings(max_examples=200)
def test_arbitrary_authorization_never_raises_nor_passes(value: str) -> None:
    assert not authenticator().verify(register(authorization=value), now=1.0).ok


def test_hashed_passwords_work_per_algorithm() -> None:
    stored = HashedPassword({"MD5": hash_password("1001", REALM, "demo1001", "MD5")})
    auth = DigestAuthenticator(REALM, SECRET, credentials=lambda u: stored if u == "1001" else None)
    challenge = first_challenge(auth)
    md5 = sipp_authorization(challenge["MD5"])
    assert auth.verify(register(authorization=md5), now=1.0).ok
    sha = sipp_authorization(challenge["SHA-256"], algorithm="SHA-256")
    assert auth.verify(register(authorization=sha), now=1.0).failure is AuthFailure.ALGORITHM


def test_the_nonce_count_table_is_bounded_and_forgets_safely() -> None:
    auth = authenticator(max_tracked_nonces=2)
    first, second, third = (first_challenge(auth)["MD5"] for _ in range(3))
    for challenge in (first, second, third):
        assert auth.verify(register(authorization=sipp_authorization(challenge)), now=1.0).ok
    # The first nonce's history was dropped: its next use must not pass as fresh.
    again = sipp_authorization(first, nc="00000002")
    assert auth.verify(register(authorization=again), now=1.0).failure is AuthFailure.STALE
    newer = sipp_authorization(third, nc="00000002")
    assert auth.verify(register(authorization=newer), now=1.0).ok


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(DigestError):
        authenticator(algorithms=("SHA-1",))
    with pytest.raises(DigestError):
        authenticator(algorithms=())


MARKER = "S3cret-Marker-7731"


def test_passwords_and_ha1_never_show(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    passwords = {"1001": MARKER}
    auth = DigestAuthenticator(REALM, SECRET, credentials=passwords.get)
    ha1s = {h(a, f"1001:{REALM}:{MARKER}") for a in ("MD5", "SHA-256")}
    seen = [repr(auth), str(auth)]
    challenge = first_challenge(auth)["MD5"]
    for password in (MARKER, "wrong"):
        for kwargs in ({}, {"uri": "sip:elsewhere"}, {"nc": "zz"}):
            authz = sipp_authorization(challenge, password=password, **kwargs)  # type: ignore[arg-type]
            seen.append(repr(auth.verify(register(authorization=authz), now=1.0)))
            seen.append(repr(auth.verify(register(authorization=authz), now=10_000.0)))
    stored = HashedPassword({"MD5": next(iter(ha1s))})
    seen += [repr(stored), str(stored)]
    seen += [r.getMessage() for r in caplog.records]
    text = "\n".join(seen)
    assert MARKER not in text
    assert not any(ha1 in text for ha1 in ha1s)
    assert caplog.records  # the failures were logged, just without secrets


def test_lone_surrogates_in_secrets_or_credentials_never_raise() -> None:
    # Text that cannot be UTF-8 encoded must not escape as a UnicodeEncodeError, whose
    # `object` would hold the password.
    passwords = {"1001": "pass\ud800word"}
    auth = DigestAuthenticator(REALM, SECRET, credentials=passwords.get)
    challenge = first_challenge(auth)["MD5"]
    offer = f'Digest realm="{REALM}", nonce="{challenge["nonce"]}", qop="auth"'
    right = answer_challenge(
        offer, "REGISTER", "sip:127.0.0.1:5060", "1001", "pass\ud800word", cnonce="c", nc=1
    )
    assert auth.verify(register(authorization=right), now=1.0).ok
    odd = sipp_authorization(challenge, nc="00000002").replace('response="', 'response="\ud800')
    assert auth.verify(register(authorization=odd), now=1.0).failure is AuthFailure.BAD_RESPONSE


@given(
    st.text(alphabet=st.characters(), max_size=12), st.text(alphabet=st.characters(), max_size=12)
)
@settings(max_examples=100)
def test_any_username_and_password_text_is_handled(user: str, password: str) -> None:
    auth = DigestAuthenticator(REALM, SECRET, credentials={user: password}.get)
    challenge = first_challenge(auth)["SHA-256"]
    value = answer_challenge(
        f'Digest realm="{REALM}", nonce="{challenge["nonce"]}", qop="auth", algorithm=SHA-256',
        "REGISTER",
        "sip:127.0.0.1:5060",
        user,
        password,
        cnonce="c",
        nc=1,
    )
    result = auth.verify(register(authorization=value), now=1.0)
    assert result.ok or result.failure is AuthFailure.MALFORMED
