"""Dial plan: dialed number -> service id.

The PBX of the Province trunks calls to us with the dialed number in the Request-URI
user part (RFC 3261 §19.1.1, ``sip:800228040@host;user=phone``), sometimes as a
``tel:`` URI (RFC 3966) and in any of the Italian spellings: national
(``800228040``, ``0461800133``), international with ``+`` or with the ``00`` prefix
(``+39800228040``, ``0039800228040``). Configuration may write numbers with spaces
(``800 228040``). Every spelling is reduced to one canonical E.164 form (``+39...``),
so the lookup is a dictionary access.

Only ``+`` and ``00`` mark an international number: a bare ``39...`` is national (an
Italian mobile number starts with 3), so it is never read as a country code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import unquote

logger = logging.getLogger(__name__)

# RFC 3966 §5.1.1: visual-separator = "-" / "." / "(" / ")"; spaces are our config's own.
_VISUAL_SEPARATORS = re.compile(r"[\s\-.()]")
_DIGITS = re.compile(r"\+?[0-9]{2,20}")
_MAX_E164_DIGITS = 15  # ITU-T E.164: at most 15 digits after the "+"


class InvalidNumberError(ValueError):
    """A dialed or configured number that cannot be read as a telephone number."""


class DuplicateNumberError(ValueError):
    """Two services claim the same number once normalised."""


def _strip_uri(raw: str) -> tuple[str, str | None]:
    """Return the number part of a SIP/tel URI or bare string, and its phone-context."""
    text = raw.strip().strip("<>")
    scheme, sep, rest = text.partition(":")
    if sep and scheme.lower() in {"sip", "sips", "tel"}:
        text = rest
    text = text.split("@", 1)[0]
    # RFC 3261 §19.1.2: "+" may arrive escaped as %2B in a user part.
    number, *params = unquote(text).split(";")
    context = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "phone-context":
            context = value.strip()
    return number, context


def normalise(raw: str, *, country_code: str = "39") -> str:
    """Return the canonical E.164 form (``+39800228040``) of a dialed number.

    Accepts a bare number, a Request-URI user part, or a whole ``sip:``/``tel:`` URI.
    A local ``tel:`` number with a global ``phone-context`` (RFC 3966 §5.1.5) is
    prefixed with it. Raises :class:`InvalidNumberError` on anything else.
    """
    number, context = _strip_uri(raw)
    number = _VISUAL_SEPARATORS.sub("", number)
    if not _DIGITS.fullmatch(number):
        raise InvalidNumberError(f"not a telephone number: {raw!r}")
    if not number.startswith("+") and context and context.startswith("+"):
        number = _VISUAL_SEPARATORS.sub("", context) + number
    if number.startswith("+"):
        canonical = number
    elif number.startswith("00"):
        canonical = "+" + number[2:]
    else:
        canonical = f"+{country_code}{number}"
    if len(canonical) - 1 > _MAX_E164_DIGITS or not canonical[1:].isdigit():
        raise InvalidNumberError(f"not an E.164 number: {raw!r}")
    return canonical


class DialPlan:
    """Maps canonical numbers to service ids; built once from configuration."""

    def __init__(self, numbers: Mapping[str, str], *, country_code: str = "39") -> None:
        """``numbers`` maps a number in any accepted spelling to a service id.

        Raises :class:`InvalidNumberError` for an unreadable number and
        :class:`DuplicateNumberError` when two spellings of one number name two services.
        """
        self._country_code = country_code
        self._services: dict[str, str] = {}
        for raw, service in numbers.items():
            self._add(raw, service)

    @classmethod
    def from_services(
        cls, services: Mapping[str, list[str]], *, country_code: str = "39"
    ) -> DialPlan:
        """Build from ``{service_id: [number, ...]}``, the shape of ``services:`` config."""
        plan = cls({}, country_code=country_code)
        for service, numbers in services.items():
            for raw in numbers:
                plan._add(raw, service)
        return plan

    def _add(self, raw: str, service: str) -> None:
        canonical = normalise(raw, country_code=self._country_code)
        known = self._services.get(canonical)
        if known is not None and known != service:
            raise DuplicateNumberError(f"{raw!r} is both {known!r} and {service!r}")
        self._services[canonical] = service

    def lookup(self, dialed: str) -> str | None:
        """Return the service id for a dialed number, or None (the B2BUA answers 404)."""
        try:
            canonical = normalise(dialed, country_code=self._country_code)
        except InvalidNumberError:
            logger.debug("unreadable dialed number %r", dialed)
            return None
        return self._services.get(canonical)

    def numbers(self) -> dict[str, str]:
        """Return a copy of the canonical number -> service id table."""
        return dict(self._services)
