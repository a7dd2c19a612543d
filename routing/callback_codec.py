"""The file of pending callbacks saved across a restart (`routing.callback_store`), as
data: `SavedCallback`, `Lost`, and their JSON form (`encode`, `decode`), version 1:

    {"version": 1, "saved_at": "<UTC>", "callbacks": [{"call_id": ..., "service": ...,
     "sub_service": ..., "queue": ..., "number": ..., "from": ..., "to": ..., "caller": ...,
     "language": ..., "trunk": [host, port], "codec": ..., "priority": 0, "attempts": 0,
     "entered": "<UTC>", "retry_at": "<UTC>" (optional)}]}

The numbers are personal data: the file is written 0600 by the runtime, and nothing here
logs them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sip.errors import ProtocolError
from sip.headers import parse_address

log = logging.getLogger(__name__)

VERSION = 1
"""The file format's version (`version` at the top); another one is not read."""


class CallbackFileError(ValueError):
    """The saved callbacks cannot be read at all (not JSON, another version...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedCallback:
    """What a pending callback needs to be put back in its queue after a restart."""

    call_id: str
    service: str
    sub_service: str | None
    queue: str
    number: str
    """The number to call back (personal data: never logged)."""
    from_header: str
    """The caller's From: the identity the operator's screen pop shows."""
    to_header: str
    """The caller's To: the service number they called, which calls them back."""
    caller: str
    language: str
    trunk: tuple[str, int]
    """Where the call came from (the citizen is dialed there without an outbound trunk)."""
    codec: str
    priority: int
    attempts: int
    entered: datetime
    """The first queue entry, UTC wall time (aware)."""
    retry_at: datetime | None = None
    """After a failed attempt: not to be offered again before (UTC wall time)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Lost:
    """A pending callback that could not be restored, and why."""

    call_id: str
    service: str | None
    sub_service: str | None
    queue: str | None
    reason: str


def encode(callbacks: Sequence[SavedCallback], *, saved_at: datetime) -> bytes:
    """The file's bytes: one JSON object, `version`, `saved_at` and `callbacks`."""
    document = {
        "version": VERSION,
        "saved_at": _wall_text(saved_at),
        "callbacks": [_entry(item) for item in callbacks],
    }
    return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"


def _entry(item: SavedCallback) -> dict[str, Any]:
    return {
        "call_id": item.call_id,
        "service": item.service,
        "sub_service": item.sub_service,
        "queue": item.queue,
        "number": item.number,
        "from": item.from_header,
        "to": item.to_header,
        "caller": item.caller,
        "language": item.language,
        "trunk": [item.trunk[0], item.trunk[1]],
        "codec": item.codec,
        "priority": item.priority,
        "attempts": item.attempts,
        "entered": _wall_text(item.entered),
    } | ({"retry_at": _wall_text(item.retry_at)} if item.retry_at is not None else {})


def _wall_text(wall: datetime) -> str:
    return wall.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def decode(data: bytes) -> tuple[list[SavedCallback], list[Lost]]:
    """The callbacks of a saved file, and the entries that cannot be restored (those
    without even a call id are left out: nothing can end them in the log)."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CallbackFileError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise CallbackFileError(f"not a version {VERSION} callbacks file")
    entries = document.get("callbacks")
    if not isinstance(entries, list):
        raise CallbackFileError("no list of callbacks")
    good: list[SavedCallback] = []
    bad: list[Lost] = []
    for entry in entries:
        try:
            good.append(_parse_entry(entry))
        except (TypeError, ValueError, KeyError, ProtocolError):
            if isinstance(entry, dict) and isinstance(entry.get("call_id"), str):
                bad.append(_unreadable(entry))
    if nameless := len(entries) - len(good) - len(bad):
        log.warning("restart: %d saved callbacks lost: no call id", nameless)
    return good, bad


def _parse_entry(entry: Any) -> SavedCallback:
    host, port = entry["trunk"]
    item = SavedCallback(
        call_id=_text(entry, "call_id"),
        service=_text(entry, "service"),
        sub_service=None if entry.get("sub_service") is None else _text(entry, "sub_service"),
        queue=_text(entry, "queue"),
        number=_text(entry, "number"),
        from_header=_text(entry, "from"),
        to_header=_text(entry, "to"),
        caller=_text(entry, "caller", empty=True),
        language=_text(entry, "language"),
        trunk=(_text({"trunk": host}, "trunk"), _integer({"trunk": port}, "trunk")),
        codec=_text(entry, "codec"),
        priority=_integer(entry, "priority"),
        attempts=_integer(entry, "attempts"),
        entered=_wall(entry["entered"]),
        retry_at=None if entry.get("retry_at") is None else _wall(entry["retry_at"]),
    )
    parse_address(item.from_header)  # both are read again when the call is offered
    parse_address(item.to_header)
    return item


def _text(entry: dict[str, Any], key: str, *, empty: bool = False) -> str:
    value = entry[key]
    if not isinstance(value, str) or not (value or empty):
        raise ValueError(key)
    return value


def _integer(entry: dict[str, Any], key: str) -> int:
    value = entry[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(key)
    return value


def _wall(value: Any) -> datetime:
    wall = datetime.fromisoformat(value)
    if wall.tzinfo is None:
        raise ValueError("entered has no time zone")
    return wall.astimezone(UTC)


def _unreadable(entry: dict[str, Any]) -> Lost:
    def optional(key: str) -> str | None:
        value = entry.get(key)
        return value if isinstance(value, str) and value else None

    return Lost(
        call_id=entry["call_id"],
        service=optional("service"),
        sub_service=optional("sub_service"),
        queue=optional("queue"),
        reason="unreadable entry",
    )
