"""The SIP endpoint: the UAS core policy on top of the transaction layer (RFC 3261 §8.2).

It decides who may talk to us (a configured trunk address, or an operator's registered
phone), answers OPTIONS (§11) and REGISTER (§10, through the registrar), and applies the
§8.2 request checks in the RFC's order: method, Request-URI scheme, extensions, dialog.
What it cannot serve itself (a new INVITE) goes up as an event to call control.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sip import events as tx
from sip.errors import RemoteProtocolError
from sip.header_fields import Headers
from sip.ids import IdFactory
from sip.location import ContactRegistered, ContactRemoved, LocationEvent, PingContact
from sip.message import Request, Response, make_response
from sip.parser import parse_message
from sip.registrar import Registrar
from sip.transaction import Addr, ClientTransactionKey, ServerTransactionKey
from sip.transaction_layer import TransactionLayer
from sip.transaction_reply import stateless_error

# Methods we implement; anything else gets 501 (§8.2.1 says 405 for methods we know but
# do not allow, 501 for methods we do not know at all).
ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "REFER", "NOTIFY")
KNOWN_ELSEWHERE = frozenset({"SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK"})
# We serve SIP over UDP only: a sips: Request-URI asks for TLS on every hop (§26.2.2),
# which we cannot honour, so it is an unsupported scheme here (416), not a call.
URI_SCHEMES = frozenset({"sip", "tel"})
ACCEPT = "application/sdp"
ACCEPT_ENCODING = "identity"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    """Policy knobs; the predicates come from the deployment's configuration."""

    is_trunk: Callable[[str], bool]
    local: Addr
    user_agent: str = "Centralino"
    supported: tuple[str, ...] = ()
    max_message_size: int = 8192
    """Bigger datagrams get 513 (§21.5.14); SIP over UDP stays well below this."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestAnswered:
    """The endpoint answered a request itself (for logs and counters)."""

    at: float
    method: str
    status: int
    reason: str
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class DatagramDropped:
    """A datagram was discarded with no answer possible."""

    at: float
    reason: str
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationsChanged:
    """An operator's phone registered, refreshed or went away."""

    at: float
    user: str
    change: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingRequest:
    """A request that passed the policy and needs call control: a new INVITE, or any
    request inside (or claiming to be inside) a dialog, which call control answers,
    481 when it knows no such dialog (§12.2.2)."""

    at: float
    request: Request
    addr: Addr
    key: ServerTransactionKey
    trunk: bool
    operator: str | None


EndpointEvent = (
    RequestAnswered | DatagramDropped | RegistrationsChanged | IncomingRequest | tx.Event
)
"""Besides its own facts the endpoint passes on the layer's events that concern calls
(responses to our requests, ACKs, CANCELs, timeouts) for call control."""


class Endpoint:
    """One SIP endpoint on one socket, in the sans-I/O shape of DESIGN.md."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        layer: TransactionLayer,
        registrar: Registrar,
        ids: IdFactory,
    ) -> None:
        self.config = config
        self.layer = layer
        self.registrar = registrar
        self.ids = ids
        self.accepting = True
        self._events: deque[EndpointEvent] = deque()
        self._calls = 0
        self._pings: dict[ClientTransactionKey, int] = {}

    # -- the sans-I/O surface ----------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Handle one datagram; never raises on malformed input."""
        if len(data) > self.config.max_message_size:
            self._answer_oversize(data, addr, now=now)
        else:
            self.layer.receive_datagram(data, addr, now=now)
        self._pump(now=now)

    def handle_timer(self, *, now: float) -> None:
        """Fire transaction and registration timers due at `now`, and send due pings."""
        self.layer.handle_timer(now=now)
        self.registrar.handle_timer(now=now)
        for ping in self.registrar.location.due_pings(now=now):
            self._ping(ping, now=now)
        self._pump(now=now)

    def get_timer(self) -> float | None:
        """The earliest deadline of the layer and the registrar."""
        deadlines = [
            t for t in (self.layer.get_timer(), self.registrar.get_timer()) if t is not None
        ]
        return min(deadlines) if deadlines else None

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """What the layer queued, in order."""
        return self.layer.datagrams_to_send()

    def next_event(self) -> EndpointEvent | None:
        """The oldest event for the application, or None."""
        return self._events.popleft() if self._events else None

    # -- application queries and commands ----------------------------------------------

    def registrations(self) -> int:
        """Registered contacts across operators."""
        location = self.registrar.location
        return sum(len(location.bindings(user)) for user in location.users())

    def operator_at(self, addr: Addr) -> str | None:
        """The operator whose registered phone sends from `addr`, if any."""
        return self.registrar.location.user_at(addr)

    def active_calls(self) -> int:
        """Calls in progress (for draining)."""
        return self._calls

    def stop_accepting(self) -> None:
        """Refuse new INVITEs with 503 from now on (graceful shutdown)."""
        self.accepting = False

    def send_request(self, request: Request, addr: Addr, *, now: float) -> ClientTransactionKey:
        """Start a client transaction (our INVITE, BYE, ...) through the layer."""
        return self.layer.send_request(request, addr, now=now)

    def reply(
        self,
        request: Request,
        key: ServerTransactionKey,
        addr: Addr,
        status: int,
        *,
        now: float,
        extra: tuple[tuple[str, str], ...] = (),
        to_tag: str | None = None,
        body: bytes = b"",
    ) -> Response:
        """Build and send a response to `request` with our Server header."""
        extra = extra + self._status_headers(request, status)
        response = make_response(
            request, status, to_tag=to_tag or self.ids.tag(), extra=extra, body=body
        )
        response.headers.add("Server", self.config.user_agent)
        self.respond(key, response, method=request.method, addr=addr, now=now)
        return response

    def respond(
        self, key: ServerTransactionKey, response: Response, *, method: str, addr: Addr, now: float
    ) -> None:
        """Send a response through the layer and record it."""
        self.layer.send_response(key, response, now=now)
        self._events.append(
            RequestAnswered(
                at=now, method=method, status=response.status, reason=response.reason, addr=addr
            )
        )

    # -- dispatch ----------------------------------------------------------------------

    def _pump(self, *, now: float) -> None:
        while (event := self.layer.next_event()) is not None:
            self._on_layer_event(event, now=now)
        while (change := self.registrar.location.next_event()) is not None:
            self._on_location_event(change, now=now)

    def _on_location_event(self, event: LocationEvent, *, now: float) -> None:
        if isinstance(event, ContactRegistered):
            kind = "registered"
        elif isinstance(event, ContactRemoved):
            kind = str(event.reason)
        else:
            kind = "refreshed"
        self._events.append(
            RegistrationsChanged(at=now, user=event.user, change=kind, count=self.registrations())
        )

    def _on_layer_event(self, event: tx.Event, *, now: float) -> None:
        if isinstance(event, tx.RequestReceived):
            self._on_request(event.request, event.addr, event.key, now=now)
        elif isinstance(event, tx.ResponseReceived) and event.key in self._pings:
            if event.response.status >= 200:
                self._ping_done(event.key, ok=True, now=now)
        elif isinstance(event, tx.TransactionTimedOut | tx.TransportFailed) and (
            ping := self._ping_key(event.key)
        ):
            self._ping_done(ping, ok=False, now=now)
        elif isinstance(event, tx.MessageDropped):
            self._events.append(DatagramDropped(at=now, reason=event.reason, addr=event.addr))
        elif isinstance(event, tx.MalformedRequestAnswered):
            self._events.append(
                RequestAnswered(
                    at=now, method="?", status=event.status, reason=event.reason, addr=event.addr
                )
            )
        elif not isinstance(event, tx.ResponseReceived) or event.key not in self._pings:
            # Everything else concerns calls: responses to our INVITEs and BYEs, ACKs,
            # CANCELs, and Timer B/F or transport failures of call control's requests.
            self._events.append(event)

    def _ping_key(self, key: object) -> ClientTransactionKey | None:
        return key if isinstance(key, ClientTransactionKey) and key in self._pings else None

    def _on_request(
        self, request: Request, addr: Addr, key: ServerTransactionKey, *, now: float
    ) -> None:
        trunk = self.config.is_trunk(addr[0])
        operator = self.operator_at(addr)
        status = self._policy_status(request, trunk=trunk or operator is not None)
        if status is not None:
            self._reply(request, key, addr, status, now=now)
        elif request.method == "OPTIONS":
            self._reply(request, key, addr, 200, now=now, extra=self._capabilities())
        elif request.method == "REGISTER":
            response = self.registrar.handle_register(request, addr, now=now)
            self.respond(key, response, method="REGISTER", addr=addr, now=now)
        elif not self.accepting and request.to.tag is None:
            self._reply(request, key, addr, 503, now=now)
        else:
            self._events.append(
                IncomingRequest(
                    at=now, request=request, addr=addr, key=key, trunk=trunk, operator=operator
                )
            )

    def _policy_status(self, request: Request, *, trunk: bool) -> int | None:
        """The §8.2 checks, in order; None when the request may proceed."""
        method = request.method
        if not trunk and method != "REGISTER":
            return 403
        if method not in ALLOWED:
            return 405 if method in KNOWN_ELSEWHERE else 501
        if request.uri.partition(":")[0].lower() not in URI_SCHEMES:
            return 416
        if method != "OPTIONS" and request.max_forwards == 0:
            return 483
        if method not in ("CANCEL", "ACK") and self._unsupported(request):
            return 420
        if method not in ("CANCEL", "ACK") and self._unknown_encodings(request):
            return 415
        return None

    def _unsupported(self, request: Request) -> list[str]:
        return [t for t in request.headers.values("require") if t not in self.config.supported]

    def _unknown_encodings(self, request: Request) -> list[str]:
        """§8.2.3: a body in a content coding we cannot decode gets 415."""
        codings = request.headers.values("content-encoding") if request.body else []
        return [c for c in codings if c.lower() != ACCEPT_ENCODING]

    def _capabilities(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Allow", ", ".join(ALLOWED)),
            ("Accept", ACCEPT),
            ("Supported", ", ".join(self.config.supported)),
        )

    def _reply(
        self,
        request: Request,
        key: ServerTransactionKey,
        addr: Addr,
        status: int,
        *,
        now: float,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.reply(request, key, addr, status, now=now, extra=extra)

    def capabilities(self) -> tuple[tuple[str, str], ...]:
        """Allow, Accept and Supported, as OPTIONS answers them (§11.2)."""
        return self._capabilities()

    def _status_headers(self, request: Request, status: int) -> tuple[tuple[str, str], ...]:
        if status in (405, 501):
            return (("Allow", ", ".join(ALLOWED)),)
        if status == 420:
            return (("Unsupported", ", ".join(self._unsupported(request))),)
        if status == 415:
            return (("Accept-Encoding", ACCEPT_ENCODING),)
        return ()

    def _answer_oversize(self, data: bytes, addr: Addr, *, now: float) -> None:
        """§21.5.14: 513 when the request can be read, else a logged drop."""
        error = RemoteProtocolError(
            f"message of {len(data)} bytes exceeds {self.config.max_message_size}",
            status_hint=513,
        )
        try:
            message = parse_message(data)
        except RemoteProtocolError as exc:
            self._events.append(DatagramDropped(at=now, reason=exc.reason, addr=addr))
            return
        reply = None
        if isinstance(message, Request):
            reply = stateless_error(message, error, addr, self.ids.tag())
        if reply is None:
            self._events.append(DatagramDropped(at=now, reason=error.reason, addr=addr))
            return
        response, destination = reply
        self.layer.transmit(response.to_bytes(), destination)
        self._events.append(
            RequestAnswered(at=now, method="?", status=513, reason=error.reason, addr=addr)
        )

    # -- OPTIONS keep-alives of registered phones (§11) ---------------------------------

    def _ping(self, ping: PingContact, *, now: float) -> None:
        host, port = self.config.local
        target = str(ping.binding.contact.uri)
        headers = Headers.of(
            ("Max-Forwards", "70"),
            ("From", f"<sip:centralino@{host}:{port}>;tag={self.ids.tag()}"),
            ("To", f"<{target}>"),
            ("Call-ID", self.ids.call_id()),
            ("CSeq", "1 OPTIONS"),
            ("User-Agent", self.config.user_agent),
        )
        key = self.layer.send_request(
            Request("OPTIONS", target, headers), ping.target_addr, now=now
        )
        self._pings[key] = ping.binding.binding_id

    def _ping_done(self, key: ClientTransactionKey, *, ok: bool, now: float) -> None:
        binding_id = self._pings.pop(key)
        self.registrar.location.ping_result(binding_id, ok, now=now)
