"""Dialogs (RFC 3261 §12), their requests (§12.2, §13.2.2.4) and re-INVITE glare (§14).

A `Dialog` holds the state §12 names: Call-ID, local and remote tags, local and remote
CSeq numbers, remote target, route set. A `DialogSet` finds the dialog of each message,
creates dialogs from 1xx-with-tag and 2xx responses (early and confirmed, both roles),
answers 481 for requests in unknown dialogs, and schedules the §14.1 glare retry in
aioquic's shape (`get_timer`, `handle_timer`, `next_event`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sip.errors import LocalProtocolError
from sip.header_fields import Headers
from sip.headers import Address, parse_address
from sip.message import Request, Response, make_response

# Requests that may change the remote target (§12.2, RFC 3311, RFC 3515, RFC 6665).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "REFER", "SUBSCRIBE", "NOTIFY"})


class Role(Enum):
    """Whose INVITE created the dialog (§12.1)."""

    UAC = "uac"
    UAS = "uas"


class DialogState(Enum):
    """§12: early (1xx with a To tag), confirmed (2xx), terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """§12: Call-ID, local tag and remote tag, from our point of view."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """How to answer a request the dialog layer refuses (481, 500, 491)."""

    status: int
    reason: str
    retry_after: int | None = None

    def response(self, request: Request) -> Response:
        """The response to send (never send one to an ACK)."""
        extra = () if self.retry_after is None else (("Retry-After", str(self.retry_after)),)
        return make_response(request, self.status, extra=extra)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReinviteRetryDue:
    """§14.1: the glare back-off after our re-INVITE got 491 has elapsed: send it again."""

    at: float
    dialog_id: DialogId


def _contact_uri(message: Request | Response) -> str | None:
    contacts = message.headers.values("contact")
    return str(parse_address(contacts[0]).uri) if contacts else None


class Dialog:
    """One dialog (§12.1, §12.2)."""

    __slots__ = (
        "id",
        "invite_pending",
        "local",
        "local_contact",
        "local_cseq",
        "remote",
        "remote_cseq",
        "remote_invite_pending",
        "remote_target",
        "retry_at",
        "role",
        "route_set",
        "state",
    )

    def __init__(
        self, *, role: Role, local: Address, remote: Address, call_id: str, remote_target: str
    ) -> None:
        self.role = role
        self.local = local
        self.remote = remote
        self.id = DialogId(call_id, local.tag or "", remote.tag or "")
        self.remote_target = remote_target
        self.route_set: list[str] = []
        self.local_cseq: int | None = None
        self.remote_cseq: int | None = None
        self.local_contact: str | None = None
        self.state = DialogState.EARLY
        self.invite_pending = False
        self.remote_invite_pending = False
        self.retry_at: float | None = None

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: from a 1xx-with-tag or 2xx to our INVITE; Record-Route reversed."""
        dialog = cls(
            role=Role.UAC,
            local=request.from_,
            remote=response.to,
            call_id=request.call_id,
            remote_target=_contact_uri(response) or request.uri,
        )
        dialog.route_set = list(reversed(response.headers.values("record-route")))
        dialog.local_cseq = request.cseq.seq
        dialog.local_contact = request.headers.get("contact")
        dialog.invite_pending = response.status < 200
        return dialog

    @classmethod
    def as_uas(cls, request: Request, response: Response) -> Dialog:
        """§12.1.1: from our 1xx-with-tag or 2xx to an INVITE; Record-Route in order."""
        dialog = cls(
            role=Role.UAS,
            local=response.to,
            remote=request.from_,
            call_id=request.call_id,
            remote_target=_contact_uri(request) or str(request.from_.uri),
        )
        dialog.route_set = list(request.headers.values("record-route"))
        dialog.remote_cseq = request.cseq.seq
        dialog.local_contact = response.headers.get("contact")
        dialog.remote_invite_pending = response.status < 200
        return dialog

    @property
    def owns_call_id(self) -> bool:
        """The UAC of the initial INVITE generated the Call-ID (§14.1)."""
        return self.role is Role.UAC

    # -- requests we send (§12.2.1) --------------------------------------------------

    def create_request(
        self, method: str, *, body: bytes = b"", extra: tuple[tuple[str, str], ...] = ()
    ) -> Request:
        """A request within the dialog (§12.2.1.1): BYE, re-INVITE, INFO, REFER, NOTIFY...

        The CSeq number goes up by one; no Via (the transaction layer adds one with a new
        branch). Use `create_ack` for ACK; CANCEL is built by the transaction layer.
        """
        if method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"{method} is not built by create_request")
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"dialog {self.id} is terminated")
        if method == "INVITE" and (self.invite_pending or self.remote_invite_pending):
            raise LocalProtocolError("§14.1: an INVITE is already in progress in this dialog")
        self.local_cseq = (self.local_cseq or 0) + 1
        if method == "INVITE":
            self.invite_pending = True
            self.retry_at = None
        return self._build(method, self.local_cseq, body, extra)

    def create_ack(self, cseq: int, *, body: bytes = b"") -> Request:
        """The ACK for a 2xx (§13.2.2.4): built like any in-dialog request, CSeq number of
        the INVITE, method ACK; it gets a new branch, unlike the ACK for a non-2xx."""
        return self._build("ACK", cseq, body, ())

    def _build(
        self, method: str, cseq: int, body: bytes, extra: tuple[tuple[str, str], ...]
    ) -> Request:
        uri, routes = self._request_uri_and_routes()
        headers = Headers.of(*(("Route", route) for route in routes))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local))
        headers.add("To", str(self.remote))
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if self.local_contact is not None and (method in TARGET_REFRESH or method == "ACK"):
            headers.add("Contact", self.local_contact)
        for name, value in extra:
            headers.add(name, value)
        return Request(method, uri, headers, body)

    def _request_uri_and_routes(self) -> tuple[str, list[str]]:
        """§12.2.1.1: loose routing keeps the remote target as Request-URI; a strict
        first hop (no `lr`) becomes the Request-URI and the target goes last in Route."""
        if not self.route_set:
            return self.remote_target, []
        first = parse_address(self.route_set[0]).uri
        if "lr" in first.params:
            return self.remote_target, list(self.route_set)
        return str(first), [*self.route_set[1:], f"<{self.remote_target}>"]

    def receive_response(
        self, method: str, response: Response, *, now: float, fraction: float
    ) -> None:
        """A final response to our in-dialog request (§12.2.1.2, §14.1, §15.1.1)."""
        status = response.status
        if status < 200:
            return
        if status in (408, 481) or method == "BYE":
            self.state = DialogState.TERMINATED
        if method != "INVITE":
            return
        self.invite_pending = False
        if 200 <= status < 300:
            self.remote_target = _contact_uri(response) or self.remote_target
        elif status == 491:
            self.retry_at = now + self.glare_delay(fraction)

    def glare_delay(self, fraction: float) -> float:
        """§14.1: 2.1-4 s if we own the Call-ID, else 0-2 s, in units of 10 ms.

        `fraction` is a uniform draw in [0, 1) from the injected random source.
        """
        if self.owns_call_id:
            return round(2.1 + int(fraction * 191) * 0.01, 2)
        return round(int(fraction * 201) * 0.01, 2)

    # -- requests we receive (§12.2.2) -----------------------------------------------

    def receive_request(self, request: Request) -> Rejection | None:
        """Check and apply an in-dialog request; a Rejection says how to answer instead."""
        if request.method in ("ACK", "CANCEL"):
            return None  # they carry the INVITE's CSeq number (§13.2.2.4, §9.1)
        seq = request.cseq.seq
        if self.remote_cseq is not None and seq < self.remote_cseq:
            return Rejection(status=500, reason="CSeq out of order")
        self.remote_cseq = seq
        if request.method == "INVITE":
            rejection = self._check_glare()
            if rejection is not None:
                return rejection
            self.remote_invite_pending = True
        if request.method in TARGET_REFRESH:
            self.remote_target = _contact_uri(request) or self.remote_target
        if request.method == "BYE":
            self.state = DialogState.TERMINATED
        return None

    def _check_glare(self) -> Rejection | None:
        # §14.2: 491 if our own re-INVITE is pending; 500 + Retry-After if theirs is.
        if self.invite_pending:
            return Rejection(status=491, reason="re-INVITE glare")
        if self.remote_invite_pending:
            return Rejection(status=500, reason="INVITE in progress", retry_after=1)
        return None

    def answered(self, request: Request, response: Response) -> None:
        """The TU sent a final response to an in-dialog request (ends a remote re-INVITE)."""
        if request.method == "INVITE" and response.status >= 200:
            self.remote_invite_pending = False


class DialogSet:
    """Every dialog of one endpoint, found by Call-ID and tags (§12.2.2, §13.2.2.4).

    `fraction` is the injected uniform random source in [0, 1) used for §14.1 back-off.
    """

    def __init__(self, *, fraction: Callable[[], float]) -> None:
        self._fraction = fraction
        self._dialogs: dict[DialogId, Dialog] = {}
        self._events: deque[ReinviteRetryDue] = deque()

    def __len__(self) -> int:
        return len(self._dialogs)

    def get(self, dialog_id: DialogId) -> Dialog | None:
        """The live dialog with this id, if any."""
        return self._dialogs.get(dialog_id)

    def receive_request(self, request: Request) -> Dialog | Rejection | None:
        """Route an incoming request: None outside a dialog (no To tag), its Dialog, or a
        Rejection (481 for an unknown dialog, §12.2.2; 500/491 from the dialog)."""
        local_tag = request.to.tag
        if local_tag is None:
            return None
        dialog_id = DialogId(request.call_id, local_tag, request.from_.tag or "")
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            return Rejection(status=481, reason="no such dialog")
        rejection = dialog.receive_request(request)
        self._reap(dialog)
        return rejection or dialog

    def receive_response(
        self, request: Request, response: Response, *, now: float
    ) -> Dialog | None:
        """A response to our request: create/confirm dialogs for an initial INVITE
        (§12.1.2, §13.2.2.4, forks make one dialog per To tag), update in-dialog state."""
        if request.to.tag is None:
            return self._initial(Role.UAC, request, response, response.to.tag)
        dialog_id = DialogId(request.call_id, request.from_.tag or "", request.to.tag)
        dialog = self._dialogs.get(dialog_id)
        if dialog is not None:
            dialog.receive_response(request.method, response, now=now, fraction=self._fraction())
            self._reap(dialog)
        return dialog

    def response_sent(self, request: Request, response: Response) -> Dialog | None:
        """Our response to a request: create/confirm dialogs for an initial INVITE
        (§12.1.1), end a remote re-INVITE for an in-dialog one."""
        if request.to.tag is None:
            return self._initial(Role.UAS, request, response, response.to.tag)
        dialog = self._dialogs.get(
            DialogId(request.call_id, request.to.tag, request.from_.tag or "")
        )
        if dialog is not None:
            dialog.answered(request, response)
        return dialog

    def _initial(
        self, role: Role, request: Request, response: Response, to_tag: str | None
    ) -> Dialog | None:
        if request.method != "INVITE" or to_tag is None or response.status == 100:
            return None
        if response.status >= 300:
            self._end_early(role, request, to_tag)
            return None
        make = Dialog.as_uac if role is Role.UAC else Dialog.as_uas
        fresh = make(request, response)
        dialog = self._dialogs.setdefault(fresh.id, fresh)
        if response.status >= 200 and dialog.state is DialogState.EARLY:
            self._confirm(dialog, fresh)
        return dialog

    @staticmethod
    def _confirm(dialog: Dialog, fresh: Dialog) -> None:
        # §13.2.2.4: the 2xx confirms the early dialog and recomputes its route set.
        dialog.state = DialogState.CONFIRMED
        dialog.route_set = fresh.route_set
        dialog.remote_target = fresh.remote_target
        dialog.invite_pending = dialog.remote_invite_pending = False

    def _end_early(self, role: Role, request: Request, to_tag: str) -> None:
        # §12.3 / §13.2.2.3: a non-2xx final response ends every early dialog of the INVITE.
        mine = request.from_.tag if role is Role.UAC else to_tag
        for dialog in list(self._dialogs.values()):
            same = dialog.id.call_id == request.call_id and dialog.id.local_tag == mine
            if same and dialog.state is DialogState.EARLY:
                dialog.state = DialogState.TERMINATED
                self._reap(dialog)

    def _reap(self, dialog: Dialog) -> None:
        if dialog.state is DialogState.TERMINATED:
            self._dialogs.pop(dialog.id, None)

    def get_timer(self) -> float | None:
        """The earliest glare retry instant, or None."""
        pending = [d.retry_at for d in self._dialogs.values() if d.retry_at is not None]
        return min(pending) if pending else None

    def handle_timer(self, *, now: float) -> None:
        """Report every glare retry that is due (§14.1)."""
        for dialog in self._dialogs.values():
            if dialog.retry_at is not None and dialog.retry_at <= now:
                self._events.append(ReinviteRetryDue(at=now, dialog_id=dialog.id))
                dialog.retry_at = None

    def next_event(self) -> ReinviteRetryDue | None:
        """The oldest undelivered event, or None."""
        return self._events.popleft() if self._events else None
