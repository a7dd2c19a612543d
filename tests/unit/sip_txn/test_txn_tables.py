"""The RFC figures as data: every transition has its side-effect method, every state is
reachable from the initial one, and Terminated is reachable from every state."""

from __future__ import annotations

import pytest
from txn_link import B, Link, events, request

from sip.client_transaction import InviteClientTransaction, NonInviteClientTransaction
from sip.events import RequestReceived, ResponseReceived
from sip.message import make_response
from sip.server_transaction import InviteServerTransaction, NonInviteServerTransaction
from sip.transaction import Machine, State, Table

MACHINES: list[tuple[type[Machine], State]] = [
    (InviteClientTransaction, State.CALLING),
    (NonInviteClientTransaction, State.TRYING),
    (InviteServerTransaction, State.PROCEEDING),
    (NonInviteServerTransaction, State.TRYING),
]


def reachable(table: Table, start: State) -> set[State]:
    seen, todo = {start}, [start]
    while todo:
        for target in table[todo.pop()].values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize(("machine", "initial"), MACHINES, ids=lambda m: getattr(m, "__name__", ""))
def test_every_transition_has_a_handler(machine: type[Machine], initial: State) -> None:
    inputs = {event for row in machine.TABLE.values() for event in row}
    missing = [e.value for e in inputs if not callable(getattr(machine, "_on_" + e.value, None))]
    assert missing == []


@pytest.mark.parametrize(("machine", "initial"), MACHINES, ids=lambda m: getattr(m, "__name__", ""))
def test_every_state_is_reachable_and_can_terminate(machine: type[Machine], initial: State) -> None:
    table = machine.TABLE
    assert reachable(table, initial) == set(table)
    assert all(State.TERMINATED in reachable(table, state) for state in table)


def test_timer_k_ends_a_completed_non_invite_client_transaction_after_t4() -> None:
    link = Link()
    key = link.a.send_request(request("OPTIONS"), B, now=0.0)
    link.transfer()
    (got,) = events(link.b)
    assert isinstance(got, RequestReceived)
    link.b.send_response(got.key, make_response(got.request, 200, to_tag="k"), now=0.0)
    link.transfer()
    assert [type(e) for e in events(link.a)] == [ResponseReceived]
    link.run_until(4.99)
    assert link.a.client_state(key) is State.COMPLETED
    link.run_until(5.0)
    assert link.a.client_state(key) is None
