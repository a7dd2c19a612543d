"""`<data_dir>/callbacks.json`: written at a clean shutdown (0600: citizens' numbers),
read back and removed at the next start, set aside when unreadable, and a shutdown that
cannot write it drops the callbacks as before (logged, ended in the event log)."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from callback_peers import CALL_ID, NUMBER, QUEUE, ask_callback, callback_harness, kinds_of

from metrics.events import EventKind
from routing import callback
from server.callback_file import CALLBACK_FILE, restore_pending, save_pending


def test_saved_private_then_restored_and_removed(tmp_path: Path) -> None:
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
    assert not path.exists()
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
    h, _ = callback_harness()
    ask_callback(h)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING):
        assert save_pending(blocked, h.core.b2bua, now=30.0) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("cannot be saved" in m for m in messages)
    assert f"shutdown: 1 pending callbacks of queue {QUEUE} are dropped" in messages
    assert not any(NUMBER in m for m in messages)
    assert kinds_of(h)[-2:] == [EventKind.OVERFLOWED, EventKind.ENDED]
