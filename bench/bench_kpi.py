"""Time a month's SLA report over 100,000 synthetic calls stored in SQLite or PostgreSQL.

Usage: python bench/bench_kpi.py [--calls N] [--db PATH | --dsn postgresql://...]

Writes the log (unless --db names an existing file, or the --dsn database already holds
events), then prints the time merely to read it back (the reference: the floor set by
the database and event decoding, measured in the same run) and the time to build the
report (read + KPI engine + report), in wall and CPU seconds of this process (with
--dsn, the server's own CPU is not counted).  The tender asks for "seconds".
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from metrics.events import CallEvent, EventKind
from metrics.render import render_table
from metrics.report import report_from_store
from metrics.store import EventStore, SqliteEventStore, StoreError
from server.pgstore import PostgresEventStore

T = TypeVar("T")
ROME = ZoneInfo("Europe/Rome")
MONTH = "2026-11"
SERVICES = ("lavoro", "td", "uru", "iopartecipo", "pagopa")
SUBS = (None, "mepat", "cps", "trentino_in_rete", "geo", "accessibile", "bul")


def office_hours(service: str, local: datetime) -> bool:
    """Monday to Friday, 08:00-17:00 (holidays ignored in the benchmark)."""
    return local.weekday() < 5 and 8 <= local.hour < 17


def synthetic_calls(n: int, rng: random.Random) -> Iterator[CallEvent]:
    """`n` calls in November 2026, ~5 % outside the window; events in time order."""
    days = [d for d in range(1, 31) if datetime(2026, 11, d).weekday() < 5]
    starts = sorted(_arrival(rng, days) for _ in range(n))
    events: list[tuple[datetime, int, CallEvent]] = []
    for i, arrive in enumerate(starts):
        for order, event in enumerate(_call(f"bench-{i}", arrive, rng)):
            events.append((event.wall, i * 16 + order, event))
    events.sort(key=lambda item: (item[0], item[1]))
    yield from (event for _, _, event in events)


def _arrival(rng: random.Random, days: list[int]) -> datetime:
    day = rng.choice(days)
    hour = rng.uniform(7.5, 17.5) if rng.random() < 0.1 else rng.uniform(8.0, 17.0)
    local = datetime(2026, 11, day, tzinfo=ROME) + timedelta(hours=hour)
    return local.astimezone(UTC)


def _call(call_id: str, arrive: datetime, rng: random.Random) -> list[CallEvent]:
    service = rng.choice(SERVICES)
    sub = rng.choice(SUBS) if service == "td" else None
    ivr, wait = rng.uniform(5, 30), rng.expovariate(1 / 12)
    fate = rng.random()
    plan: list[tuple[float, EventKind, dict[str, str]]] = [
        (0.0, EventKind.ARRIVED, {}),
        (ivr - 1, EventKind.CHOICE, {"digit": "2"}),
        (ivr, EventKind.QUEUED, {}),
    ]
    if fate < 0.04:
        plan.append((ivr + wait, EventKind.ABANDONED, {}))
    else:
        talk = rng.expovariate(1 / 180)
        result = rng.choice(("resolved", "resolved", "resolved", "resolved", "escalated"))
        plan += [
            (ivr + wait - 2, EventKind.OFFERED, {}),
            (ivr + wait, EventKind.ANSWERED, {}),
            (ivr + wait + talk, EventKind.ENDED, {}),
            (ivr + wait + talk + 20, EventKind.DISPOSITION, {"disposition": result}),
        ]
    mono0 = (arrive - datetime(2026, 11, 1, tzinfo=UTC)).total_seconds()
    return [
        CallEvent(
            kind=kind,
            call_id=call_id,
            service=service,
            sub_service=sub,
            queue=service,
            operator="op" if kind in (EventKind.OFFERED, EventKind.ANSWERED) else None,
            wall=arrive + timedelta(seconds=offset),
            mono=mono0 + offset,
            data=data,
        )
        for offset, kind, data in plan
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, default=None, help="an SQLite file")
    where.add_argument("--dsn", help="a PostgreSQL database (empty, or written by this)")
    args = parser.parse_args()
    if args.dsn:
        dsn: str = args.dsn
        run(lambda writer: PostgresEventStore(dsn, writer=writer), args.calls, _empty(dsn))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench-events.db"
        fresh = not path.exists()
        run(lambda writer: SqliteEventStore(path), args.calls, fresh)


def _empty(dsn: str) -> bool:
    try:
        with PostgresEventStore(dsn, writer=False) as reader:
            return reader.count(datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC)) == 0
    except StoreError:
        return True  # no call_event table yet


def run(open_store: Callable[[bool], EventStore], calls: int, fresh: bool) -> None:
    print(f"calls: {calls}")
    if fresh:
        written, events = _timed(lambda: _write(open_store(True), calls))
        print(
            f"write log:             {written[0]:6.2f} / {written[1]:6.2f}  "
            f"({events / written[0]:,.0f} events per wall second, commits of 5,000)"
        )
    with open_store(False) as store:
        start, end = datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC)
        read, events = _timed(lambda: sum(1 for _ in store.replay(start, end)))
        built, report = _timed(lambda: report_from_store(store, MONTH, in_window=office_hours))
    print(f"events: {events} (times in wall s / CPU s; the machine may be shared)")
    print(f"read log (reference):  {read[0]:6.2f} / {read[1]:6.2f}")
    print(
        f"build month report:    {built[0]:6.2f} / {built[1]:6.2f}  "
        f"({events / built[1]:,.0f} events per CPU second)"
    )
    print(f"report over read-only: {built[1] / read[1]:6.2f} x (CPU)")
    print(render_table(report).split("\n\n")[1])


def _write(store: EventStore, calls: int) -> int:
    rng = random.Random(2026)
    n = 0
    with store:
        for n, event in enumerate(synthetic_calls(calls, rng), 1):
            store.append(event)
            if n % 5000 == 0:
                store.flush()
    return n


def _timed(fn: Callable[[], T]) -> tuple[tuple[float, float], T]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


if __name__ == "__main__":
    main()
