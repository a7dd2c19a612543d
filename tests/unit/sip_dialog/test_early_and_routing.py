"""Early dialogs, forking and strict routing (RFC 3261 §12.1, §12.2.1.1, §12.3, §13.2.2)."""

from __future__ import annotations

from dialog_link import ALICE, BOB, Endpoint, invite

from sip.dialog import DialogId, DialogSet, DialogState, Role
from sip.message import Request, Response, make_response


def reply(
    request: Request, status: int, tag: str | None, *, contact: str = "<sip:b@10.0.0.2>"
) -> Response:
    extra: tuple[tuple[str, str], ...] = (("Contact", contact),) if status != 100 else ()
    extra += tuple(("Record-Route", rr) for rr in request.headers.values("record-route"))
    return make_response(request, status, to_tag=tag, extra=extra)


def setup() -> tuple[DialogSet, Request]:
    alice, bob = Endpoint(ALICE, "alice"), Endpoint(BOB, "bob")
    return alice.dialogs, invite(alice, bob)


def test_100_and_180_without_tag_make_no_dialog() -> None:
    dialogs, request = setup()
    assert dialogs.receive_response(request, reply(request, 100, None), now=0.0) is None
    assert dialogs.receive_response(request, reply(request, 180, None), now=0.0) is None
    assert len(dialogs) == 0


def test_180_with_tag_makes_an_early_dialog_that_the_200_confirms() -> None:
    dialogs, request = setup()
    early = dialogs.receive_response(
        request, reply(request, 180, "x", contact="<sip:b@10.0.0.2:1>"), now=0.0
    )
    assert early is not None and early.state.value == "early" and early.invite_pending
    confirmed = dialogs.receive_response(
        request, reply(request, 200, "x", contact="<sip:b@10.0.0.2:2>"), now=0.0
    )
    assert confirmed is early and early.state is DialogState.CONFIRMED
    assert early.remote_target == "sip:b@10.0.0.2:2" and not early.invite_pending
    assert len(dialogs) == 1


def test_forked_2xx_make_one_dialog_per_to_tag() -> None:
    dialogs, request = setup()
    first = dialogs.receive_response(request, reply(request, 200, "fork1"), now=0.0)
    second = dialogs.receive_response(request, reply(request, 200, "fork2"), now=0.0)
    assert first is not None and second is not None and first is not second
    assert {first.id.remote_tag, second.id.remote_tag} == {"fork1", "fork2"}
    assert len(dialogs) == 2


def test_non_2xx_final_ends_the_early_dialogs() -> None:
    dialogs, request = setup()
    dialogs.receive_response(request, reply(request, 183, "e1"), now=0.0)
    dialogs.receive_response(request, reply(request, 180, "e2"), now=0.0)
    assert len(dialogs) == 2
    assert dialogs.receive_response(request, reply(request, 486, "e2"), now=0.0) is None
    assert len(dialogs) == 0


def test_uas_early_dialog_from_our_183_then_confirmed_by_our_200() -> None:
    dialogs, request = setup()
    early = dialogs.response_sent(request, reply(request, 183, "me"))
    assert early is not None and early.role is Role.UAS and early.remote_invite_pending
    assert dialogs.response_sent(request, reply(request, 200, "me")) is early
    assert early.state is DialogState.CONFIRMED and not early.remote_invite_pending
    key = DialogId(request.call_id, "me", request.from_.tag or "")
    assert dialogs.get(key) is early


def test_strict_first_route_becomes_the_request_uri_and_the_target_goes_last() -> None:
    alice, bob = Endpoint(ALICE, "alice"), Endpoint(BOB, "bob")
    request = invite(
        alice, bob, record_route=("<sip:loose.example.com;lr>", "<sip:strict.example.com>")
    )
    dialog = alice.dialogs.receive_response(request, reply(request, 200, "t"), now=0.0)
    assert dialog is not None
    bye = dialog.create_request("BYE")
    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.values("route") == ["<sip:loose.example.com;lr>", "<sip:b@10.0.0.2>"]


def test_loose_route_set_keeps_the_remote_target_as_request_uri() -> None:
    alice, bob = Endpoint(ALICE, "alice"), Endpoint(BOB, "bob")
    request = invite(alice, bob, record_route=("<sip:p.example.com;lr>",))
    dialog = alice.dialogs.receive_response(request, reply(request, 200, "t"), now=0.0)
    assert dialog is not None
    bye = dialog.create_request("BYE")
    assert bye.uri == "sip:b@10.0.0.2"
    assert bye.headers.values("route") == ["<sip:p.example.com;lr>"]


def test_out_of_dialog_request_is_not_the_dialog_sets_business() -> None:
    dialogs, request = setup()
    assert dialogs.receive_request(request) is None
