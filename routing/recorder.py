"""How call control writes the event log: one call, no I/O (the runtime stamps wall time)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from metrics.events import EventKind


class Recorder(Protocol):
    """Append one fact to the event log; the runtime adds the UTC wall time of `at`."""

    def __call__(
        self,
        kind: EventKind,
        *,
        at: float,
        call_id: str | None = None,
        service: str | None = None,
        sub_service: str | None = None,
        queue: str | None = None,
        operator: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None: ...
