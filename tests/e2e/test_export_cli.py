"""`centralino export` as a user runs it, on both event-log backends: a day's events as
JSON lines and as an Asterisk queue_log, and `--follow` printing what a running writer
commits afterwards (as a wallboard tailing queue_log needs).  Every wait is bounded and
the follower is ended by PID."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import CENTRALINO, ROOT, stop_process

from metrics.events import CallEvent, EventKind, from_json, to_json
from metrics.queue_log import export
from metrics.store import EventStore
from server.pgstore import open_event_store

DAY = "2026-11-24"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 10:00 in Rome


def call(call_id: str, start: datetime, operator: str = "1001") -> list[CallEvent]:
    """A call that waits 12 s, is answered, talks 60 s."""
    steps = [
        (0.0, EventKind.ARRIVED, None, {"caller": "0461000000"}),
        (5.0, EventKind.QUEUED, None, {"caller": "0461000000", "position": "1"}),
        (10.0, EventKind.OFFERED, operator, {}),
        (17.0, EventKind.ANSWERED, operator, {"leg": f"leg-{call_id}"}),
        (77.0, EventKind.ENDED, operator, {"by": "caller"}),
    ]
    mono0 = (start - T0).total_seconds()
    return [
        CallEvent(
            kind=kind,
            call_id=call_id,
            service="td",
            queue="td" if kind is not EventKind.ARRIVED else None,
            operator=op,
            wall=start + timedelta(seconds=at),
            mono=mono0 + at,
            data=data,
        )
        for at, kind, op, data in steps
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, list[str]]]:
    """A writer on a fresh log, and the arguments that point `export` at it."""
    if request.param == "sqlite":
        store, args = open_event_store(tmp_path, None), ["--data", str(tmp_path)]
    else:
        dsn = str(request.getfixturevalue("pg_dsn"))
        store, args = open_event_store(tmp_path, dsn), ["--dsn", dsn]
    try:
        yield store, args
    finally:
        store.close()


def centralino_export(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(CENTRALINO), "export", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def stored(store: EventStore, events: list[CallEvent]) -> list[CallEvent]:
    numbered = [store.append(e) for e in events]
    store.flush()
    return numbered


def test_a_day_as_json_lines_and_as_queue_log(log: tuple[EventStore, list[str]]) -> None:
    store, where = log
    before = stored(store, call("eve", T0 - timedelta(hours=11)))  # 23 Nov, 23:00 in Rome
    midnight = call("midnight", T0 - timedelta(hours=10))  # 24 Nov 00:00 in Rome, 23:00 UTC
    today = stored(store, midnight + call("a", T0) + call("b", T0 + timedelta(minutes=5), "1002"))
    after = stored(store, call("next", T0 + timedelta(days=1)))
    assert before and after

    done = centralino_export("--day", DAY, *where)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [to_json(e) for e in today]
    assert [from_json(line) for line in done.stdout.splitlines()] == today

    done = centralino_export("--day", DAY, "--format", "queue_log", *where)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == list(export(today))
    assert [line.split("|")[4] for line in lines if "|a|" in line] == [
        "ENTERQUEUE",
        "CONNECT",
        "COMPLETECALLER",
    ]

    month = centralino_export("--month", "2026-11", *where)
    assert month.returncode == 0 and len(month.stdout.splitlines()) == len(before + today + after)


def test_follow_prints_what_is_committed_later(log: tuple[EventStore, list[str]]) -> None:
    store, where = log
    first = stored(store, call("a", T0))
    cmd = [str(CENTRALINO), "export", "--day", DAY, "--follow", "--poll", "0.1", *where]
    follower = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()

    def take(n: int) -> list[str]:
        try:
            return [lines.get(timeout=20) for _ in range(n)]
        except queue.Empty:
            stop_process(follower)
            assert follower.stderr is not None
            raise AssertionError(f"follower printed too little: {follower.stderr.read()}") from None

    try:
        assert take(len(first)) == [to_json(e) for e in first]
        later = stored(store, call("b", T0 + timedelta(hours=30)))  # another day: still printed
        assert take(len(later)) == [to_json(e) for e in later]
        assert lines.empty()
    finally:
        code = stop_process(follower, signal.SIGINT)
    assert code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "--month: expected YYYY-MM"),
        (["--day", "24/11/2026"], "--day: expected YYYY-MM-DD"),
        (["--dsn", "mysql://db/x"], "--dsn: expected a postgresql://"),
        (["--data", "/nonexistent"], "no event log here"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    done = centralino_export(*args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--month", "2026-11", "--service", "nope"], 2, "--service: unknown service 'nope'"),
        (["--month", "11/2026"], 2, "--month: expected YYYY-MM"),
        (["--month", "2026-11", "--dsn", "mysql://db/x"], 2, "--dsn: expected a postgresql://"),
        (["--month", "2026-11", "--data", "/nonexistent"], 2, "no event log here"),
        (["--month", "2026-11", "--dsn", "postgresql://cc:s3cret@127.0.0.1:1/x"], 1, "cc:***@"),
    ],
)
def test_report_says_what_is_wrong(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    open_event_store(tmp_path, None).close()  # an empty log, for the cases that need one
    where = [] if {"--data", "--dsn"} & set(args) else ["--data", str(tmp_path)]
    cmd = [str(CENTRALINO), "report", *args, *where]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == code and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
