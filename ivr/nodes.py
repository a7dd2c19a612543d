"""How entering each kind of IVR node behaves: the node handlers of :class:`ivr.engine.IvrRun`.

Each handler plays the node's prompts with what follows them (a :class:`Then`), walks on
to another node, or finishes the run with a command (queue, voicemail, transfer, hang
up). :class:`NodeEntry` is the part of the run they see; the interpreter (phases,
inputs, menus, effects) is :mod:`ivr.engine`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ivr.config import (
    HangupNode,
    LanguageNode,
    MenuNode,
    NoticeNode,
    PlayNode,
    QueueNode,
    ScheduleNode,
    TransferNode,
    VoicemailNode,
)
from ivr.events import (
    Command,
    EnqueueCall,
    Fact,
    HangUp,
    LanguageChanged,
    Outcome,
    StartVoicemail,
    TransferCall,
)
from routing.calendar import Closed, State

NoticeLookup = Callable[[], str | None]


@dataclass(frozen=True, slots=True)
class Then:
    """What to do when the current prompt list ends."""

    kind: Literal["goto", "collect", "finish"]
    node: str = ""
    command: Command | None = None
    outcome: Outcome = "hangup"
    to_queue: str | None = None


class NodeEntry:
    """The node handlers, and the state and effects of the run they use."""

    _language: str
    _facts: deque[Fact]
    _state: State
    _notice: NoticeLookup | None
    _welcome: bool

    # The run's walk and effects, which IvrRun (ivr.engine) defines.
    def _enter(self, node_id: str, *, now: float, digit: str | None = None) -> None:
        raise NotImplementedError

    def _play(self, prompts: list[str], *, barge_in: bool, then: Then) -> None:
        raise NotImplementedError

    def _announce(self, prompts: list[str], then: Then, now: float) -> None:
        raise NotImplementedError

    def _enter_play(self, node: PlayNode, now: float) -> None:
        self._play(node.prompts, barge_in=node.barge_in, then=Then("goto", node.next))
        self._welcome = node.welcome

    def _enter_menu(self, node: MenuNode, now: float) -> None:
        self._play(node.prompts, barge_in=node.barge_in, then=Then("collect"))

    def _enter_language(self, node: LanguageNode, now: float) -> None:
        if node.language != self._language:
            self._language = node.language
            self._facts.append(LanguageChanged(at=now, language=node.language))
        self._enter(node.next, now=now)

    def _enter_schedule(self, node: ScheduleNode, now: float) -> None:
        if not isinstance(self._state, Closed):
            self._enter(node.open, now=now)
        elif self._state.reason == "holiday" and node.holiday is not None:
            self._enter(node.holiday, now=now)
        else:
            self._enter(node.closed, now=now)

    def _enter_notice(self, node: NoticeNode, now: float) -> None:
        prompt = self._notice() if self._notice is not None else None
        if prompt is None:
            self._enter(node.next, now=now)
        else:
            then = Then("goto", node.next)
            self._play([*node.prompts, prompt], barge_in=node.barge_in, then=then)

    def _enter_voicemail(self, node: VoicemailNode, now: float) -> None:
        command = StartVoicemail(
            mailbox=node.mailbox, max_seconds=node.max_seconds, language=self._language
        )
        self._announce(node.prompts, Then("finish", command=command, outcome="voicemail"), now)

    def _enter_queue(self, node: QueueNode, now: float) -> None:
        command = EnqueueCall(
            queue=node.queue, priority=node.priority, skill=node.skill or node.queue
        )
        then = Then("finish", command=command, outcome="queue", to_queue=node.queue)
        self._announce(node.prompts, then, now)

    def _enter_transfer(self, node: TransferNode, now: float) -> None:
        then = Then("finish", command=TransferCall(number=node.number), outcome="transfer")
        self._announce(node.prompts, then, now)

    def _enter_hangup(self, node: HangupNode, now: float) -> None:
        self._announce(node.prompts, Then("finish", command=HangUp(reason=node.reason)), now)

    # Node type -> how entering it behaves.
    _ENTER: ClassVar[Mapping[type, Callable[[NodeEntry, Any, float], None]]] = {
        PlayNode: _enter_play,
        MenuNode: _enter_menu,
        LanguageNode: _enter_language,
        ScheduleNode: _enter_schedule,
        NoticeNode: _enter_notice,
        VoicemailNode: _enter_voicemail,
        QueueNode: _enter_queue,
        TransferNode: _enter_transfer,
        HangupNode: _enter_hangup,
    }
