"""DTMF carried in SIP INFO bodies (RFC 6086 INFO; de-facto body formats).

- ``application/dtmf-relay`` (Cisco style): ``Signal=5\\r\\nDuration=160`` — keys are
  case-insensitive, ``Duration`` is in milliseconds and optional; some gateways send
  ``Signal=10``/``11`` for ``*``/``#`` (RFC 4733 event codes).
- ``application/dtmf``: the key alone (``5``), or its RFC 4733 event code.

A malformed body raises `DtmfInfoError`, which the caller answers with 400 or 415.
"""

from __future__ import annotations

from typing import Final

from media.telephone_event import DIGITS, DigitReceived

__all__ = ["CONTENT_TYPES", "DEFAULT_DURATION_MS", "DtmfInfoError", "parse_dtmf_info"]

CONTENT_TYPES: Final = frozenset({"application/dtmf-relay", "application/dtmf"})
DEFAULT_DURATION_MS: Final = 250
_MAX_DURATION_MS: Final = 60_000
_MAX_BODY: Final = 1024


class DtmfInfoError(ValueError):
    """The INFO body is not a DTMF body we understand."""


def parse_dtmf_info(content_type: str, body: bytes | str, *, now: float) -> DigitReceived:
    """The key press in an INFO body of type ``application/dtmf-relay`` or ``application/dtmf``."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        raise DtmfInfoError(f"unsupported DTMF content type {content_type!r}")
    text = _text(body)
    if media_type == "application/dtmf":
        return DigitReceived(digit=_digit(text.strip()), duration_ms=DEFAULT_DURATION_MS, at=now)
    fields = _relay_fields(text)
    if "signal" not in fields:
        raise DtmfInfoError("dtmf-relay body without a Signal line")
    duration = _duration(fields.get("duration"))
    return DigitReceived(digit=_digit(fields["signal"]), duration_ms=duration, at=now)


def _text(body: bytes | str) -> str:
    if len(body) > _MAX_BODY:
        raise DtmfInfoError(f"DTMF body of {len(body)} bytes is too long")
    if isinstance(body, str):
        return body
    try:
        return body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DtmfInfoError("DTMF body is not ASCII") from exc


def _relay_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        key = name.strip().lower()
        if not sep or not key:
            raise DtmfInfoError(f"dtmf-relay line without name=value: {line!r}")
        if key in fields:
            raise DtmfInfoError(f"dtmf-relay field {name.strip()!r} given twice")
        fields[key] = value.strip()
    return fields


def _digit(value: str) -> str:
    if value.isdigit() and value.isascii() and len(value) <= 2 and int(value) < len(DIGITS):
        return DIGITS[int(value)]
    if len(value) == 1 and value.upper() in DIGITS:
        return value.upper()
    raise DtmfInfoError(f"not a DTMF key: {value!r}")


def _duration(value: str | None) -> int:
    if value is None:
        return DEFAULT_DURATION_MS
    if not (value.isascii() and value.isdigit()) or not 0 <= int(value) <= _MAX_DURATION_MS:
        raise DtmfInfoError(f"bad DTMF duration {value!r}")
    return int(value)
