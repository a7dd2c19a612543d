"""The callback form and voicemail e-mail, through a real SMTP server on loopback.

The relay is aiosmtpd served on the test's own event loop; "down" is a port nobody
listens on. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import email
import itertools
import smtplib
import socket
from collections.abc import AsyncIterator, Callable
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from api_harness import Clock, client_for, detail, make_runtime, tone_wav

from routing.media_plane import RecordingFinished
from server.api_runtime import ApiRuntime
from server.mailer import MailSettings, SmtpRelay
from server.persist import Outgoing

REFERENT = "referenti-agenzia@servizi.test"
FORM = {
    "service": "agenzia-lavoro",
    "surname": "Bianchi",
    "name": "Maria",
    "called_at": "2026-11-25T10:42:00",
    "person_sought": "Dott.ssa Rossi, ufficio tirocini",
    "reason": "Chiede di essere richiamata\nper la pratica 2026/118.",
    "phone": "+39 0461 123456",
    "email": "maria.bianchi@example.test",
}


class LoopClock(Clock):
    """The real loop clock: the mailer waits in real (short) time."""

    def __call__(self) -> float:
        return asyncio.get_running_loop().time()


class Inbox:
    """An aiosmtpd handler keeping what it accepts."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self.changed = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        self.changed.set()
        return "250 OK"

    async def wait(self, count: int, timeout: float = 5.0) -> list[Envelope]:
        async def enough() -> None:
            while len(self.messages) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.messages

    def parsed(self, index: int) -> Message:
        content = self.messages[index].original_content or b""
        return email.message_from_bytes(content)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve_smtp(inbox: Inbox, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(inbox, hostname="relay.test"), "127.0.0.1", port)


def mail_settings(port: int) -> MailSettings:
    return MailSettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": port, "timeout": 2},
            "from": "Centralino <centralino@servizi.test>",
            "referents": {"agenzia-lavoro": REFERENT, "io-partecipo": "io@servizi.test"},
            "retry_initial": 0.05,
            "retry_max": 0.2,
        }
    )


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def runtime(tmp_path: Path, port: int) -> AsyncIterator[ApiRuntime]:
    api = make_runtime(tmp_path / "var", LoopClock(), mail=mail_settings(port))
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def inbox(port: int) -> AsyncIterator[Inbox]:
    box = Inbox()
    server = await serve_smtp(box, port)
    yield box
    server.close()
    await server.wait_closed()


async def post_form(api: ApiRuntime, body: dict[str, Any]) -> Any:
    async with client_for(api) as client:
        return await client.post("/api/forms/callback", json=body)


async def forms(api: ApiRuntime) -> list[dict[str, Any]]:
    async with client_for(api) as client:
        response = await client.get("/api/forms/callback")
        assert response.status_code == 200
        return list(response.json())


async def until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_form_is_mailed_to_the_services_referent(runtime: ApiRuntime, inbox: Inbox) -> None:
    response = await post_form(runtime, FORM)
    assert response.status_code == 202
    assert response.json() == {"id": 1, "status": "queued", "to": REFERENT}
    (envelope,) = await inbox.wait(1)
    assert envelope.rcpt_tos == [REFERENT]
    assert envelope.mail_from == "centralino@servizi.test"
    message = inbox.parsed(0)
    assert "Bianchi Maria" in message["Subject"]
    assert message["Reply-To"] == FORM["email"]
    body = message.get_payload(decode=True).decode()
    assert "Persona cercata / Person sought: Dott.ssa Rossi, ufficio tirocini" in body
    assert "Telefono / Phone: +39 0461 123456" in body
    assert "per la pratica 2026/118." in body
    assert "2026-11-25T10:42:00+01:00" in body  # no offset given: Italian local time

    async def marked() -> bool:
        return (await forms(runtime))[0]["mail"]["sent_at"] is not None

    await until(marked)
    stored = (await forms(runtime))[0]
    assert stored["form"]["surname"] == "Bianchi"
    assert runtime.mailer is not None and runtime.mailer.pending == 0


@pytest.mark.parametrize(
    "change",
    [
        {"phone": None},
        {"phone": "chiamami"},
        {"surname": "Bianchi\r\nBcc: victim@example.test"},
        {"email": "not-an-address"},
        {"reason": ""},
        {"called_at": "ieri"},
        {"service": "../etc"},
        {"extra": "field"},
    ],
)
async def test_invalid_form_is_refused(runtime: ApiRuntime, change: dict[str, Any]) -> None:
    body = {**FORM, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await post_form(runtime, body)
    assert response.status_code == 422
    assert await forms(runtime) == []


async def test_a_long_reason_arrives_whole(runtime: ApiRuntime, inbox: Inbox) -> None:
    reason = "parola " * 570  # one line of about 4,000 characters
    assert (await post_form(runtime, {**FORM, "reason": reason.strip()})).status_code == 202
    await inbox.wait(1)
    content = inbox.messages[0].original_content or b""
    assert max(len(line) for line in content.split(b"\r\n")) <= 998  # RFC 5322 §2.1.1
    body = inbox.parsed(0).get_payload(decode=True).decode()
    assert reason.strip() in body


async def test_email_is_optional(runtime: ApiRuntime, inbox: Inbox) -> None:
    body = {k: v for k, v in FORM.items() if k != "email"}
    assert (await post_form(runtime, body)).status_code == 202
    await inbox.wait(1)
    assert inbox.parsed(0)["Reply-To"] is None


async def test_service_without_a_mailbox(runtime: ApiRuntime) -> None:
    unknown = await post_form(runtime, {**FORM, "service": "nope"})
    assert unknown.status_code == 404
    no_referent = await post_form(runtime, {**FORM, "service": "uru"})
    assert no_referent.status_code == 422
    assert "uru" in detail(no_referent)
    assert await forms(runtime) == []


async def test_without_mail_settings_forms_are_refused(tmp_path: Path) -> None:
    api = make_runtime(tmp_path / "var", LoopClock())
    response = await post_form(api, FORM)
    assert response.status_code == 503


async def test_relay_down_then_up_the_form_arrives(runtime: ApiRuntime, port: int) -> None:
    assert (await post_form(runtime, FORM)).status_code == 202

    async def failed_twice() -> bool:
        return int((await forms(runtime))[0]["mail"]["attempts"]) >= 2

    await until(failed_twice)
    stored = (await forms(runtime))[0]["mail"]
    assert stored["sent_at"] is None
    assert "Connection" in stored["last_error"] or "refused" in stored["last_error"].lower()
    inbox = Inbox()
    server = await serve_smtp(inbox, port)
    try:
        (envelope,) = await inbox.wait(1)
        assert envelope.rcpt_tos == [REFERENT]
        assert "Bianchi" in inbox.parsed(0)["Subject"]
    finally:
        server.close()
        await server.wait_closed()


async def test_unsent_form_survives_a_restart(tmp_path: Path, port: int) -> None:
    first = make_runtime(tmp_path / "var", LoopClock(), mail=mail_settings(port))
    await first.start()
    assert (await post_form(first, FORM)).status_code == 202
    await first.stop()
    inbox = Inbox()
    server = await serve_smtp(inbox, port)
    second = make_runtime(tmp_path / "var", LoopClock(), mail=mail_settings(port))
    await second.start()
    try:
        await inbox.wait(1)
        assert "Bianchi" in inbox.parsed(0)["Subject"]
    finally:
        await second.stop()
        server.close()
        await server.wait_closed()


async def test_voicemail_is_mailed_with_the_recording(
    runtime: ApiRuntime, inbox: Inbox, tmp_path: Path
) -> None:
    wav = tone_wav(0.3)
    path = tmp_path / "var" / "voicemail" / "agenzia-lavoro-abc.wav"
    path.parent.mkdir(parents=True)
    path.write_bytes(wav)
    assert runtime.mailer is not None
    runtime.mailer.send_voicemail(
        "agenzia-lavoro", path, {"caller": "0461999888", "seconds": "3.0"}
    )
    (envelope,) = await inbox.wait(1)
    assert envelope.rcpt_tos == [REFERENT]
    message = inbox.parsed(0)
    assert "0461999888" in message["Subject"]
    attachments = [part for part in message.walk() if part.get_filename()]
    assert [part.get_filename() for part in attachments] == ["agenzia-lavoro-abc.wav"]
    assert attachments[0].get_content_type() == "audio/wav"
    assert attachments[0].get_payload(decode=True) == wav


async def test_backoff_doubles_up_to_the_ceiling(tmp_path: Path) -> None:
    attempts: list[float] = []
    loop = asyncio.get_running_loop()
    delivered = asyncio.Event()

    def flaky(relay: SmtpRelay, mail: Outgoing) -> None:
        attempts.append(loop.time())
        if len(attempts) < 5:
            raise ConnectionRefusedError(111, "Connection refused")
        loop.call_soon_threadsafe(delivered.set)

    api = make_runtime(tmp_path / "var", LoopClock(), mail=mail_settings(1), send=flaky)
    await api.start()
    try:
        assert (await post_form(api, FORM)).status_code == 202
        await asyncio.wait_for(delivered.wait(), 5)
    finally:
        await api.stop()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    for gap, expected in zip(gaps, (0.05, 0.1, 0.2, 0.2), strict=True):
        assert expected * 0.9 <= gap < expected + 0.5


async def test_a_refused_message_does_not_hold_back_the_others(tmp_path: Path) -> None:
    sent: list[tuple[str, ...]] = []
    loop = asyncio.get_running_loop()
    other_sent = asyncio.Event()

    def picky(relay: SmtpRelay, mail: Outgoing) -> None:
        if mail.recipients == (REFERENT,):
            raise smtplib.SMTPRecipientsRefused({REFERENT: (550, b"no such user")})
        sent.append(mail.recipients)
        loop.call_soon_threadsafe(other_sent.set)

    settings = mail_settings(1).model_copy(update={"retry_initial": 5.0, "retry_max": 5.0})
    api = make_runtime(tmp_path / "var", LoopClock(), mail=settings, send=picky)
    await api.start()
    try:
        assert (await post_form(api, FORM)).status_code == 202
        assert (await post_form(api, {**FORM, "service": "io-partecipo"})).status_code == 202
        await asyncio.wait_for(other_sent.wait(), 2)
        assert sent == [("io@servizi.test",)]
        assert api.mailer is not None and api.mailer.pending == 1
    finally:
        await api.stop()


async def test_recording_finished_is_mailed_with_the_calls_details(
    runtime: ApiRuntime, inbox: Inbox, tmp_path: Path
) -> None:
    path = tmp_path / "var" / "voicemail" / "agenzia-lavoro-call1.wav"
    path.parent.mkdir(parents=True)
    path.write_bytes(tone_wav(0.2))
    event = RecordingFinished(
        at=1010.0, leg="call1/caller", path=str(path), seconds=7.25, reason="silence"
    )
    runtime.voicemail_recorded("agenzia-lavoro", event, caller="0461555111", call_id="call1")
    await inbox.wait(1)
    body = next(p for p in inbox.parsed(0).walk() if p.get_content_type() == "text/plain")
    text = body.get_payload(decode=True).decode()
    for line in ("caller: 0461555111", "call_id: call1", "seconds: 7.2", "ended_by: silence"):
        assert line in text
    assert "recorded_at: 2026-11-25T10:00:10+00:00" in text


async def test_voicemail_for_a_service_without_a_mailbox_is_logged(
    runtime: ApiRuntime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "vm.wav"
    path.write_bytes(tone_wav(0.1))
    assert runtime.mailer is not None
    runtime.mailer.send_voicemail("uru", path, {})
    await runtime.mailer.stop()  # waits for the queuing job
    assert "no referent mailbox" in caplog.text
