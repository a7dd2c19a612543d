"""A model-based test: random REGISTERs, wildcards and time against a plain dict model."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from registrar_helpers import Phone, make_registrar

from sip.location import ContactRefreshed, ContactRegistered, ContactRemoved

USERS = {"1001": "demo1001", "1002": "demo1002"}
PORTS = (5070, 5071, 5072)


class RegistrarMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.registrar = make_registrar(ping_interval=None, min_expires=60, max_expires=3600)
        self.now = 0.0
        self.phones = {
            (user, port): Phone(user=user, password=pw, contact_port=port, call_id=f"{user}-{port}")
            for user, pw in USERS.items()
            for port in PORTS
        }
        self.model: dict[tuple[str, int], float] = {}
        self.live: set[int] = set()

    def _expire(self, user: str | None = None) -> None:
        for key, expires_at in list(self.model.items()):
            if expires_at <= self.now and (user is None or key[0] == user):
                del self.model[key]

    @rule(
        user=st.sampled_from(sorted(USERS)),
        port=st.sampled_from(PORTS),
        expires=st.sampled_from([None, 0, 30, 60, 600, 7200]),
    )
    def register(self, user: str, port: int, expires: int | None) -> None:
        response = self.phones[user, port].register(self.registrar, now=self.now, expires=expires)
        self._expire(user)
        if expires == 30:
            assert response.status == 423
            return
        assert response.status == 200
        if expires == 0:
            self.model.pop((user, port), None)
        else:
            self.model[user, port] = self.now + min(expires or 3600, 3600)

    @rule(user=st.sampled_from(sorted(USERS)), port=st.sampled_from(PORTS))
    def unregister_all(self, user: str, port: int) -> None:
        response = self.phones[user, port].register(
            self.registrar, now=self.now, expires=0, contacts=["*"]
        )
        assert response.status == 200
        for key in [k for k in self.model if k[0] == user]:
            del self.model[key]

    @rule(dt=st.floats(min_value=0.5, max_value=2000.0))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.registrar.handle_timer(now=self.now)
        self._expire()

    @invariant()
    def bindings_match_the_model(self) -> None:
        actual = {
            (user, b.contact.uri.port or 0): b.expires_at
            for user in USERS
            for b in self.registrar.lookup(user)
        }
        assert actual.keys() == self.model.keys()
        for key, expires_at in actual.items():
            assert expires_at == pytest.approx(self.model[key])

    @invariant()
    def events_tell_the_same_story(self) -> None:
        while (event := self.registrar.next_event()) is not None:
            binding_id = event.binding.binding_id
            if isinstance(event, ContactRegistered):
                assert binding_id not in self.live
                self.live.add(binding_id)
            elif isinstance(event, ContactRefreshed):
                assert binding_id in self.live
            else:
                assert isinstance(event, ContactRemoved)
                self.live.remove(binding_id)
        ids = {b.binding_id for user in USERS for b in self.registrar.lookup(user)}
        assert ids == self.live

    @invariant()
    def the_timer_is_the_next_expiry(self) -> None:
        expected = min(self.model.values(), default=None)
        assert self.registrar.get_timer() == (None if expected is None else pytest.approx(expected))


RegistrarMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None
)
test_registrar_against_model = RegistrarMachine.TestCase
