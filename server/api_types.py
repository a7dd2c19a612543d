"""What the HTTP API needs from the running switch, and the bodies it accepts.

`SwitchApi` is the one dependency of `server.http.create_app`: the runtime implements it
(`server.api_runtime.ApiRuntime`), tests implement it over a bare ACD engine and
calendar. Request bodies are pydantic models: FastAPI answers 422 with the offending
field for anything that does not validate, before any handler runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from acd.engine import AcdEngine
from ivr.config import ServiceConfig
from routing.calendar import Calendar

if TYPE_CHECKING:
    from server.api_notices import NoticeStore
    from server.api_services import OverrideStore
    from server.mailer import Mailer

__all__ = [
    "CallbackForm",
    "DispositionBody",
    "NoticeBody",
    "OverrideBody",
    "PauseBody",
    "SwitchApi",
]

LOCAL_ZONE = ZoneInfo("Europe/Rome")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SwitchApi(Protocol):
    """The running switch as the HTTP handlers see it.

    Handlers run on the event loop (they are `async def`), so they may touch the ACD
    engine directly; after changing it they call `settle()`, which lets call control
    carry out what the engine queued (an OfferCall becomes an INVITE) and sends it.
    """

    @property
    def acd(self) -> AcdEngine: ...

    @property
    def calendar(self) -> Calendar: ...

    @property
    def services(self) -> Mapping[str, ServiceConfig]: ...

    @property
    def overrides(self) -> OverrideStore: ...

    @property
    def notices(self) -> NoticeStore: ...

    @property
    def mailer(self) -> Mailer | None: ...

    def now(self) -> float:
        """The loop's monotonic clock (the `now` of every engine input)."""
        ...

    def wall(self) -> datetime:
        """The aware UTC instant of `now()`."""
        ...

    def settle(self) -> None:
        """Carry out and transmit whatever the core queued."""
        ...

    def health(self) -> dict[str, Any]: ...

    def metrics(self) -> bytes: ...


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


OneLine = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PauseBody(_Body):
    """`POST /api/operators/{id}/pause`."""

    reason: Annotated[str, StringConstraints(max_length=100)] | None = None


class DispositionBody(_Body):
    """`POST /api/calls/{call_id}/disposition`."""

    disposition: Literal["resolved", "escalated"]


class OverrideBody(_Body):
    """`PUT /api/services/{service}/override`: forced open or closed until an instant."""

    state: Literal["open", "closed"]
    until: AwareDatetime


Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]


class NoticeBody(_Body):
    """`PUT /api/services/{service}/notice`: the text to speak, per language."""

    text: dict[Language, Annotated[str, StringConstraints(min_length=1, max_length=2000)]] = Field(
        min_length=1
    )
    until: AwareDatetime | None = None


class CallbackForm(_Body):
    """The callback form (tender Appendix 2, flow step 5) the operator fills in when
    the second-level referent cannot be reached."""

    service: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
    surname: OneLine
    name: OneLine
    called_at: datetime
    """Date and time of the call; without an offset it is Italian local time."""
    person_sought: OneLine
    reason: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ./()-]{2,29}$")]
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    operator: Annotated[str, StringConstraints(max_length=64)] | None = None
    call_id: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("surname", "name", "person_sought", "operator", "call_id")
    @classmethod
    def _single_line(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("must be one line of text")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("called_at")
    @classmethod
    def _local(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=LOCAL_ZONE)
