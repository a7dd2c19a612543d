"""`centralino report`: the tender's SLA report for a month, from the stored log alone."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

from metrics.render import RENDERERS
from metrics.report import Progress, report_from_store
from metrics.store import StoreError
from routing.calendar import Calendar, CalendarError, Open
from server.config import DEFAULT_CONFIG, ConfigError, load_settings
from server.pgstore import SQLITE_FILE, is_dsn, open_event_store, redact_dsn

EXIT_USAGE = 2
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `report` command."""
    report = commands.add_parser("report", help="monthly SLA report (Tm, P, Q) from the log")
    report.add_argument("--month", required=True, help="YYYY-MM, local time")
    report.add_argument("--service", help="one service id (default: all)")
    report.add_argument("--format", choices=sorted(RENDERERS), default="table")
    report.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    report.add_argument("--data", type=Path, help="data folder (default: the config's)")
    report.add_argument(
        "--dsn",
        help="read the log from this postgresql:// database (default: the config's"
        " events.dsn, unless --data is given)",
    )
    report.add_argument("--output", type=Path, help="write here instead of standard output")


def run_report(args: argparse.Namespace) -> int:
    """Build and print (or write) the report."""
    if not _MONTH.match(args.month):
        print(f"--month: expected YYYY-MM, got {args.month!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.service and args.service not in settings.services:
        print(f"--service: unknown service {args.service!r}", file=sys.stderr)
        return EXIT_USAGE
    dsn = args.dsn or (None if args.data else settings.events.dsn)
    if dsn is not None and not is_dsn(dsn):
        print("--dsn: expected a postgresql://user@host:port/database URI", file=sys.stderr)
        return EXIT_USAGE
    data_dir = args.data or settings.data_dir
    where = redact_dsn(dsn) if dsn else str(data_dir / SQLITE_FILE)
    if dsn is None and not (data_dir / SQLITE_FILE).exists():
        print(f"{where}: no event log here (is --data right?)", file=sys.stderr)
        return EXIT_USAGE
    calendar = Calendar({sid: s.calendar for sid, s in settings.services.items()})
    try:
        with open_event_store(data_dir, dsn, writer=False) as store:
            report = report_from_store(
                store,
                args.month,
                args.service,
                in_window=lambda service, local: _open(calendar, service, local),
                progress=_progress_bar() if sys.stderr.isatty() else None,
            )
    except StoreError as exc:
        print(exc if where in str(exc) else f"{where}: {exc}", file=sys.stderr)
        return 1
    _write(RENDERERS[args.format](report), args.output)
    return 0


def _open(calendar: Calendar, service: str, local: datetime) -> bool:
    try:
        return isinstance(calendar.state(service, local), Open)
    except CalendarError:
        return False


def _progress_bar() -> Progress:
    def show(done: int, total: int | None) -> None:
        if total:
            filled = 30 * done // max(total, 1)
            bar = "#" * filled + "." * (30 - filled)
            sys.stderr.write(f"\r[{bar}] {done}/{total} events")
        else:
            sys.stderr.write(f"\r{done} events")
        if total is not None and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _write(content: str | bytes, output: Path | None) -> None:
    if output is not None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        output.write_bytes(data)
    elif isinstance(content, bytes):
        sys.stdout.buffer.write(content)
    else:
        sys.stdout.write(content if content.endswith("\n") else content + "\n")
