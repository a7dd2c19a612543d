"""The HTTP API of the real switch: callback forms e-mailed through a real SMTP relay
(aiosmtpd on loopback), and API state (overrides, notices) across a restart.

The switch is started as a user starts it (`centralino serve`); every wait is bounded
and every process is ended by PID.
"""

from __future__ import annotations

import email
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from conftest import ROOT, Switch, free_tcp_port, start_switch, stop_process

from server.config import Settings

pytestmark = pytest.mark.e2e

REFERENT = "referenti@agenzia.test"
FORM = {
    "service": "agenzia-lavoro",
    "surname": "Bianchi",
    "name": "Maria",
    "called_at": "2026-11-25T10:42:00+01:00",
    "person_sought": "Dott.ssa Rossi",
    "reason": "Richiamare per la pratica 2026/118.",
    "phone": "0461 123456",
}


def call(switch: Switch, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{switch.http_port}{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        self.arrived.set()
        return "250 OK"


def config_with_mail(tmp: Path, smtp_port: int) -> Path:
    data = yaml.safe_load((ROOT / "config" / "trentino.yaml").read_text())
    data["prompts_dir"] = str(ROOT / "config" / "prompts")
    data["mail"] = {
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "timeout": 2},
        "from": "Centralino <centralino@switch.test>",
        "referents": {"agenzia-lavoro": REFERENT},
        "retry_initial": 0.2,
        "retry_max": 0.5,
    }
    path = tmp / "centralino.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.skipif("mail" not in Settings.model_fields, reason="Settings has no mail section")
def test_form_sent_while_the_relay_is_down_arrives_once_it_is_up(tmp_path: Path) -> None:
    smtp_port = free_tcp_port()
    switch = start_switch(tmp_path, config_with_mail(tmp_path, smtp_port))
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    started = False
    try:
        status, body = call(switch, "POST", "/api/forms/callback", FORM)
        assert (status, body["status"], body["to"]) == (202, "queued", REFERENT)
        time.sleep(0.5)  # a few attempts against the closed port
        _, stored = call(switch, "GET", "/api/forms/callback")
        assert stored[0]["mail"]["sent_at"] is None
        assert stored[0]["mail"]["attempts"] >= 1
        controller.start()
        started = True
        assert inbox.arrived.wait(10), switch.log()
    finally:
        if started:
            controller.stop()
        stop_process(switch.process)
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == [REFERENT]
    message = email.message_from_bytes(envelope.original_content or b"")
    assert "Bianchi Maria" in message["Subject"]


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="no TTS")
def test_override_and_notice_survive_a_restart(tmp_path: Path) -> None:
    switch = start_switch(tmp_path)
    try:
        override = {"state": "closed", "until": "2099-01-01T00:00:00+01:00"}
        status, body = call(switch, "PUT", "/api/services/uru/override", override)
        assert (status, body["state"], body["reason"]) == (200, "closed", "override")
        notice = {"text": {"it": "Lo sportello è chiuso.", "en": "The desk is closed."}}
        status, body = call(switch, "PUT", "/api/services/uru/notice", notice)
        assert (status, body["languages"]) == (200, ["en", "it"]), body
        prompt = body["prompt"]
    finally:
        assert stop_process(switch.process) == 0
    assert (switch.data_dir / "notices" / "uru" / "it.wav").stat().st_size > 8000
    again = start_switch(tmp_path)
    try:
        status, body = call(again, "GET", "/api/services/uru")
        assert status == 200
        assert (body["state"], body["reason"]) == ("closed", "override")
        assert body["notice"]["prompt"] == prompt
        assert call(again, "DELETE", "/api/services/uru/override")[0] == 200
        assert call(again, "DELETE", "/api/services/uru/notice")[0] == 200
    finally:
        stop_process(again.process)
