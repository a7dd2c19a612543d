"""The registrar: REGISTER processing for operators' phones (RFC 3261 §10.3).

`handle_register` answers one REGISTER (after its server transaction took it) with the
response only; bindings live in a `LocationService`, whose events (`ContactRegistered`,
`ContactRefreshed`, `ContactRemoved`) come out of `next_event()`. Every REGISTER is
authenticated with Digest (§10.3 step 3) and may only touch the bindings of the user it
authenticated as (step 4: we refuse third-party registrations). Updates are all or
nothing (step 7: "committed ... if and only if all binding updates and additions
succeed").
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sip.authenticator import AuthFailure, DigestAuthenticator
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.headers import MAX_CSEQ, Address, parse_address
from sip.location import (
    Addr,
    Binding,
    LocationEvent,
    LocationService,
    PingContact,
    RemovalReason,
)
from sip.message import Request, Response, make_response

logger = logging.getLogger(__name__)


class _RegisterError(Exception):
    """Ends REGISTER processing with a final response (internal to the registrar)."""

    def __init__(self, status: int, reason: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra


@dataclass(frozen=True, slots=True, kw_only=True)
class _ContactRequest:
    """One Contact of a REGISTER with its granted interval (§10.3 step 6)."""

    address: Address
    key: tuple[str, str | None, str, int | None, str | None]
    expires: int
    q: float


@dataclass(frozen=True, slots=True, kw_only=True)
class _Origin:
    """The REGISTER a binding change comes from (§10.3 step 7 keeps Call-ID and CSeq)."""

    call_id: str
    cseq: int
    source: Addr
    now: float


class Registrar:
    """A registrar for configured operators (RFC 3261 §10.3), sans-I/O."""

    __slots__ = (
        "authenticator",
        "default_expires",
        "location",
        "max_contacts",
        "max_expires",
        "min_expires",
        "tag_factory",
    )

    def __init__(
        self,
        authenticator: DigestAuthenticator,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        ping_interval: float | None = 30.0,
        max_ping_failures: int = 3,
        max_contacts: int = 10,
        tag_factory: Callable[[], str] | None = None,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise LocalProtocolError("need 0 < min_expires <= default_expires <= max_expires")
        self.authenticator = authenticator
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts = max_contacts
        self.tag_factory = tag_factory
        self.location = LocationService(
            ping_interval=ping_interval, max_ping_failures=max_ping_failures
        )

    # -- the REGISTER -------------------------------------------------------------------

    def handle_register(self, request: Request, source: Addr, *, now: float) -> Response:
        """Process a REGISTER from `source` and return the response to send (§10.3)."""
        if request.method != "REGISTER":
            raise LocalProtocolError(f"handle_register got a {request.method}")
        try:
            return self._process(request, source, now)
        except _RegisterError as exc:
            return self._reply(request, exc.status, exc.reason, exc.extra)
        except RemoteProtocolError as exc:
            return self._reply(request, exc.status_hint or 400, "Bad Request")

    def _process(self, request: Request, source: Addr, now: float) -> Response:
        aor_user = _user_of(request.to, 404)
        result = self.authenticator.verify(request, now=now)
        if result.failure is AuthFailure.UNKNOWN_USER:
            raise _RegisterError(403, "Forbidden")
        if result.username is None:
            tag = self._tag(request)
            return self.authenticator.challenge(request, now=now, stale=result.stale, to_tag=tag)
        if result.username != aor_user or _user_of(request.from_, 403) != aor_user:
            logger.info("REGISTER by %r for %r refused", result.username, aor_user)
            raise _RegisterError(403, "Forbidden")
        self.location.expire(now=now, user=aor_user)
        self._apply(request, aor_user, source, now)
        return self._ok(request, aor_user, now)

    def _apply(self, request: Request, user: str, source: Addr, now: float) -> None:
        addresses = [parse_address(v) for v in request.headers.values("contact")]
        call_id, cseq = request.call_id, request.cseq.seq
        if any(a.star for a in addresses):
            self._check_wildcard(request, addresses)
            self._unregister_all(user, call_id, cseq, now)
            return
        contacts = [self._contact(a, request) for a in addresses]
        self._check_intervals(contacts)
        self._update(user, contacts, _Origin(call_id=call_id, cseq=cseq, source=source, now=now))

    # -- step 5: the wildcard -----------------------------------------------------------

    def _check_wildcard(self, request: Request, addresses: list[Address]) -> None:
        # §10.3 step 5: "*" only alone and with Expires: 0, else 400.
        if len(addresses) != 1 or _delta(request.headers.get("expires")) != 0:
            raise _RegisterError(400, "Invalid Contact Wildcard")

    def _unregister_all(self, user: str, call_id: str, cseq: int, now: float) -> None:
        bindings = self.location.bindings(user)
        for binding in bindings:
            _check_order(binding, call_id, cseq)
        for binding in bindings:
            self.location.remove(binding, RemovalReason.UNREGISTERED, now=now)
        logger.info("user %r unregistered all %d contacts", user, len(bindings))

    # -- step 6: expiration intervals ---------------------------------------------------

    def _contact(self, address: Address, request: Request) -> _ContactRequest:
        uri = address.uri
        if uri.scheme not in ("sip", "sips") or not uri.host:
            raise _RegisterError(400, "Bad Contact")
        return _ContactRequest(
            address=address,
            key=_binding_key(address),
            expires=self._interval(address, request),
            q=_q_value(address.params.get("q")),
        )

    def _interval(self, address: Address, request: Request) -> int:
        # Contact expires parameter, then the Expires header field, then our default.
        for raw in (address.params.get("expires"), request.headers.get("expires")):
            value = _delta(raw)
            if value is not None:
                return min(value, self.max_expires)
        return self.default_expires

    def _check_intervals(self, contacts: list[_ContactRequest]) -> None:
        # "If and only if the expiration interval is less than [Min-Expires] and not zero"
        if any(0 < c.expires < self.min_expires for c in contacts):
            raise _RegisterError(
                423, "Interval Too Brief", (("Min-Expires", str(self.min_expires)),)
            )

    # -- step 7: bindings ---------------------------------------------------------------

    def _update(self, user: str, contacts: list[_ContactRequest], origin: _Origin) -> None:
        existing = {_binding_key(b.contact): b for b in self.location.bindings(user)}
        latest = {c.key: c for c in contacts}  # a URI listed twice: the last one counts
        for key in latest.keys() & existing.keys():
            _check_order(existing[key], origin.call_id, origin.cseq)
        added = [k for k, c in latest.items() if k not in existing and c.expires > 0]
        removed = [k for k, c in latest.items() if k in existing and c.expires == 0]
        if len(existing) + len(added) - len(removed) > self.max_contacts:
            raise _RegisterError(403, "Too Many Contacts")
        for key, contact in latest.items():
            self._commit(user, existing.get(key), contact, origin)

    def _commit(
        self, user: str, old: Binding | None, contact: _ContactRequest, origin: _Origin
    ) -> None:
        if contact.expires == 0:
            if old is not None:
                self.location.remove(old, RemovalReason.UNREGISTERED, now=origin.now)
        elif old is None:
            self.location.add(_binding(user, old, contact, origin), now=origin.now)
        else:
            self.location.refresh(_binding(user, old, contact, origin), now=origin.now)

    # -- step 8: the response -----------------------------------------------------------

    def _ok(self, request: Request, user: str, now: float) -> Response:
        # §10.3 step 8: the 200 lists every current binding with its remaining interval.
        contacts = tuple(("Contact", _contact_value(b, now)) for b in self.location.bindings(user))
        return make_response(request, 200, to_tag=self._tag(request), extra=contacts)

    def _reply(
        self, request: Request, status: int, reason: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> Response:
        try:
            return make_response(request, status, reason, to_tag=self._tag(request), extra=extra)
        except RemoteProtocolError:
            # A To we cannot parse cannot take a tag; answer without one.
            return make_response(request, status, reason, extra=extra)

    def _tag(self, request: Request) -> str:
        if self.tag_factory is not None:
            return self.tag_factory()
        # Stable per registration dialog, so a retransmitted answer carries the same tag.
        seed = f"{request.headers.get('call-id')}\0{request.headers.get('from')}"
        return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()[:16]

    # -- the location service, for the runtime ------------------------------------------

    def lookup(self, user: str) -> list[Binding]:
        """The user's bindings, highest q first, then most recently refreshed."""
        return self.location.lookup(user)

    def next_event(self) -> LocationEvent | None:
        """The oldest unread ContactRegistered / ContactRefreshed / ContactRemoved."""
        return self.location.next_event()

    def get_timer(self) -> float | None:
        """When `handle_timer` (and `due_pings`) should next run."""
        return self.location.get_timer()

    def handle_timer(self, *, now: float) -> None:
        """Expire bindings that ran out (§10.3)."""
        self.location.handle_timer(now=now)

    def due_pings(self, *, now: float) -> list[PingContact]:
        """OPTIONS keep-alives to send now (call after `handle_timer`)."""
        return self.location.due_pings(now=now)

    def ping_result(self, binding_id: int, ok: bool, *, now: float) -> None:
        """Report a keep-alive's outcome; enough failures in a row remove the binding."""
        self.location.ping_result(binding_id, ok, now=now)


def _user_of(address: Address, status: int) -> str:
    # §10.3 step 2: the address-of-record must be one of ours: a SIP URI with a user.
    uri = address.uri
    if uri.scheme not in ("sip", "sips") or uri.user_unescaped is None:
        raise _RegisterError(status, "Not Found" if status == 404 else "Forbidden")
    return uri.user_unescaped


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    # §10.3 step 7: same Call-ID with a CSeq not higher: "abort ... and return an error".
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise _RegisterError(500, "Out Of Order CSeq")


def _delta(raw: str | None) -> int | None:
    # delta-seconds (§25.1); too large means the largest (§20.19); malformed is ignored.
    if raw is None or not raw.strip().isdigit() or not raw.strip().isascii():
        return None
    return min(int(raw.strip()), MAX_CSEQ)


def _q_value(raw: str | None) -> float:
    # qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) (§25.1)
    if raw is None:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise _RegisterError(400, "Bad Contact") from None
    if not 0.0 <= value <= 1.0 or not raw.replace(".", "", 1).isdigit():
        raise _RegisterError(400, "Bad Contact")
    return value


def _binding_key(address: Address) -> tuple[str, str | None, str, int | None, str | None]:
    # Contact URIs compared as §19.1.4 says, on the parts that name a phone.
    uri = address.uri
    transport = uri.params.get("transport")
    default = 5061 if uri.scheme == "sips" else 5060
    host = uri.host.lower()
    return uri.scheme, uri.user, host, uri.port or default, transport and transport.lower()


def _binding(user: str, old: Binding | None, contact: _ContactRequest, origin: _Origin) -> Binding:
    # A refresh keeps the binding's id and first registration instant.
    return Binding(
        binding_id=0 if old is None else old.binding_id,
        user=user,
        contact=contact.address,
        q=contact.q,
        call_id=origin.call_id,
        cseq=origin.cseq,
        expires_at=origin.now + contact.expires,
        source=origin.source,
        registered_at=origin.now if old is None else old.registered_at,
        updated_at=origin.now,
    )


def _contact_value(binding: Binding, now: float) -> str:
    params = {k: v for k, v in binding.contact.params.items() if k != "expires"}
    params["expires"] = str(binding.remaining(now))
    return str(Address(binding.contact.uri, binding.contact.display, params))
