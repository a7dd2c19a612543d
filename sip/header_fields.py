"""Header fields of a SIP message: names and the ordered multi-map (RFC 3261 §7.3).

Names are matched case-insensitively with compact forms expanded (§7.3.1, §7.3.3); the
multi-map keeps each field's name as written and its raw value, so a message built from
it round-trips byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sip.headers import split_values

# RFC 3261 §7.3.3 and the IANA registry: compact form -> full name (lower case).
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Header fields whose value is a comma-separated list (RFC 3261 §7.3.1) and that we
# split into elements when asked for their values.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "content-language",
        "in-reply-to",
        "warning",
        "error-info",
        "alert-info",
        "call-info",
        "history-info",
        "diversion",
        "p-asserted-identity",
    }
)


def canonical_name(name: str) -> str:
    """Return the lower-case full name of a header field (compact forms expanded)."""
    known = _CANONICAL.get(name)
    if known is not None:
        return known
    key = name.lower()
    key = COMPACT_FORMS.get(key, key)
    if len(_CANONICAL) < _CANONICAL_LIMIT:
        # Bounded so that a peer sending random header names cannot grow it forever.
        _CANONICAL[name] = key
    return key


COMMON_NAMES = (
    "Via", "From", "To", "Call-ID", "Call-Id", "CSeq", "Max-Forwards", "Contact", "Route",
    "Record-Route", "Content-Type", "Content-Length", "Expires", "Min-Expires", "Allow",
    "Supported", "Require", "Proxy-Require", "Unsupported", "Accept", "User-Agent",
    "Server", "Authorization", "Proxy-Authorization", "WWW-Authenticate",
    "Proxy-Authenticate", "Date", "Timestamp", "Subject", "Organization", "Warning",
    "Reason", "Event", "Allow-Events", "Refer-To", "Referred-By", "Replaces",
    "Session-Expires", "Min-SE", "P-Asserted-Identity", "Privacy", "Diversion",
    "Retry-After", "Accept-Encoding", "Accept-Language", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Subscription-State", "RSeq", "RAck",
    "Authentication-Info", "Alert-Info", "Call-Info", "Error-Info", "In-Reply-To",
    "MIME-Version", "Priority", "Reply-To", "History-Info",
)  # fmt: skip
"""Header names as phones usually write them; always in the name caches below."""

_CANONICAL: dict[str, str] = {}
_CANONICAL_LIMIT = 4096


def common_spellings() -> tuple[str, ...]:
    """COMMON_NAMES and the compact forms, as written and in lower (upper) case."""
    compact = (*COMPACT_FORMS, *(name.upper() for name in COMPACT_FORMS))
    return (*COMMON_NAMES, *(name.lower() for name in COMMON_NAMES), *compact)


_CANONICAL.update((spelling, canonical_name(spelling)) for spelling in common_spellings())


@dataclass(slots=True)
class Headers:
    """An ordered multi-map of header fields, matched case-insensitively (RFC 3261 §7.3.1)."""

    fields: list[tuple[str, str, str]] = field(default_factory=list)
    """(canonical name, name as written, raw value) in wire order."""

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        """Build from (name, value) pairs."""
        return cls([(canonical_name(n), n, v) for n, v in pairs])

    def get(self, name: str) -> str | None:
        """The raw value of the first field with this name, or None."""
        key = _CANONICAL.get(name) or canonical_name(name)
        for k, _, v in self.fields:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """The raw values of every field with this name, in order."""
        key = canonical_name(name)
        return [v for k, _, v in self.fields if k == key]

    def values(self, name: str) -> list[str]:
        """Every element of a list header, fields split at top-level commas (§7.3.1)."""
        out: list[str] = []
        for raw in self.get_all(name):
            out.extend(split_values(raw))
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def add(self, name: str, value: str) -> None:
        """Append a field."""
        self.fields.append((canonical_name(name), name, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others (a proxy's new top Via)."""
        self.fields.insert(0, (canonical_name(name), name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field with this name by one, at the first one's place."""
        key = canonical_name(name)
        for i, (k, _, _) in enumerate(self.fields):
            if k == key:
                self.fields[i] = (key, name, value)
                self.fields[i + 1 :] = [f for f in self.fields[i + 1 :] if f[0] != key]
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Remove every field with this name."""
        key = canonical_name(name)
        self.fields = [f for f in self.fields if f[0] != key]

    def copy(self) -> Headers:
        """A shallow copy (the tuples are immutable)."""
        return Headers(list(self.fields))
