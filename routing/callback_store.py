"""Pending callbacks across a restart of the switch (issue 5), without I/O.

The ACD keeps its queues in memory. While the switch runs, `snapshot` gives the
callbacks still to be served as `SavedCallback`s, which the runtime checkpoints to a
file (`encode`) whenever they change, so a crash loses at most the last moments; at a
clean shutdown the ones still waiting for their turn (`routing.callback`: nobody on any
leg) are saved the same way (`pending_at_shutdown`); at the next start, once the ACD is
built and before SIP is served, `restore` puts each back:

- in the ACD, with `restore_callback` at its original queue-entry time converted from
  the saved wall time to this process's monotonic clock (`entered_at`), with the saved
  number, the attempts already made and any retry delay still running. The engine
  serves by priority, then entry time, so the callback keeps its place ahead of everyone
  who queued after it, before or after the restart; as a promise already made it joins
  even a full queue, or one whose `on_no_operator` would turn a new caller away (at
  start nobody is logged in yet);
- in call control, as the first caller record that `routing.callback.revive` copies
  when its turn comes: the identity the operator's screen pop shows (the From header),
  the number the citizen called (the To header: they see it calling back), the trunk.

The call keeps its call id and its event log goes on: no second `arrived`; one `queued`
with `callback: restored` marks the restart (the KPI engine, which replayed the month,
keeps the first queue entry; queue_log enters a call once). A callback that cannot be
restored (its queue removed or no longer offering callbacks, an unreadable entry, a call
id in use) ends as a lost one always did: `overflowed` (reason `shutdown`) then `ended`;
the process log gives the count and the reason, never the numbers. The file's form is
`routing.callback_codec`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import TYPE_CHECKING

from acd.errors import AcdError
from media.sdp import Direction
from media.session import MediaParams
from metrics.events import EventKind
from routing import acd_glue, callback
from routing.callback_codec import (
    VERSION,
    CallbackFileError,
    Lost,
    SavedCallback,
    decode,
    encode,
)
from routing.legs import CITIZEN, CallerLeg, Phase
from sip.header_fields import Headers
from sip.headers import parse_address
from sip.message import Request
from sip.transaction import ServerTransactionKey

if TYPE_CHECKING:
    from routing.b2bua import B2bua

__all__ = [
    "LOST_REASON",
    "VERSION",
    "CallbackFileError",
    "Lost",
    "SavedCallback",
    "decode",
    "encode",
    "end_lost",
    "pending_at_shutdown",
    "restore",
    "saved",
    "snapshot",
]

log = logging.getLogger(__name__)

LOST_REASON = "shutdown"
"""The `overflowed` reason of a callback lost at a restart (docs/events.md)."""

# -- shutdown -------------------------------------------------------------------------------


def pending_at_shutdown(b2bua: B2bua, *, now: float) -> list[SavedCallback]:
    """The callbacks to save, by queue entry: after the engine's last words are drained
    (a final failed attempt ends the call), an offer made in the last instants of the
    shutdown is withdrawn (its callback waits again, with no leg up)."""
    acd_glue.drain(b2bua, now=now)
    book = callback.desk(b2bua)
    for call in b2bua.calls.live():
        citizen = call.operator_legs.get(CITIZEN)
        if call.call_id in book.waiting and (citizen is None or not citizen.answered):
            b2bua.hang_up(call, reason="shutdown", now=now)
    waiting = [c for c in book.waiting.values() if b2bua.calls.get(c.call_id) is None]
    return sorted((_saved(b2bua, first, now=now) for first in waiting), key=lambda s: s.entered)


def snapshot(b2bua: B2bua, *, now: float) -> list[SavedCallback]:
    """The callbacks a crash now would lose, by queue entry, touching nothing (the
    runtime's checkpoint): every one waiting, offered or dialing the citizen; not one
    whose citizen has answered (that conversation is the callback being served)."""
    book = callback.desk(b2bua)
    pending = [first for first in book.waiting.values() if not _served(b2bua, first.call_id)]
    return sorted((_saved(b2bua, first, now=now) for first in pending), key=lambda s: s.entered)


def _served(b2bua: B2bua, call_id: str) -> bool:
    call = b2bua.calls.get(call_id)
    citizen = call.operator_legs.get(CITIZEN) if call is not None else None
    return citizen is not None and citizen.answered


def _saved(b2bua: B2bua, first: CallerLeg, *, now: float) -> SavedCallback:
    book = callback.desk(b2bua)
    entered = first.queued_at if first.queued_at is not None else first.arrived_at
    retry = b2bua.acd.callback_retry_at(first.call_id)
    return SavedCallback(
        call_id=first.call_id,
        service=first.service,
        sub_service=first.sub_service,
        queue=first.queue or "",
        number=callback.caller_number(first),
        from_header=first.invite.headers.get("from") or "",
        to_header=first.invite.headers.get("to") or "",
        caller=first.caller,
        language=first.language,
        trunk=first.addr,
        codec=first.media.codec.name,
        priority=book.priority.get(first.call_id, 0),
        attempts=book.attempts.get(first.call_id, 0),
        entered=b2bua.wall(entered).astimezone(UTC),
        retry_at=b2bua.wall(retry).astimezone(UTC) if retry is not None and retry > now else None,
    )


def saved(b2bua: B2bua, callbacks: Sequence[SavedCallback]) -> None:
    """`callbacks` are safely stored: call control forgets them, and says how many
    per queue (never the numbers: personal data)."""
    book = callback.desk(b2bua)
    for item in callbacks:
        book.waiting.pop(item.call_id, None)
    for queue, count in sorted(Counter(c.queue for c in callbacks).items()):
        log.warning(
            "shutdown: %d pending callbacks of queue %s saved for the next start", count, queue
        )


# -- start ----------------------------------------------------------------------------------


def restore(b2bua: B2bua, callbacks: Iterable[SavedCallback], *, now: float) -> list[Lost]:
    """Put each callback back in its queue and in call control, keeping its place: its
    saved wall time of entry becomes a monotonic instant by its distance from
    `b2bua.wall(now)`. The ones that cannot come back are returned, for `end_lost`."""
    wall_now = b2bua.wall(now)
    lost = []
    restored: Counter[str] = Counter()
    for item in sorted(callbacks, key=lambda c: c.entered):
        entered_at = now - max(0.0, (wall_now - item.entered).total_seconds())
        reason = _unrestorable(b2bua, item) or _enqueue(b2bua, item, entered_at, now=now)
        if reason is None:
            _keep(b2bua, item, entered_at=entered_at, now=now)
            restored[item.queue] += 1
        else:
            lost.append(_lost(item, reason))
    acd_glue.drain(b2bua, now=now)  # the engine's facts about calls with no record yet
    for queue, count in sorted(restored.items()):
        log.info("restart: %d pending callbacks of queue %s restored", count, queue)
    return lost


def _unrestorable(b2bua: B2bua, item: SavedCallback) -> str | None:
    """Why the callback cannot come back, before asking the engine (None: it may)."""
    config = b2bua.acd.queue_config(item.queue)
    if config is None:
        return "queue removed from the configuration"
    if config.callback_digit is None:
        return "queue offers no callback any more"
    waiting = callback.desk(b2bua).waiting
    known = item.call_id in waiting or b2bua.calls.get(item.call_id) is not None
    if known or b2bua.acd.call_state(item.call_id) is not None:
        return "call id already in use"
    return None


def _enqueue(b2bua: B2bua, item: SavedCallback, entered_at: float, *, now: float) -> str | None:
    """The engine takes the callback back at `entered_at` (None), or why not."""
    retry_at = None
    if item.retry_at is not None:
        retry_at = now + (item.retry_at - b2bua.wall(now)).total_seconds()
    try:
        b2bua.acd.restore_callback(
            item.call_id, item.queue, number=item.number, entered_at=entered_at,
            priority=item.priority, caller=item.caller, attempts=item.attempts,
            retry_at=retry_at, now=now,
        )  # fmt: skip
    except AcdError as exc:
        return f"refused by the queue ({exc})"
    return None


def _keep(b2bua: B2bua, item: SavedCallback, *, entered_at: float, now: float) -> None:
    book = callback.desk(b2bua)
    first = _record(b2bua, item, entered_at=entered_at)
    book.waiting[item.call_id] = first
    if item.priority:
        book.priority[item.call_id] = item.priority
    if item.attempts:
        book.attempts[item.call_id] = item.attempts
    b2bua.emit(EventKind.QUEUED, first, now=now, data={"callback": "restored"})


def _record(b2bua: B2bua, item: SavedCallback, *, entered_at: float) -> CallerLeg:
    """The first caller record of a restored callback: nobody on the line, no dialog;
    what its offer and the citizen's INVITE read (From, To, codec, trunk)."""
    codecs = b2bua.config.codecs
    codec = next((c for c in codecs if c.name == item.codec), codecs[0])
    invite = Request(
        "INVITE",
        str(parse_address(item.to_header).uri),
        Headers.of(
            ("From", item.from_header),
            ("To", item.to_header),
            ("Call-ID", item.call_id),
            ("CSeq", "1 INVITE"),
        ),
    )
    media = MediaParams(
        codec=codec, receive_payload_type=codec.payload_type, telephone_event_pt=None,
        receive_telephone_event_pt=None, remote_addr="0.0.0.0", remote_port=0,
        direction=Direction.INACTIVE, on_hold=True,
    )  # fmt: skip
    return CallerLeg(
        call_id=item.call_id, service=item.service, media_leg=f"{item.call_id}/callback",
        invite=invite, key=ServerTransactionKey(f"restored-{item.call_id}", "", "INVITE"),
        addr=item.trunk, media=media, caller=item.caller, arrived_at=entered_at,
        phase=Phase.QUEUED, queue=item.queue, sub_service=item.sub_service,
        language=item.language, queued_at=entered_at,
    )  # fmt: skip


def _lost(item: SavedCallback, reason: str) -> Lost:
    return Lost(
        call_id=item.call_id,
        service=item.service,
        sub_service=item.sub_service,
        queue=item.queue,
        reason=reason,
    )


def end_lost(b2bua: B2bua, lost: Sequence[Lost], *, now: float) -> None:
    """Log how many callbacks are lost and why (never their numbers), and end each in
    the event log as a shutdown drop does: `overflowed` then `ended`."""
    for (queue, reason), count in sorted(Counter((c.queue or "", c.reason) for c in lost).items()):
        log.warning("restart: %d pending callbacks of queue %s lost: %s", count, queue, reason)
    facts = (
        (EventKind.OVERFLOWED, {"reason": LOST_REASON, "action": "callback"}),
        (EventKind.ENDED, {"by": "switch", "reason": LOST_REASON}),
    )
    for item in lost:
        for kind, data in facts:
            b2bua.record(
                kind, at=now, call_id=item.call_id, service=item.service,
                sub_service=item.sub_service, queue=item.queue, operator=None, data=data,
            )  # fmt: skip
