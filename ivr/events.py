"""Inputs, commands and facts of an IVR run.

Inputs are what the call-control layer tells the run (a digit from RFC 4733, the end
of a prompt, the caller's hang-up); commands are what the run asks of it; facts are
timestamped records for the event log, from which the KPIs exclude IVR and welcome
time from the answer time Tm (tender Appendix 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# --- inputs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitReceived:
    """A DTMF digit arrived (RFC 4733 DTMF event 0–9, *, #)."""

    digit: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptFinished:
    """The prompt list of ``PlayPrompt(play_id=...)`` finished playing."""

    at: float
    play_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHungUp:
    """The caller hung up while in the IVR."""

    at: float


Input = DigitReceived | PromptFinished | CallerHungUp

# --- commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayPrompt:
    """Play these prompts in order, in ``language``; answer with ``PromptFinished``.

    ``barge_in`` tells the media layer that a digit may stop the prompt (the run then
    sends ``StopPrompt``; no ``PromptFinished`` is needed for a stopped prompt).
    """

    prompts: tuple[str, ...]
    language: str
    barge_in: bool
    play_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPrompt:
    """Stop the prompt being played (the caller barged in)."""

    play_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueueCall:
    """Put the call in an ACD queue."""

    queue: str
    priority: int
    skill: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferCall:
    """Transfer the call to an external number via the trunk."""

    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartVoicemail:
    """Record a message of at most ``max_seconds`` into ``mailbox``."""

    mailbox: str
    max_seconds: int
    language: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUp:
    """End the call."""

    reason: str


Command = PlayPrompt | StopPrompt | EnqueueCall | TransferCall | StartVoicemail | HangUp

# --- facts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrEntered:
    at: float
    service: str
    language: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WelcomeFinished:
    """The welcome message ended (played out or barged into)."""

    at: float
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitPressed:
    at: float
    digit: str
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceMade:
    at: float
    node: str
    digit: str
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceFailed:
    """An invalid digit or silence at a menu; ``attempt`` counts from 1."""

    at: float
    node: str
    cause: Literal["invalid", "timeout"]
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LanguageChanged:
    at: float
    language: str


Outcome = Literal["queue", "voicemail", "transfer", "hangup", "caller_hung_up", "error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrLeft:
    """The call left the IVR; ``to_queue`` is set when it went to a queue."""

    at: float
    to_queue: str | None
    outcome: Outcome


Fact = (
    IvrEntered
    | WelcomeFinished
    | DigitPressed
    | ChoiceMade
    | ChoiceFailed
    | LanguageChanged
    | IvrLeft
)
