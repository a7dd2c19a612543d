"""The stateless nonce: round trips, and nothing else ever decodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.authenticator import NonceCodec
from sip.digest import DigestError

CODEC = NonceCodec(b"k" * 32, "centralino")
instants = st.floats(min_value=0, max_value=1e9, allow_nan=False)
serials = st.integers(min_value=0, max_value=2**64 - 1)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/="


@given(instants, serials)
def test_round_trip_to_the_millisecond(issued_at: float, serial: int) -> None:
    nonce = CODEC.encode(issued_at, serial)
    assert len(nonce) == NonceCodec.LENGTH
    decoded = CODEC.decode(nonce)
    assert decoded is not None
    assert decoded[1] == serial
    assert abs(decoded[0] - issued_at) <= 0.0005 + 1e-9


@given(instants, serials, st.data())
def test_any_changed_character_is_refused(
    issued_at: float, serial: int, data: st.DataObject
) -> None:
    nonce = CODEC.encode(issued_at, serial)
    index = data.draw(st.integers(min_value=0, max_value=len(nonce) - 1))
    char = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != nonce[index]))
    assert CODEC.decode(nonce[:index] + char + nonce[index + 1 :]) is None


@given(st.text(max_size=80))
def test_arbitrary_text_never_decodes_nor_raises(text: str) -> None:
    assert CODEC.decode(text) is None


@given(st.text(alphabet=ALPHABET, min_size=43, max_size=43))
def test_well_formed_forgeries_are_refused(text: str) -> None:
    assert CODEC.decode(text) is None


@given(instants, serials)
def test_another_secret_or_realm_refuses_our_nonces(issued_at: float, serial: int) -> None:
    nonce = CODEC.encode(issued_at, serial)
    assert NonceCodec(b"j" * 32, "centralino").decode(nonce) is None
    assert NonceCodec(b"k" * 32, "other").decode(nonce) is None


def test_only_canonical_encodings_decode() -> None:
    nonce = next(n for n in (CODEC.encode(12.5, s) for s in range(100)) if "-" in n or "_" in n)
    assert CODEC.decode(nonce) is not None
    # '+' and '/' are the standard alphabet's spelling of '-' and '_': not ours.
    assert CODEC.decode(nonce.replace("-", "+").replace("_", "/")) is None
    assert CODEC.decode(nonce + "=") is None
    assert CODEC.decode(nonce.swapcase()) is None


def test_short_secret_is_refused() -> None:
    with pytest.raises(DigestError):
        NonceCodec(b"short", "centralino")
    assert "k" * 4 not in repr(CODEC)
