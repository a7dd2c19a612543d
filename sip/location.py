"""The location service: bindings of operators to their phones (RFC 3261 §10.2, §10.3).

A binding ties a user (the address-of-record's user part) to one Contact URI, with the
Call-ID and CSeq of the REGISTER that made it (§10.3 step 7 orders refreshes by them),
its expiry instant, and the source address the REGISTER came from: behind a NAT the
Contact names a private address the phone cannot be reached at, so requests go to the
source (the symmetric routing of RFC 3581). The store also schedules OPTIONS
keep-alives (RFC 3261 §11) and drops a binding after consecutive failed pings.

Sans-I/O: every input carries `now`; `get_timer()` says when `handle_timer()` is due.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from enum import StrEnum

from sip.headers import Address

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One registered contact of a user (RFC 3261 §10.2.1)."""

    binding_id: int
    user: str
    contact: Address
    """The Contact as registered (URI and parameters; its expires is not kept current)."""
    q: float
    call_id: str
    cseq: int
    expires_at: float
    source: Addr
    registered_at: float
    updated_at: float

    def remaining(self, now: float) -> int:
        """Whole seconds left before expiry, as the 200's expires parameter says (§10.3)."""
        return max(0, int(self.expires_at - now + 0.5))

    @property
    def nat(self) -> bool:
        """True when the REGISTER came from another host than the Contact names."""
        return self.contact.uri.host_port[0].lower() != self.source[0].lower()

    @property
    def target(self) -> Addr:
        """Where to send requests: the source behind a NAT, else the Contact's host:port."""
        if self.nat:
            return self.source
        host, port = self.contact.uri.host_port
        return host, port or (5061 if self.contact.uri.scheme == "sips" else 5060)


class RemovalReason(StrEnum):
    """Why a binding went away."""

    UNREGISTERED = "unregistered"
    EXPIRED = "expired"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRegistered:
    """A new binding was added."""

    at: float
    user: str
    binding: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRefreshed:
    """An existing binding was renewed by a REGISTER."""

    at: float
    user: str
    binding: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRemoved:
    """A binding was removed: unregistered, expired, or unreachable to pings."""

    at: float
    user: str
    binding: Binding
    reason: RemovalReason


LocationEvent = ContactRegistered | ContactRefreshed | ContactRemoved


@dataclass(frozen=True, slots=True, kw_only=True)
class PingContact:
    """A command: send OPTIONS to `target_addr` and report with `ping_result`."""

    user: str
    binding: Binding
    target_addr: Addr


class _Stale:
    """Marks the cached next deadline as out of date."""


_STALE = _Stale()


@dataclass(slots=True)
class _PingState:
    due_at: float
    in_flight: bool = False
    failures: int = 0


class LocationService:
    """Bindings per user with expiry and OPTIONS keep-alives.

    `ping_interval=None` disables pings; after `max_ping_failures` consecutive failed
    pings a binding is removed as unreachable.
    """

    __slots__ = (
        "_bindings",
        "_by_source",
        "_events",
        "_next_id",
        "_pings",
        "_timer",
        "_users_by_id",
        "max_ping_failures",
        "ping_interval",
    )

    def __init__(self, *, ping_interval: float | None = 30.0, max_ping_failures: int = 3) -> None:
        self.ping_interval = ping_interval
        self.max_ping_failures = max_ping_failures
        self._bindings: dict[str, dict[int, Binding]] = {}
        self._pings: dict[int, _PingState] = {}
        self._users_by_id: dict[int, str] = {}
        self._events: deque[LocationEvent] = deque()
        self._next_id = 0
        # Both are asked about on every request: kept up to date instead of scanned.
        self._by_source: dict[Addr, dict[int, str]] = {}
        self._timer: float | _Stale | None = _STALE

    # -- queries ------------------------------------------------------------------------

    def bindings(self, user: str) -> list[Binding]:
        """The user's bindings, in registration order."""
        return list(self._bindings.get(user, {}).values())

    def lookup(self, user: str) -> list[Binding]:
        """The user's bindings, highest q first, then most recently refreshed (§16.6)."""
        return sorted(self.bindings(user), key=lambda b: (-b.q, -b.updated_at, -b.binding_id))

    def users(self) -> list[str]:
        """Users with at least one binding."""
        return list(self._bindings)

    def user_at(self, source: Addr) -> str | None:
        """The user with a binding registered from `source`, if any."""
        users = self._by_source.get(source)
        return next(iter(users.values())) if users else None

    def get(self, binding_id: int) -> Binding | None:
        """A binding by its id, if it still exists."""
        user = self._users_by_id.get(binding_id)
        return None if user is None else self._bindings[user][binding_id]

    def next_event(self) -> LocationEvent | None:
        """The oldest unread event, or None."""
        return self._events.popleft() if self._events else None

    # -- changes ------------------------------------------------------------------------

    def add(self, binding: Binding, *, now: float) -> Binding:
        """Store a new binding (its id is assigned here)."""
        self._next_id += 1
        stored = replace(binding, binding_id=self._next_id)
        self._bindings.setdefault(stored.user, {})[stored.binding_id] = stored
        self._users_by_id[stored.binding_id] = stored.user
        self._by_source.setdefault(stored.source, {})[stored.binding_id] = stored.user
        self._timer = _STALE
        if self.ping_interval is not None:
            self._pings[stored.binding_id] = _PingState(now + self.ping_interval)
        self._events.append(ContactRegistered(at=now, user=stored.user, binding=stored))
        return stored

    def refresh(self, binding: Binding, *, now: float) -> None:
        """Replace a binding in place (same id): a REGISTER renewed it."""
        old = self._bindings[binding.user][binding.binding_id]
        self._bindings[binding.user][binding.binding_id] = binding
        self._forget_source(old)
        self._by_source.setdefault(binding.source, {})[binding.binding_id] = binding.user
        self._timer = _STALE
        state = self._pings.get(binding.binding_id)
        if state is not None:
            state.failures = 0  # a REGISTER that got through proves the phone is there
        self._events.append(ContactRefreshed(at=now, user=binding.user, binding=binding))

    def remove(self, binding: Binding, reason: RemovalReason, *, now: float) -> None:
        """Drop a binding and say why."""
        per_user = self._bindings.get(binding.user, {})
        if per_user.pop(binding.binding_id, None) is None:
            return
        if not per_user:
            del self._bindings[binding.user]
        self._pings.pop(binding.binding_id, None)
        del self._users_by_id[binding.binding_id]
        self._forget_source(binding)
        self._timer = _STALE
        self._events.append(
            ContactRemoved(at=now, user=binding.user, binding=binding, reason=reason)
        )

    def _forget_source(self, binding: Binding) -> None:
        users = self._by_source.get(binding.source)
        if users is not None:
            users.pop(binding.binding_id, None)
            if not users:
                del self._by_source[binding.source]

    def expire(self, *, now: float, user: str | None = None) -> None:
        """Remove bindings whose expiry has passed (all users, or one)."""
        users = [user] if user is not None else list(self._bindings)
        for name in users:
            for binding in self.bindings(name):
                if binding.expires_at <= now:
                    self.remove(binding, RemovalReason.EXPIRED, now=now)

    # -- timers and keep-alives ---------------------------------------------------------

    def get_timer(self) -> float | None:
        """The next expiry or ping instant; pings awaiting a result do not count."""
        if isinstance(self._timer, _Stale):
            instants = [b.expires_at for per in self._bindings.values() for b in per.values()]
            instants += [s.due_at for s in self._pings.values() if not s.in_flight]
            self._timer = min(instants, default=None)
        return self._timer

    def handle_timer(self, *, now: float) -> None:
        """Expire bindings whose time has come (§10.3: a binding lasts `expires` seconds)."""
        self.expire(now=now)

    def due_pings(self, *, now: float) -> list[PingContact]:
        """OPTIONS to send now; each is marked in flight until `ping_result` comes."""
        out: list[PingContact] = []
        for per_user in self._bindings.values():
            for binding in per_user.values():
                state = self._pings.get(binding.binding_id)
                if state is None or state.in_flight or state.due_at > now:
                    continue
                state.in_flight = True
                self._timer = _STALE
                out.append(
                    PingContact(user=binding.user, binding=binding, target_addr=binding.target)
                )
        return out

    def ping_result(self, binding_id: int, ok: bool, *, now: float) -> None:
        """Record a ping's outcome; unknown or removed bindings are ignored."""
        state = self._pings.get(binding_id)
        binding = self.get(binding_id)
        if state is None or binding is None or self.ping_interval is None:
            return
        state.in_flight = False
        state.due_at = now + self.ping_interval
        self._timer = _STALE
        state.failures = 0 if ok else state.failures + 1
        if state.failures >= self.max_ping_failures:
            self.remove(binding, RemovalReason.UNREACHABLE, now=now)
