"""E-mail to the services' referents: callback forms and voicemails, through an SMTP relay.

Every e-mail is first written to the persistent outbox (`server.persist.MailStore`), then
handed to the relay by one background task; stdlib `smtplib` runs in a worker thread so
the event loop (and the media tick) never waits for the network. When the relay is down
or refuses a message temporarily the message stays in the outbox and is retried with an
exponential backoff (RFC 5321 §4.5.4.1 asks senders to retry, spacing attempts out), after
a restart as well: nothing acknowledged is ever lost. The relay's "accepted" (250 after
DATA, RFC 5321 §4.1.1.4) is the only thing that removes a message from the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from server.api_types import CallbackForm
from server.persist import MailStore, Outgoing, PendingMail, StoreError

__all__ = ["MailSettings", "Mailer", "MailerError", "SmtpRelay", "smtp_send"]

log = logging.getLogger(__name__)

SendMail = Callable[["SmtpRelay", Outgoing], None]


class MailerError(Exception):
    """A message that cannot be queued (no mailbox for the service, unreadable file)."""


class SmtpRelay(BaseModel):
    """The relay every e-mail goes through (RFC 5321 submission to a smarthost)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(10.0, gt=0)


def _mailbox(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or any(c in value for c in "\r\n"):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


class MailSettings(BaseModel):
    """The `mail:` section: relay, sender, and each service's referent mailbox."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    smtp: SmtpRelay
    sender: str = Field(alias="from")
    referents: dict[str, str] = Field(default_factory=dict)
    """Service (or queue) id -> the referents' mailbox; voicemail mailboxes too."""
    default_referent: str | None = None
    retry_initial: float = Field(30.0, gt=0)
    retry_max: float = Field(900.0, gt=0)

    @field_validator("sender", "default_referent")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        return None if value is None else _mailbox(value)

    @field_validator("referents")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        return {key: _mailbox(address) for key, address in value.items()}

    def referent(self, service: str) -> str | None:
        """The mailbox forms and voicemails of `service` go to."""
        return self.referents.get(service, self.default_referent)


def smtp_send(relay: SmtpRelay, mail: Outgoing) -> None:
    """Hand one message to the relay (blocking: run it in a worker thread)."""
    with smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout) as smtp:
        if relay.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if relay.username and relay.password is not None:
            smtp.login(relay.username, relay.password.get_secret_value())
        refused = smtp.sendmail(parseaddr(mail.sender)[1], list(mail.recipients), mail.data)
    if refused:
        log.warning("relay refused some recipients: %s", sorted(refused))


# Failures of one message (the relay is up and said no); anything else means the relay
# itself is unreachable or broken, and every message waits.
_MESSAGE_FAILURES = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
)


class Mailer:
    """The outbox and its sender task."""

    def __init__(
        self,
        settings: MailSettings,
        store: MailStore,
        *,
        clock: Callable[[], float],
        wall: Callable[[], datetime],
        send: SendMail = smtp_send,
    ) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock
        self._wall = wall
        self._send = send
        self._due: dict[int, float] = {}
        self._attempts: dict[int, int] = {}
        self._relay_failures = 0
        self._blocked_until = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[int]] = set()

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, schedule what a previous run left, start sending."""
        await asyncio.to_thread(self.store.open)
        pending = await asyncio.to_thread(self.store.pending)
        now = self._clock()
        for item in pending:
            self._schedule(item, at=now)
        if pending:
            log.info("outbox: %d e-mails left from a previous run", len(pending))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish queuing voicemails, stop the sender (pending mail stays stored)."""
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.store.close)

    @property
    def pending(self) -> int:
        """E-mails not yet accepted by the relay."""
        return len(self._due)

    # -- queuing -----------------------------------------------------------------------

    async def submit_form(self, form: CallbackForm) -> tuple[int, str]:
        """Store a callback form and queue its e-mail; returns (form id, recipient)."""
        to = self._recipient(form.service)
        received = self._wall()

        def mail(form_id: int) -> Outgoing:
            return self._outgoing(to, form_message(form, form_id=form_id, received=received))

        form_id, mail_id = await asyncio.to_thread(
            self.store.add_form,
            service=form.service,
            data=form.model_dump(mode="json"),
            received_at=received.isoformat(),
            mail=mail,
        )
        self._schedule(PendingMail(id=mail_id, kind="form", attempts=0), at=self._clock())
        return form_id, to

    def send_voicemail(self, service: str, path: Path, meta: Mapping[str, str]) -> None:
        """Queue a recorded voicemail (a WAV file) for the service's mailbox, in the
        background; errors are logged. Callable from the loop's thread, without awaiting."""
        job = asyncio.get_running_loop().create_task(self.queue_voicemail(service, path, meta))
        self._jobs.add(job)
        job.add_done_callback(self._voicemail_queued)

    async def queue_voicemail(self, service: str, path: Path, meta: Mapping[str, str]) -> int:
        """Store the voicemail's e-mail in the outbox; returns its outbox id."""
        to = self._recipient(service)
        received = self._wall()
        try:
            wav = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise MailerError(f"cannot read voicemail {path}: {exc.strerror}") from exc
        message = voicemail_message(service, path.name, wav, meta, received=received)
        outgoing = self._outgoing(to, message)
        mail_id = await asyncio.to_thread(
            self.store.add_mail, "voicemail", outgoing, created_at=received.isoformat()
        )
        self._schedule(PendingMail(id=mail_id, kind="voicemail", attempts=0), at=self._clock())
        return mail_id

    def _voicemail_queued(self, job: asyncio.Task[int]) -> None:
        self._jobs.discard(job)
        if not job.cancelled() and (error := job.exception()) is not None:
            log.error("voicemail not queued for e-mail: %s", error)

    def _recipient(self, service: str) -> str:
        to = self.settings.referent(service)
        if to is None:
            raise MailerError(f"no referent mailbox configured for {service!r}")
        return to

    def _outgoing(self, to: str, message: EmailMessage) -> Outgoing:
        message["From"] = self.settings.sender
        message["To"] = to
        # CRLF line ends (RFC 5321 §2.3.8): smtplib sends bytes as they are, and a relay
        # reading bare-LF text sees one line far longer than the 1000-octet limit.
        data = message.as_bytes(policy=policy.SMTP)
        return Outgoing(sender=self.settings.sender, recipients=(to,), data=data)

    def _schedule(self, item: PendingMail, *, at: float) -> None:
        self._due[item.id] = at
        self._attempts[item.id] = item.attempts
        self._wake.set()

    # -- sending -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = self._next_delay()
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue
            await self._send_next()

    def _next_delay(self) -> float | None:
        if not self._due:
            return None
        at = max(min(self._due.values()), self._blocked_until)
        return at - self._clock()

    async def _send_next(self) -> None:
        mail_id = min(self._due, key=lambda i: (self._due[i], i))
        try:
            found = await self._attempt(mail_id)
        except _MESSAGE_FAILURES as exc:
            await self._message_failed(mail_id, exc)
        except (OSError, smtplib.SMTPException) as exc:
            await self._relay_failed(mail_id, exc)
        except Exception as exc:
            # Whatever else goes wrong, the sender task must live on: the mail waits.
            log.exception("unexpected failure sending e-mail %d", mail_id)
            await self._relay_failed(mail_id, exc)
        else:
            if found:
                await self._sent(mail_id)
            else:
                self._forget(mail_id)

    async def _attempt(self, mail_id: int) -> bool:
        """Hand one stored message to the relay; False if it is no longer stored."""
        mail = await asyncio.to_thread(self.store.message, mail_id)
        if mail is None:
            return False
        await asyncio.to_thread(self._send, self.settings.smtp, mail)
        return True

    async def _sent(self, mail_id: int) -> None:
        self._relay_failures = 0
        self._blocked_until = 0.0
        self._forget(mail_id)
        try:
            await asyncio.to_thread(self.store.mark_sent, mail_id, at=self._wall().isoformat())
        except StoreError as exc:
            # Sent but not marked: a restart sends it again (at least once, never lost).
            log.error("e-mail %d sent but not marked as sent: %s", mail_id, exc)

    async def _message_failed(self, mail_id: int, error: Exception) -> None:
        """The relay refused this message: retry it alone, later."""
        attempts = self._attempts.get(mail_id, 0) + 1
        self._attempts[mail_id] = attempts
        self._due[mail_id] = self._clock() + self._backoff(attempts)
        await self._record_failure(mail_id, error)

    async def _relay_failed(self, mail_id: int, error: Exception) -> None:
        """The relay is unreachable: every message waits for the next attempt."""
        await self._record_failure(mail_id, error)
        self._relay_failures += 1
        self._attempts[mail_id] = self._attempts.get(mail_id, 0) + 1
        delay = self._backoff(self._relay_failures)
        self._blocked_until = self._clock() + delay
        self._due[mail_id] = self._blocked_until
        log.warning("SMTP relay failed (%s): next attempt in %.1f s", error, delay)

    async def _record_failure(self, mail_id: int, error: Exception) -> None:
        with contextlib.suppress(StoreError):
            await asyncio.to_thread(
                self.store.mark_failed, mail_id, f"{type(error).__name__}: {error}"
            )

    def _backoff(self, attempts: int) -> float:
        initial, ceiling = self.settings.retry_initial, self.settings.retry_max
        return float(min(ceiling, initial * 2 ** min(attempts - 1, 30)))

    def _forget(self, mail_id: int) -> None:
        self._due.pop(mail_id, None)
        self._attempts.pop(mail_id, None)


# -- messages ---------------------------------------------------------------------------

_FORM_LABELS = (
    ("surname", "Cognome / Surname"),
    ("name", "Nome / Name"),
    ("called_at", "Data e ora / Date and time"),
    ("person_sought", "Persona cercata / Person sought"),
    ("reason", "Motivo / Reason"),
    ("phone", "Telefono / Phone"),
    ("email", "E-mail"),
    ("operator", "Operatore / Operator"),
    ("call_id", "Chiamata / Call"),
)


def form_message(form: CallbackForm, *, form_id: int, received: datetime) -> EmailMessage:
    """The callback form as a plain-text e-mail to the referent (From and To added later)."""
    message = EmailMessage()
    message["Subject"] = (
        f"Richiesta di richiamata n. {form_id} - {form.service} - {form.surname} {form.name}"
    )
    message["Date"] = format_datetime(received)
    message["Message-ID"] = make_msgid(idstring=f"form-{form_id}")
    if form.email:
        message["Reply-To"] = form.email
    values = form.model_dump(mode="json")
    lines = [f"Modulo di richiamata n. {form_id}, servizio {form.service}.", ""]
    for key, label in _FORM_LABELS:
        if values.get(key):
            lines.append(f"{label}: {values[key]}")
    message.set_content("\n".join(lines) + "\n")
    return message


def voicemail_message(
    service: str, name: str, wav: bytes, meta: Mapping[str, str], *, received: datetime
) -> EmailMessage:
    """A voicemail: its details in the text, the recording attached as audio/wav."""
    message = EmailMessage()
    caller = meta.get("caller", "sconosciuto")
    message["Subject"] = _one_line(f"Messaggio in segreteria - {service} - {caller}")
    message["Date"] = format_datetime(received)
    message["Message-ID"] = make_msgid(idstring="voicemail")
    lines = [f"Messaggio lasciato in segreteria per il servizio {service}.", ""]
    lines += [f"{key}: {_one_line(value)}" for key, value in sorted(meta.items())]
    message.set_content("\n".join(lines) + "\n")
    message.add_attachment(wav, maintype="audio", subtype="wav", filename=name)
    return message


def _one_line(text: str) -> str:
    """Header-safe text: control characters (CR, LF...) become spaces."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)
