"""`centralino export`: the event log as JSON lines (docs/events.md) or as an Asterisk
`queue_log`, for a day or a month, and optionally on, as new events are committed.

`--follow` is `tail -f` for wallboards that read Asterisk's queue_log: after the period
it looks at the log every `--poll` seconds and prints what was committed since (the
switch commits every `events.flush_interval`).  It reads through the same store as
`report` (SQLite file or PostgreSQL, as a reader), so it never slows the switch down.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from metrics.events import CallEvent, to_json
from metrics.kpi_types import KpiConfig
from metrics.queue_log import export as queue_log_lines
from metrics.store import EventStore, StoreError
from metrics.tally import month_bounds
from server.report_cli import EXIT_USAGE, add_log_arguments, settings_and_log, store_failure

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
FORMATS = ("jsonl", "queue_log")


def add_export_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `export` command."""
    export = commands.add_parser(
        "export", help="the event log as JSON lines or an Asterisk queue_log"
    )
    export.add_argument("--format", choices=FORMATS, default="jsonl")
    period = export.add_mutually_exclusive_group()
    period.add_argument("--month", help="YYYY-MM, local time")
    period.add_argument("--day", help="YYYY-MM-DD, local time (default: today)")
    export.add_argument(
        "--follow", action="store_true", help="then print new events as they are committed"
    )
    export.add_argument(
        "--poll", type=float, default=1.0, help="seconds between looks at the log (--follow)"
    )
    add_log_arguments(export)


def run_export(args: argparse.Namespace) -> int:
    """Print the period's events, then follow the log if asked; 0, 1 (store) or 2 (usage)."""
    tz = ZoneInfo(KpiConfig().timezone)
    period = _period(args, tz)
    if isinstance(period, str) or args.poll <= 0:
        print(period if isinstance(period, str) else "--poll: must be > 0", file=sys.stderr)
        return EXIT_USAGE
    loaded = settings_and_log(args)
    if isinstance(loaded, str):
        print(loaded, file=sys.stderr)
        return EXIT_USAGE
    location = loaded[1]
    try:
        with location.open() as store:
            events = _events(store, *period, follow=args.follow, poll=args.poll)
            lines = queue_log_lines(events) if args.format == "queue_log" else map(to_json, events)
            _print(lines, sys.stdout, flush_each=args.follow)
    except StoreError as exc:
        print(store_failure(location, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _period(args: argparse.Namespace, tz: ZoneInfo) -> tuple[datetime, datetime] | str:
    if args.month is not None:
        if not _MONTH.match(args.month):
            return f"--month: expected YYYY-MM, got {args.month!r}"
        return month_bounds(args.month, tz)
    try:
        day = date.fromisoformat(args.day) if args.day else datetime.now(tz).date()
    except ValueError:
        return f"--day: expected YYYY-MM-DD, got {args.day!r}"
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    following = day + timedelta(days=1)
    return start, datetime(following.year, following.month, following.day, tzinfo=tz)


def _events(
    store: EventStore, start: datetime, end: datetime, *, follow: bool, poll: float
) -> Iterator[CallEvent]:
    """The period's events; then, following, every event committed after them."""
    last = store.last_seq()
    for event in store.replay(start, end):
        if event.seq <= last:  # later ones come below, once
            yield event
    while follow:
        time.sleep(poll)
        for event in store.replay_after(last):
            last = event.seq
            yield event


def _print(lines: Iterator[str], out: TextIO, *, flush_each: bool) -> None:
    for line in lines:
        out.write(line + "\n")
        if flush_each:
            out.flush()
