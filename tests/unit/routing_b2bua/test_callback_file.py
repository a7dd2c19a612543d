"""`<data_dir>/callbacks.json`: checkpointed while the switch runs (so a crash loses at
most the last second), written at a clean shutdown (0600: citizens' numbers), read back
at the next start and rewritten with what was restored, set aside when unreadable, and a
shutdown that cannot write it drops the callbacks as before (logged, ended in the event
log)."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from b2bua_harness import TRUNK, Harness, answer_request
from callback_peers import (
    ANSWER_SDP,
    CALL_ID,
    NUMBER,
    QUEUE,
    ask_callback,
    callback_harness,
    kinds_of,
    operator_answers,
    requests,
)

from metrics.events import EventKind
from routing import callback
from server.callback_file import CALLBACK_FILE, CallbackJournal, restore_pending, save_pending


def waiting_callback_and_a_file_for_a_folder(tmp_path: Path) -> tuple[Harness, Path]:
    """A callback waiting for its turn, and a data folder that is a file (unwritable)."""
    h, _ = callback_harness()
    ask_callback(h)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    return h, blocked


def test_saved_private_then_restored_and_rewritten(tmp_path: Path) -> None:
    h, _ = callback_harness()
    ask_callback(h)
    assert save_pending(tmp_path, h.core.b2bua, now=30.0) == 1
    path = tmp_path / CALLBACK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    (entry,) = document["callbacks"]
    assert (document["version"], entry["call_id"], entry["number"]) == (1, CALL_ID, NUMBER)
    assert entry["entered"] == "2026-11-24T09:00:10.000000Z"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    again, _ = callback_harness()
    assert restore_pending(tmp_path, again.core.b2bua, now=40.0) == 1
    (kept,) = json.loads(path.read_text())["callbacks"]  # a crash now must not lose it
    assert kept | {"entered": None} == entry | {"entered": None}
    assert again.core.b2bua.acd.queued_calls(QUEUE) == [CALL_ID]
    assert CALL_ID in callback.desk(again.core.b2bua).waiting


def test_nothing_to_save_removes_a_stale_file(tmp_path: Path) -> None:
    h, _ = callback_harness()
    (tmp_path / CALLBACK_FILE).write_text("{}")
    assert save_pending(tmp_path, h.core.b2bua, now=1.0) == 0
    assert list(tmp_path.iterdir()) == []
    assert restore_pending(tmp_path, h.core.b2bua, now=2.0) == 0


def test_an_unreadable_file_is_set_aside_and_the_start_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / CALLBACK_FILE).write_bytes(b"\x00 not json")
    h, _ = callback_harness()
    with caplog.at_level(logging.ERROR, logger="server.callback_file"):
        assert restore_pending(tmp_path, h.core.b2bua, now=1.0) == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"{CALLBACK_FILE}.unreadable"]
    (record,) = caplog.records
    assert "how many is unknown" in record.getMessage()


def test_a_shutdown_that_cannot_write_drops_them_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h, blocked = waiting_callback_and_a_file_for_a_folder(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert save_pending(blocked, h.core.b2bua, now=30.0) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("cannot be saved" in m for m in messages)
    assert f"shutdown: 1 pending callbacks of queue {QUEUE} are dropped" in messages
    assert not any(NUMBER in m for m in messages)
    assert kinds_of(h)[-2:] == [EventKind.OVERFLOWED, EventKind.ENDED]


def test_the_journal_follows_the_callbacks_while_the_switch_runs(tmp_path: Path) -> None:
    """Rewritten when the set changes, untouched when it does not, removed once the
    citizen answers (the callback is being served: a crash must not call them twice)."""
    h, _ = callback_harness()
    journal = CallbackJournal(tmp_path, h.core.b2bua)
    path = tmp_path / CALLBACK_FILE
    journal.checkpoint(now=1.0)
    assert not path.exists()  # nothing pending, nothing written
    ask_callback(h)
    journal.checkpoint(now=h.now)
    (entry,) = json.loads(path.read_text())["callbacks"]
    assert (entry["call_id"], entry["number"], entry["attempts"]) == (CALL_ID, NUMBER, 0)
    inode = path.stat().st_ino  # an atomic rewrite is a new file
    assert journal.changes(now=h.now + 5) is None  # same set: nothing written
    journal.checkpoint(now=h.now + 5)
    assert path.stat().st_ino == inode
    h.now = 100.0
    _offer, out = operator_answers(h)  # offered and dialing the citizen: still pending
    (dial,) = requests(out, "INVITE")
    journal.checkpoint(now=h.now)
    assert path.exists()
    h.now = 105.0
    h.deliver(answer_request(dial, 200, to_tag="cit", body=ANSWER_SDP), TRUNK)
    journal.checkpoint(now=h.now)
    assert not path.exists()


def test_a_journal_that_cannot_write_logs_once_and_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h, blocked = waiting_callback_and_a_file_for_a_folder(tmp_path)
    journal = CallbackJournal(blocked, h.core.b2bua)
    with caplog.at_level(logging.WARNING, logger="server.callback_file"):
        journal.checkpoint(now=30.0)
        journal.checkpoint(now=31.0)
        assert journal.changes(now=32.0) is not None  # not written: tried again
        blocked.unlink()
        blocked.mkdir()
        journal.checkpoint(now=33.0)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot be checkpointed" in m for m in messages) == 1
    assert any("checkpointed again" in m for m in messages)
    assert not any(NUMBER in m for m in messages)
    assert (blocked / CALLBACK_FILE).exists()
