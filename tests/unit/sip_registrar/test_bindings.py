"""Several contacts, NAT'd phones, lookup order, keep-alive pings, and bad REGISTERs."""

from __future__ import annotations

import pytest
from registrar_helpers import Phone, contact_expires, drain, make_registrar

from sip.errors import LocalProtocolError
from sip.location import ContactRemoved, RemovalReason
from sip.message import Request


def test_several_contacts_in_one_register_and_lookup_order() -> None:
    registrar = make_registrar()
    phone = Phone()
    contacts = [
        "<sip:1001@127.0.0.1:5070>;q=0.5",
        "<sip:1001@127.0.0.1:5071>;q=1.0",
        '"Desk" <sip:1001@127.0.0.1:5072>',
    ]
    response = phone.register(registrar, now=0.0, contacts=contacts, expires=600)
    assert response.status == 200
    assert len(contact_expires(response)) == 3
    assert [b.contact.uri.port for b in registrar.lookup("1001")] == [5072, 5071, 5070]
    # Among equal q, the most recently refreshed comes first.
    phone.register(registrar, now=10.0, contacts=["<sip:1001@127.0.0.1:5071>"], expires=600)
    assert [b.contact.uri.port for b in registrar.lookup("1001")] == [5071, 5072, 5070]


def test_the_200_keeps_contact_parameters_and_display_names() -> None:
    registrar = make_registrar()
    phone = Phone()
    contact = (
        '"Desk" <sip:1001@127.0.0.1:5070;transport=udp>;+sip.instance="<urn:uuid:1>";expires=90'
    )
    response = phone.register(registrar, now=0.0, contacts=[contact])
    (value,) = response.headers.values("contact")
    assert value.startswith('"Desk" <sip:1001@127.0.0.1:5070;transport=udp>')
    assert '+sip.instance="<urn:uuid:1>"' in value and value.endswith(";expires=90")


def test_a_query_without_contact_lists_bindings_and_changes_nothing() -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0, expires=600)
    drain(registrar)
    response = phone.register(registrar, now=100.0, contacts=[])
    assert response.status == 200
    assert contact_expires(response) == {phone.contact_uri: 500}
    assert drain(registrar) == []


def test_nat_phone_is_reached_at_its_source() -> None:
    registrar = make_registrar()
    behind = Phone(contact_host="192.168.1.20", contact_port=5060, source=("203.0.113.7", 40123))
    behind.register(registrar, now=0.0)
    (binding,) = registrar.lookup("1001")
    assert binding.nat and binding.target == ("203.0.113.7", 40123)
    direct = Phone(user="1002", password="demo1002", contact_port=5080, source=("127.0.0.1", 33000))
    direct.register(registrar, now=0.0)
    (binding,) = registrar.lookup("1002")
    assert not binding.nat and binding.target == ("127.0.0.1", 5080)


def test_default_contact_port_is_5060() -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0, contacts=["<sip:1001@127.0.0.1>"])
    assert registrar.lookup("1001")[0].target == ("127.0.0.1", 5060)


@pytest.mark.parametrize(
    "contacts",
    [
        ["<sip:1001@127.0.0.1:5070"],
        ["<sip:1001@127.0.0.1:5070>;q=2"],
        ["<sip:1001@127.0.0.1:5070>;q=high"],
        ["<tel:+390461123456>"],
        ["<sip:1001@127.0.0.1:5071>", "<sip:1001@127.0.0.1:5070>;q=1e0"],
    ],
)
def test_bad_contact_is_400_and_nothing_changes(contacts: list[str]) -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0)
    before = registrar.lookup("1001")
    drain(registrar)
    response = phone.register(registrar, now=1.0, contacts=contacts)
    assert response.status == 400
    assert registrar.lookup("1001") == before and drain(registrar) == []


def test_one_too_brief_contact_rejects_the_whole_register() -> None:
    registrar = make_registrar()
    phone = Phone()
    contacts = ["<sip:1001@127.0.0.1:5071>;expires=600", "<sip:1001@127.0.0.1:5072>;expires=10"]
    assert phone.register(registrar, now=0.0, contacts=contacts).status == 423
    assert registrar.lookup("1001") == []


def test_contacts_per_user_are_bounded() -> None:
    registrar = make_registrar(max_contacts=2)
    phone = Phone()
    contacts = [f"<sip:1001@127.0.0.1:{5070 + i}>" for i in range(3)]
    assert phone.register(registrar, now=0.0, contacts=contacts).status == 403
    assert phone.register(registrar, now=0.0, contacts=contacts[:2]).status == 200
    removing_one = [contacts[0] + ";expires=0", contacts[2]]
    assert phone.register(registrar, now=1.0, contacts=removing_one).status == 200
    assert {b.contact.uri.port for b in registrar.lookup("1001")} == {5071, 5072}


def test_an_address_of_record_without_user_is_404() -> None:
    registrar = make_registrar()
    request = Phone().request(None, 60)
    request.headers.set("To", "<sip:127.0.0.1>")
    assert registrar.handle_register(request, ("127.0.0.1", 5070), now=0.0).status == 404


@pytest.mark.parametrize(
    ("name", "value"), [("CSeq", "x REGISTER"), ("To", "<sip:1001@"), ("Call-ID", None)]
)
def test_malformed_register_is_400_not_an_exception(name: str, value: str | None) -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0)
    request = phone.request(None, 60)
    phone.authorize(request)
    if value is None:
        request.headers.remove(name)
    else:
        request.headers.set(name, value)
    response = registrar.handle_register(request, phone.source, now=1.0)
    assert response.status == 400


def test_only_register_is_handled() -> None:
    registrar = make_registrar()
    request = Phone().request(None, 60)
    options = Request("OPTIONS", request.uri, request.headers)
    with pytest.raises(LocalProtocolError):
        registrar.handle_register(options, ("127.0.0.1", 5070), now=0.0)


def test_the_to_tag_comes_from_the_injected_factory() -> None:
    tags = iter(["tag-a", "tag-b"])
    registrar = make_registrar(tag_factory=lambda: next(tags))
    phone = Phone()
    first = phone.send(registrar, phone.request(None, 60), now=0.0)
    assert first.to.tag == "tag-a"


# -- keep-alive pings -------------------------------------------------------------------


def test_pings_are_due_at_the_interval_and_not_repeated_while_in_flight() -> None:
    registrar = make_registrar(ping_interval=30.0, max_ping_failures=3)
    phone = Phone(contact_host="10.0.0.5", source=("198.51.100.2", 6000))
    phone.register(registrar, now=0.0, expires=3600)
    assert registrar.get_timer() == 30.0
    assert registrar.due_pings(now=29.9) == []
    (ping,) = registrar.due_pings(now=30.0)
    assert ping.user == "1001" and ping.target_addr == ("198.51.100.2", 6000)
    assert registrar.due_pings(now=31.0) == []
    assert registrar.get_timer() == 3600.0  # the ping in flight does not wake us
    registrar.ping_result(ping.binding.binding_id, True, now=31.0)
    assert registrar.get_timer() == 61.0


def test_consecutive_ping_failures_remove_the_binding_as_unreachable() -> None:
    registrar = make_registrar(ping_interval=30.0, max_ping_failures=3)
    phone = Phone()
    phone.register(registrar, now=0.0, expires=3600)
    drain(registrar)
    now = 0.0
    for outcome in (False, False, True, False, False):  # a success resets the count
        now = registrar.get_timer() or 0.0
        (ping,) = registrar.due_pings(now=now)
        registrar.ping_result(ping.binding.binding_id, outcome, now=now + 1)
    assert len(registrar.lookup("1001")) == 1 and drain(registrar) == []
    now = registrar.get_timer() or 0.0
    (ping,) = registrar.due_pings(now=now)
    registrar.ping_result(ping.binding.binding_id, False, now=now + 32)
    assert registrar.lookup("1001") == []
    (event,) = drain(registrar)
    assert isinstance(event, ContactRemoved) and event.reason is RemovalReason.UNREACHABLE
    assert event.at == now + 32
    registrar.ping_result(ping.binding.binding_id, False, now=now + 40)  # late: ignored
    assert drain(registrar) == []


def test_a_refresh_clears_ping_failures() -> None:
    registrar = make_registrar(ping_interval=30.0, max_ping_failures=2)
    phone = Phone()
    phone.register(registrar, now=0.0, expires=3600)
    (ping,) = registrar.due_pings(now=30.0)
    registrar.ping_result(ping.binding.binding_id, False, now=31.0)
    phone.register(registrar, now=40.0, expires=3600)
    (ping,) = registrar.due_pings(now=61.0)
    registrar.ping_result(ping.binding.binding_id, False, now=62.0)
    assert len(registrar.lookup("1001")) == 1


def test_pings_can_be_disabled() -> None:
    registrar = make_registrar(ping_interval=None)
    Phone().register(registrar, now=0.0, expires=600)
    assert registrar.get_timer() == 600.0
    assert registrar.due_pings(now=500.0) == []
