"""REGISTER end to end against the registrar: the Digest dance, expiry, refresh (§10.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from registrar_helpers import Phone, contact_expires, drain, make_registrar

from sip.headers import parse_auth_params
from sip.location import ContactRefreshed, ContactRegistered, ContactRemoved, RemovalReason


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_register_gets_401_then_200(algorithm: str) -> None:
    registrar = make_registrar()
    phone = Phone(algorithm=algorithm)
    first = phone.send(registrar, phone.request(None, 120), now=0.0)
    assert first.status == 401
    algorithms = [
        parse_auth_params(v)[1]["algorithm"] for v in first.headers.get_all("WWW-Authenticate")
    ]
    assert algorithms == ["SHA-256", "MD5"]
    assert first.to.tag is not None
    assert registrar.lookup("1001") == []
    phone.take_challenge(first)
    second = phone.request(None, 120)
    phone.authorize(second)
    ok = phone.send(registrar, second, now=0.1)
    assert ok.status == 200
    assert contact_expires(ok) == {phone.contact_uri: 120}
    assert ok.to.tag is not None
    (binding,) = registrar.lookup("1001")
    assert binding.source == phone.source
    assert binding.expires_at == pytest.approx(120.1)
    assert [type(e) for e in drain(registrar)] == [ContactRegistered]


def test_md5_only_registrar_for_legacy_phones() -> None:
    registrar = make_registrar(algorithms=("MD5",))
    response = Phone().send(registrar, Phone().request(None, 60), now=0.0)
    assert len(response.headers.get_all("WWW-Authenticate")) == 1
    assert Phone().register(registrar, now=0.0, expires=60).status == 200


@given(st.text(min_size=1, max_size=16).filter(lambda p: p != "demo1001"))
@settings(max_examples=30, deadline=None)
def test_wrong_password_never_gets_200(password: str) -> None:
    registrar = make_registrar()
    for algorithm in ("MD5", "SHA-256"):
        phone = Phone(password=password, algorithm=algorithm)
        assert phone.register(registrar, now=0.0).status == 401
        assert phone.register(registrar, now=1.0).status == 401
    assert registrar.lookup("1001") == []
    assert drain(registrar) == []


def test_unknown_user_is_forbidden() -> None:
    registrar = make_registrar()
    phone = Phone(user="1999", password="whatever")
    assert phone.register(registrar, now=0.0).status == 403
    assert registrar.lookup("1999") == []


def test_registering_someone_else_is_forbidden() -> None:
    registrar = make_registrar()
    phone = Phone(to_user="1002")
    assert phone.register(registrar, now=0.0).status == 403
    assert registrar.lookup("1002") == [] and registrar.lookup("1001") == []


def test_replayed_register_is_refused() -> None:
    registrar = make_registrar()
    phone = Phone()
    assert phone.register(registrar, now=0.0, expires=300).status == 200
    drain(registrar)
    replay = phone.sent[-1]
    response = registrar.handle_register(replay, ("10.9.9.9", 5060), now=5.0)
    assert response.status == 401
    (binding,) = registrar.lookup("1001")
    assert binding.source == phone.source and drain(registrar) == []


def test_stale_nonce_gets_stale_true_and_a_fresh_nonce_works() -> None:
    registrar = make_registrar()
    phone = Phone()
    assert phone.register(registrar, now=0.0, expires=3600).status == 200
    late = phone.request(None, 3600)
    phone.authorize(late)
    response = phone.send(registrar, late, now=1000.0)
    assert response.status == 401
    stale = [
        parse_auth_params(v)[1].get("stale") for v in response.headers.get_all("WWW-Authenticate")
    ]
    assert stale == ["true", "true"]
    phone.take_challenge(response)
    assert phone.register(registrar, now=1000.0, expires=3600).status == 200


def test_expires_zero_removes_one_contact_of_two() -> None:
    registrar = make_registrar()
    desk, soft = (
        Phone(),
        Phone(call_id="reg-2@phone", contact_port=5072, source=("127.0.0.1", 5072)),
    )
    desk.register(registrar, now=0.0, expires=600)
    ok = soft.register(registrar, now=1.0, expires=600)
    assert set(contact_expires(ok)) == {desk.contact_uri, soft.contact_uri}
    drain(registrar)
    gone = desk.register(registrar, now=2.0, expires=0)
    assert gone.status == 200
    assert contact_expires(gone) == {soft.contact_uri: 599}
    (event,) = drain(registrar)
    assert isinstance(event, ContactRemoved) and event.reason is RemovalReason.UNREGISTERED
    assert event.binding.contact.uri.port == 5070


def test_contact_param_expires_zero_removes_too() -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0, expires=600)
    response = phone.register(registrar, now=1.0, contacts=[f"<{phone.contact_uri}>;expires=0"])
    assert response.status == 200 and registrar.lookup("1001") == []


def test_wildcard_with_expires_zero_removes_all() -> None:
    registrar = make_registrar()
    desk, soft = Phone(), Phone(call_id="reg-2@phone", contact_port=5072)
    desk.register(registrar, now=0.0)
    soft.register(registrar, now=0.0)
    drain(registrar)
    response = desk.register(registrar, now=5.0, expires=0, contacts=["*"])
    assert response.status == 200 and not response.headers.get_all("Contact")
    events = drain(registrar)
    assert len(events) == 2
    assert all(isinstance(e, ContactRemoved) and e.reason == "unregistered" for e in events)
    assert registrar.lookup("1001") == []


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [(["*"], None), (["*"], 60), (["*", "<sip:1001@127.0.0.1:5070>"], 0)],
)
def test_wildcard_otherwise_is_400(contacts: list[str], expires: int | None) -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0)
    drain(registrar)
    assert phone.register(registrar, now=1.0, contacts=contacts, expires=expires).status == 400
    assert len(registrar.lookup("1001")) == 1 and drain(registrar) == []


def test_too_brief_is_423_with_min_expires() -> None:
    registrar = make_registrar(min_expires=60)
    phone = Phone()
    response = phone.register(registrar, now=0.0, expires=30)
    assert response.status == 423
    assert response.headers.get("Min-Expires") == "60"
    assert registrar.lookup("1001") == []
    assert phone.register(registrar, now=0.0, expires=60).status == 200


@pytest.mark.parametrize(
    ("contact_param", "header", "granted"),
    [
        (";expires=120", 30, 120),  # the Contact parameter wins over the header
        ("", 900, 900),
        ("", None, 3600),  # the default
        ("", 99999, 3600),  # shortened to max_expires
        (";expires=soon", 300, 300),  # a malformed parameter is ignored
    ],
)
def test_expiration_interval_choice(contact_param: str, header: int | None, granted: int) -> None:
    registrar = make_registrar()
    phone = Phone()
    contacts = [f"<{phone.contact_uri}>{contact_param}"]
    response = phone.register(registrar, now=0.0, expires=header, contacts=contacts)
    assert response.status == 200
    assert contact_expires(response) == {phone.contact_uri: granted}


def test_bindings_expire_in_virtual_time() -> None:
    registrar = make_registrar(ping_interval=None)
    phone = Phone()
    assert registrar.get_timer() is None
    phone.register(registrar, now=10.0, expires=60)
    drain(registrar)
    assert registrar.get_timer() == pytest.approx(70.0)
    registrar.handle_timer(now=69.9)
    assert len(registrar.lookup("1001")) == 1 and drain(registrar) == []
    registrar.handle_timer(now=70.0)
    assert registrar.lookup("1001") == []
    (event,) = drain(registrar)
    assert isinstance(event, ContactRemoved) and event.reason is RemovalReason.EXPIRED
    assert event.at == 70.0
    assert registrar.get_timer() is None


def test_expired_bindings_are_not_listed_even_before_the_timer_runs() -> None:
    registrar = make_registrar(ping_interval=None)
    desk, soft = Phone(), Phone(call_id="reg-2@phone", contact_port=5072)
    desk.register(registrar, now=0.0, expires=60)
    response = soft.register(registrar, now=61.0, expires=600)
    assert contact_expires(response) == {soft.contact_uri: 600}


def test_refresh_keeps_the_binding_and_renews_it() -> None:
    registrar = make_registrar(ping_interval=None)
    phone = Phone()
    phone.register(registrar, now=0.0, expires=60)
    (before,) = registrar.lookup("1001")
    drain(registrar)
    response = phone.register(registrar, now=50.0, expires=60)
    assert response.status == 200 and contact_expires(response) == {phone.contact_uri: 60}
    (after,) = registrar.lookup("1001")
    assert after.binding_id == before.binding_id
    assert after.expires_at == pytest.approx(110.0) and after.registered_at == 0.0
    assert after.cseq > before.cseq
    (event,) = drain(registrar)
    assert isinstance(event, ContactRefreshed) and event.binding == after
    registrar.handle_timer(now=100.0)
    assert registrar.lookup("1001") == [after]


def test_out_of_order_cseq_for_the_same_call_id_is_refused() -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0, expires=600)
    (binding,) = registrar.lookup("1001")
    drain(registrar)
    phone.cseq = binding.cseq - 2  # an older REGISTER of the same dialog arrives late
    response = phone.register(registrar, now=1.0, expires=0)
    assert response.status == 500
    assert registrar.lookup("1001") == [binding] and drain(registrar) == []


def test_another_call_id_replaces_the_binding_whatever_its_cseq() -> None:
    # §10.3 step 7: a different Call-ID updates the binding (a rebooted phone).
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0, expires=600)
    rebooted = Phone(call_id="after-reboot@phone")
    assert rebooted.register(registrar, now=5.0, expires=600).status == 200
    (binding,) = registrar.lookup("1001")
    assert binding.call_id == "after-reboot@phone"
