"""Service notices: an optional outage message per service, set and cleared at runtime.

Tender flow step 7: callers are told promptly about known service interruptions, so
a notice node plays the service's notice (if one is set) before the menu. The HTTP
API sets a notice from text (rendered to speech in every language by the runtime) or
from an uploaded WAV, under a fresh prompt id; this module is the pure model it
persists, and the source of the engine's notice lookup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from ivr.config import Language, PromptId
from ivr.nodes import NoticeLookup


class Notice(BaseModel):
    """One service's notice: the prompt to play and, optionally, when it lapses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: PromptId
    text: dict[Language, str] = Field(default_factory=dict)
    until: AwareDatetime | None = None

    def active(self, at_utc: dt.datetime) -> bool:
        return self.until is None or at_utc < self.until


def notice_prompt_id(service: str, revision: int) -> str:
    """A fresh prompt id per revision, so a cached rendering is never replayed."""
    return f"notice-{service}-{revision}"


_NOTICES = TypeAdapter(dict[str, Notice])


class Notices:
    """Current notices per service; plain data with a JSON round trip."""

    def __init__(self, initial: Mapping[str, Notice] | None = None) -> None:
        self._by_service: dict[str, Notice] = dict(initial or {})

    def set(self, service: str, notice: Notice) -> None:
        self._by_service[service] = notice

    def clear(self, service: str) -> bool:
        """Remove a service's notice; return whether there was one."""
        return self._by_service.pop(service, None) is not None

    def active(self, service: str, at_utc: dt.datetime) -> Notice | None:
        notice = self._by_service.get(service)
        return notice if notice is not None and notice.active(at_utc) else None

    def lookup(self, service: str, at_utc: dt.datetime) -> NoticeLookup:
        """The ``notice`` callable for an ``IvrRun``: reads the store when asked."""

        def current() -> str | None:
            notice = self.active(service, at_utc)
            return notice.prompt if notice is not None else None

        return current

    def to_json(self) -> bytes:
        return _NOTICES.dump_json(self._by_service)

    @classmethod
    def from_json(cls, data: bytes | str) -> Notices:
        """Load persisted notices; raises pydantic's ``ValidationError`` on bad data."""
        return cls(_NOTICES.validate_json(data))
