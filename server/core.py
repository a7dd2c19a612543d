"""The switch's pure core as the runtime sees it: endpoint + call control behind one timer.

`Core` has the sans-I/O shape the `Driver` drives: datagrams in, datagrams out, one
deadline. It routes the endpoint's events to call control and to telemetry, and turns
registration changes into operator reachability for the ACD.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from routing.b2bua import B2bua
from routing.media_plane import MediaEvent
from server import callback_file
from sip.endpoint import (
    DatagramDropped,
    Endpoint,
    EndpointEvent,
    RegistrationsChanged,
    RequestAnswered,
)

Addr = tuple[str, int]


class Core:
    """Endpoint and B2BUA, driven together."""

    def __init__(
        self,
        endpoint: Endpoint,
        b2bua: B2bua,
        observe: Callable[[EndpointEvent], None],
    ) -> None:
        self.endpoint = endpoint
        self.b2bua = b2bua
        self.observe = observe

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """A SIP datagram."""
        self.endpoint.receive_datagram(data, addr, now=now)
        self._dispatch(now=now)

    def handle_timer(self, *, now: float) -> None:
        """Fire whatever is due in the endpoint and in call control."""
        self.endpoint.handle_timer(now=now)
        self.b2bua.handle_timer(now=now)
        self._dispatch(now=now)

    def media_event(self, event: MediaEvent, *, now: float) -> None:
        """A fact from the media runtime."""
        self.b2bua.media_event(event, now=now)
        self._dispatch(now=now)

    def get_timer(self) -> float | None:
        """The earliest deadline of both."""
        due = [t for t in (self.endpoint.get_timer(), self.b2bua.get_timer()) if t is not None]
        return min(due) if due else None

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """Everything queued, in order."""
        return self.endpoint.datagrams_to_send()

    def _dispatch(self, *, now: float) -> None:
        while (event := self.endpoint.next_event()) is not None:
            self.observe(event)
            if isinstance(event, RegistrationsChanged):
                reachable = bool(self.endpoint.registrar.lookup(event.user))
                self.b2bua.operator_reachable(event.user, reachable, now=now)
            elif not isinstance(event, RequestAnswered | DatagramDropped):
                # The endpoint's own answers are for telemetry only.
                self.b2bua.endpoint_event(event, now=now)

    # -- what the app asks ---------------------------------------------------------------

    def registrations(self) -> int:
        """Registered operator contacts."""
        return self.endpoint.registrations()

    def active_calls(self) -> int:
        """Calls in progress."""
        return self.b2bua.active_calls

    def stop_accepting(self) -> None:
        """Refuse new calls."""
        self.endpoint.stop_accepting()

    def hang_up_all(self, *, reason: str, now: float) -> None:
        """End every call still up (BYE both legs): the last step of a shutdown."""
        for call in self.b2bua.calls.live():
            self.b2bua.hang_up(call, reason=reason, now=now)

    def save_pending_callbacks(self, data_dir: Path, *, now: float) -> int:
        """The callbacks still waiting for their turn outlive this process (the ACD is in
        memory): saved in `data_dir` for the next start, or, if they cannot be, logged
        and ended in the event log. After `hang_up_all`, which may send a ringing
        callback back to waiting."""
        return callback_file.save_pending(data_dir, self.b2bua, now=now)

    def restore_pending_callbacks(self, data_dir: Path, *, now: float) -> int:
        """At start, before serving: the callbacks a clean shutdown saved in `data_dir`
        are back in their queues, in their places."""
        return callback_file.restore_pending(data_dir, self.b2bua, now=now)
