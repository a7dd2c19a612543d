"""Recognise switchboard and "ricaduta" (overflow) calls for Agenzia del Lavoro.

Agenzia's internal extensions that ring 3–4 times unanswered divert the call to the
contact center; the PBX says so with a Diversion header (RFC 5806) or with
History-Info (RFC 7044, with the RFC 4458 ``cause`` URI parameter). Calls from the
provincial switchboard are recognised by their configured source numbers. Both go to
Agenzia's queue, tagged so that reports can tell them apart.

This module reads header VALUE strings (what follows ``Diversion:`` or
``History-Info:``), so it knows nothing of the SIP message model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field

from routing.dialplan import InvalidNumberError, normalise

logger = logging.getLogger(__name__)

Tag = Literal["switchboard", "ricaduta"]

# RFC 4458 "cause" URI parameter (redirecting reasons, from ITU-T Q.732) -> the
# RFC 5806 reason vocabulary, so that both headers are judged by one list of reasons.
CAUSE_REASONS: dict[int, str] = {
    302: "unconditional",
    404: "unknown",
    408: "no-answer",
    480: "deflection",  # deflection, immediate response
    486: "user-busy",
    487: "deflection",  # deflection during alerting
    503: "unavailable",  # not reachable
}

# SIP status codes in an escaped Reason header (RFC 7044 §10.2: why a target failed).
RESPONSE_REASONS: dict[int, str] = {
    404: "unknown",
    408: "no-answer",
    480: "unavailable",
    486: "user-busy",
    487: "no-answer",  # the PBX cancelled the ringing extension after its ring timer
    503: "unavailable",
    600: "user-busy",
}


class RicadutaConfig(BaseModel):
    """Where switchboard and ricaduta calls go, and how they are recognised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = "agenzia-lavoro"
    queue: str = "agenzia-lavoro"
    switchboard_numbers: list[str] = Field(default_factory=list)
    # Diverting parties that count as Agenzia's: numbers, or prefixes ending in "*".
    # Empty means any diverting party counts.
    extensions: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=lambda: ["no-answer", "user-busy", "unavailable"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Diverted:
    """One diversion read from Diversion or History-Info."""

    diverted_from: str | None
    reason: str
    counter: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirection:
    """Verdict: the call is a switchboard or ricaduta call and goes to ``queue``."""

    tag: Tag
    service: str
    queue: str
    reason: str | None = None
    diverted_from: str | None = None
    counter: int | None = None


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting ``<...>`` and quoted strings.

    RFC 3261 §7.3.1: a header with a comma-separated list may be combined into one.
    """
    parts: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in "<>":
            depth = 1 if char == "<" else 0
        elif char == "," and not quoted and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _name_addr(entry: str) -> tuple[str, dict[str, str]]:
    """Return the URI inside ``<>`` (or the bare URI) and the header parameters after it."""
    if "<" in entry and ">" in entry:
        uri = entry[entry.index("<") + 1 : entry.index(">")]
        rest = entry[entry.index(">") + 1 :]
    else:
        uri, _, rest = entry.partition(";")
        rest = ";" + rest
    return uri.strip(), _params(rest)


def _params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for raw in text.split(";"):
        name, _, value = raw.partition("=")
        if name.strip():
            params[name.strip().lower()] = value.strip().strip('"')
    return params


def _uri_user(uri: str) -> str | None:
    """The user part of a sip:/sips:/tel: URI, unescaped (RFC 3261 §19.1.2)."""
    _, sep, rest = uri.partition(":")
    if not sep:
        return None
    user = rest.split("?", 1)[0]
    if "@" in user:
        user = user.split("@", 1)[0]
    elif not uri.lower().startswith("tel:"):
        return None
    return unquote(user.split(";", 1)[0]) or None


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def parse_diversion(values: Iterable[str]) -> list[Diverted]:
    """Parse Diversion header values (RFC 5806), most recent diversion first."""
    found: list[Diverted] = []
    for value in values:
        for entry in split_header_values(value):
            uri, params = _name_addr(entry)
            reason = params.get("reason", "unknown").lower()
            counter = _int_or_none(params.get("counter"))
            found.append(Diverted(diverted_from=_uri_user(uri), reason=reason, counter=counter))
    return found


def _uri_cause(uri: str) -> int | None:
    """The RFC 4458 ``cause`` URI parameter of a History-Info targeted-to URI."""
    params = _params(uri.split("?", 1)[0].partition(";")[2])
    return _int_or_none(params.get("cause"))


def _reason_cause(uri: str) -> int | None:
    """Status code of an escaped Reason header in the URI (RFC 7044 §10.2)."""
    headers = uri.partition("?")[2]
    for header in headers.split("&"):
        name, _, value = header.partition("=")
        if name.lower() == "reason":
            return _int_or_none(_params(unquote(value).partition(";")[2]).get("cause"))
    return None


def parse_history_info(values: Iterable[str]) -> list[Diverted]:
    """Parse History-Info values (RFC 7044 §4.1) into diversions, most recent first.

    An entry whose targeted-to URI carries ``cause`` (RFC 4458) was reached by
    retargeting; the diverting party is its parent entry by ``index`` (RFC 7044
    §10.3), the one whose request failed. Without ``cause``, an escaped Reason header
    in an entry's URI (RFC 7044 §10.2) gives the response that made us leave it.
    """
    entries = [_name_addr(entry) for value in values for entry in split_header_values(value)]
    found: list[Diverted] = []
    for position, (uri, params) in enumerate(entries):
        cause = _uri_cause(uri)
        if cause is not None:
            party = _parent_user(entries, position, params.get("index"))
            reason = CAUSE_REASONS.get(cause, "unknown")
        elif position + 1 < len(entries) and _uri_cause(entries[position + 1][0]) is None:
            status = _reason_cause(uri)
            if status is None:
                continue
            party, reason = _uri_user(uri), RESPONSE_REASONS.get(status, "unknown")
        else:
            continue
        found.append(Diverted(diverted_from=party, reason=reason))
    found.reverse()
    return found


def _parent_user(
    entries: Sequence[tuple[str, dict[str, str]]], position: int, index: str | None
) -> str | None:
    """User part of the parent entry: ``index`` minus its last level, else the previous."""
    if index and "." in index:
        parent = index.rsplit(".", 1)[0]
        for uri, params in entries[:position]:
            if params.get("index") == parent:
                return _uri_user(uri)
    return _uri_user(entries[position - 1][0]) if position > 0 else None


class Classifier:
    """Decides whether a call is a switchboard or ricaduta call, from config."""

    def __init__(self, config: RicadutaConfig, *, country_code: str = "39") -> None:
        self._config = config
        self._country_code = country_code
        self._switchboard = {self._canonical(n) for n in config.switchboard_numbers} - {None}
        self._reasons = {reason.lower() for reason in config.reasons}
        # Extensions may be written short ("4321") or in full ("0461 49*"): compare
        # both the written digits and the canonical E.164 form.
        self._patterns = [self._compile(pattern) for pattern in config.extensions]

    def _canonical(self, number: str) -> str | None:
        try:
            return normalise(number, country_code=self._country_code)
        except InvalidNumberError:
            return None

    def classify(
        self,
        *,
        caller: str | None = None,
        diversion: Sequence[str] = (),
        history_info: Sequence[str] = (),
    ) -> Redirection | None:
        """Classify a call from its caller (number or URI) and header value strings."""
        if caller is not None and self._canonical(caller) in self._switchboard:
            return self._redirection("switchboard", None)
        diverted = parse_diversion(diversion) + parse_history_info(history_info)
        for item in diverted:
            if item.reason in self._reasons and self._is_extension(item.diverted_from):
                return self._redirection("ricaduta", item)
        return None

    def _redirection(self, tag: Tag, item: Diverted | None) -> Redirection:
        return Redirection(
            tag=tag,
            service=self._config.service,
            queue=self._config.queue,
            reason=item.reason if item else None,
            diverted_from=item.diverted_from if item else None,
            counter=item.counter if item else None,
        )

    def _is_extension(self, party: str | None) -> bool:
        if not self._patterns:
            return True
        if party is None:
            return False
        forms = self._forms(party)
        for prefix, pattern_forms in self._patterns:
            if prefix and any(f.startswith(p) for f in forms for p in pattern_forms):
                return True
            if not prefix and forms & pattern_forms:
                return True
        return False

    def _forms(self, number: str) -> set[str]:
        """A number as written (digits only) and in canonical form, when it has one."""
        plain = number.replace(" ", "")
        canonical = self._canonical(plain)
        return {plain, canonical} if canonical else {plain}

    def _compile(self, pattern: str) -> tuple[bool, frozenset[str]]:
        prefix = pattern.endswith("*")
        return prefix, frozenset(self._forms(pattern.rstrip("*")))
