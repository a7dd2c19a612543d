"""The B2BUA's index of live calls: by Call-ID, media leg and operator leg Call-ID.

It also remembers what outlives a call for a while: operator legs we gave up on before
any 2xx (a 2xx crossing our CANCEL must still be ACKed, then hung up: RFC 3261 §9.1,
§13.2.2.4), and the BYEs we sent, whose final response ends their dialog (§15.1.1).
"""

from __future__ import annotations

from collections.abc import Callable

from routing.legs import CallerLeg, OperatorLeg
from sip.dialog import DialogSet
from sip.message import Request, Response, make_response
from sip.transaction import ClientTransactionKey

ENDED_MEMORY = 4096
"""Ended calls remembered for late facts, as the ACD remembers answered calls."""


class CallRegistry:
    """Live caller legs and the operator legs hanging off them."""

    __slots__ = (
        "_by_call_id",
        "_by_leg_key",
        "_by_media_leg",
        "_by_operator_call_id",
        "_byes",
        "_ended",
        "_released",
    )

    def __init__(self) -> None:
        self._by_call_id: dict[str, CallerLeg] = {}
        self._by_media_leg: dict[str, CallerLeg] = {}
        self._by_operator_call_id: dict[str, tuple[CallerLeg, OperatorLeg]] = {}
        self._by_leg_key: dict[ClientTransactionKey, tuple[CallerLeg, OperatorLeg]] = {}
        self._released: dict[ClientTransactionKey, OperatorLeg] = {}
        self._byes: dict[ClientTransactionKey, Request] = {}
        self._ended: dict[str, CallerLeg] = {}

    def __len__(self) -> int:
        return len(self._by_call_id)

    def live(self) -> list[CallerLeg]:
        """Every call not yet ended."""
        return list(self._by_call_id.values())

    def add(self, call: CallerLeg) -> None:
        """Index a new caller leg."""
        self._by_call_id[call.call_id] = call
        self._by_media_leg[call.media_leg] = call

    def remove(self, call: CallerLeg) -> None:
        """Forget a caller leg and its operator legs (remembering it as `ended`)."""
        if self._by_call_id.pop(call.call_id, None) is not None:
            self._ended[call.call_id] = call
            if len(self._ended) > ENDED_MEMORY:
                del self._ended[next(iter(self._ended))]
        self._by_media_leg.pop(call.media_leg, None)
        for leg in list(call.operator_legs.values()):
            self.remove_leg(call, leg)

    def add_leg(self, call: CallerLeg, leg: OperatorLeg) -> None:
        """Index an operator leg of `call`."""
        call.operator_legs[leg.operator] = leg
        self._by_media_leg[leg.media_leg] = call
        self._by_operator_call_id[leg.call_id] = (call, leg)
        self._by_leg_key[leg.key] = (call, leg)

    def remove_leg(self, call: CallerLeg, leg: OperatorLeg) -> None:
        """Forget one operator leg."""
        if call.operator_legs.get(leg.operator) is leg:
            del call.operator_legs[leg.operator]
        self._by_media_leg.pop(leg.media_leg, None)
        self._by_operator_call_id.pop(leg.call_id, None)
        self._by_leg_key.pop(leg.key, None)

    def get(self, call_id: str) -> CallerLeg | None:
        """The caller leg with this Call-ID."""
        return self._by_call_id.get(call_id)

    def ended(self, call_id: str) -> CallerLeg | None:
        """A call that ended recently: facts about it still come (the operator's
        disposition after the call) and are logged with its service and queue."""
        return self._ended.get(call_id)

    def by_media_leg(self, media_leg: str) -> CallerLeg | None:
        """The call a media leg belongs to."""
        return self._by_media_leg.get(media_leg)

    def by_operator_call_id(self, call_id: str) -> CallerLeg | None:
        """The call whose operator leg has this Call-ID."""
        found = self._by_operator_call_id.get(call_id)
        return found[0] if found else None

    def leg_by_call_id(self, call_id: str) -> tuple[CallerLeg, OperatorLeg] | None:
        """The operator leg with this Call-ID and its call."""
        return self._by_operator_call_id.get(call_id)

    def leg_by_key(self, key: ClientTransactionKey) -> tuple[CallerLeg, OperatorLeg] | None:
        """The operator leg whose INVITE transaction this is."""
        return self._by_leg_key.get(key)

    def offers(self) -> list[tuple[CallerLeg, OperatorLeg]]:
        """Every live operator leg and its call."""
        return list(self._by_leg_key.values())

    # -- what outlives a call ------------------------------------------------------------

    def release_leg(self, call: CallerLeg, leg: OperatorLeg) -> None:
        """Forget an operator leg; one given up before any 2xx is kept by its INVITE's
        key until `prune_released`, for a 2xx that crosses our CANCEL."""
        self.remove_leg(call, leg)
        if leg.dialog is None and not leg.answered:
            self._released[leg.key] = leg

    def released(self, key: ClientTransactionKey) -> OperatorLeg | None:
        """A released operator leg whose INVITE this is."""
        return self._released.get(key)

    def prune_released(self, alive: Callable[[ClientTransactionKey], bool]) -> None:
        """Drop released legs whose INVITE transaction has ended (no 2xx can come)."""
        for key in [k for k in self._released if not alive(k)]:
            del self._released[key]

    def bye_sent(self, key: ClientTransactionKey, bye: Request) -> None:
        """Remember a BYE we sent until its final response (or its timeout)."""
        self._byes[key] = bye

    def bye_answered(
        self,
        dialogs: DialogSet,
        key: ClientTransactionKey,
        response: Response | None,
        *,
        now: float,
    ) -> None:
        """A final response to a BYE we sent (None: none came) ends its dialog."""
        bye = self._byes.pop(key, None)
        if bye is not None:
            # §12.2.1.2: a 408 (here, no answer at all) ends the dialog too.
            dialogs.receive_response(bye, response or make_response(bye, 408), now=now)

    def reap(
        self, dialogs: DialogSet, alive: Callable[[ClientTransactionKey], bool], *, now: float
    ) -> None:
        """Forget what the transaction layer has finished with: BYEs it ended with no
        final response passed up (their dialogs end), and released offers (Timer B, D or
        M has fired, so no 2xx can come any more)."""
        for key in [k for k in self._byes if not alive(k)]:
            self.bye_answered(dialogs, key, None, now=now)
        self.prune_released(alive)

    @property
    def lingering(self) -> int:
        """Released legs and BYEs still awaiting their transactions (for leak tests)."""
        return len(self._released) + len(self._byes)
