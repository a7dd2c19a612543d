"""`centralino report`: the tender's SLA report for a month, from the stored log alone."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from metrics.render import RENDERERS
from metrics.report import Progress, report_from_store
from metrics.store import EventStore, StoreError
from routing.calendar import Calendar, CalendarError, Open
from server.config import DEFAULT_CONFIG, ConfigError, Settings, load_settings
from server.pgstore import SQLITE_FILE, is_dsn, open_event_store, redact_dsn

EXIT_USAGE = 2
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `report` command."""
    report = commands.add_parser("report", help="monthly SLA report (Tm, P, Q) from the log")
    report.add_argument("--month", required=True, help="YYYY-MM, local time")
    report.add_argument("--service", help="one service id (default: all)")
    report.add_argument("--format", choices=sorted(RENDERERS), default="table")
    add_log_arguments(report)
    report.add_argument("--output", type=Path, help="write here instead of standard output")


def add_log_arguments(command: argparse.ArgumentParser) -> None:
    """--config, --data and --dsn: which configuration, and where its event log is."""
    command.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    command.add_argument("--data", type=Path, help="data folder (default: the config's)")
    command.add_argument(
        "--dsn",
        help="read the log from this postgresql:// database (default: the config's"
        " events.dsn, unless --data is given)",
    )


class LogLocation(NamedTuple):
    """Where a command reads the event log: an SQLite data folder or a DSN."""

    data_dir: Path
    dsn: str | None
    where: str  # for messages: the file, or the DSN without its password

    def open(self) -> EventStore:
        """A reader of the log; StoreError if it cannot be opened."""
        return open_event_store(self.data_dir, self.dsn, writer=False)


def settings_and_log(args: argparse.Namespace) -> tuple[Settings, LogLocation] | str:
    """The configuration and the log the arguments name, or the usage error to print."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return str(exc)
    location = log_location(args, settings)
    return location if isinstance(location, str) else (settings, location)


def log_location(args: argparse.Namespace, settings: Settings) -> LogLocation | str:
    """The log the arguments name, or the usage error to print."""
    dsn = args.dsn or (None if args.data else settings.events.dsn)
    if dsn is not None and not is_dsn(dsn):
        return "--dsn: expected a postgresql://user@host:port/database URI"
    data_dir = args.data or settings.data_dir
    where = redact_dsn(dsn) if dsn else str(data_dir / SQLITE_FILE)
    if dsn is None and not (data_dir / SQLITE_FILE).exists():
        return f"{where}: no event log here (is --data right?)"
    return LogLocation(data_dir, dsn, where)


def store_failure(location: LogLocation, exc: StoreError) -> str:
    """One line for a store error, naming the log once."""
    return str(exc) if location.where in str(exc) else f"{location.where}: {exc}"


def run_report(args: argparse.Namespace) -> int:
    """Build and print (or write) the report."""
    if not _MONTH.match(args.month):
        print(f"--month: expected YYYY-MM, got {args.month!r}", file=sys.stderr)
        return EXIT_USAGE
    loaded = settings_and_log(args)
    if isinstance(loaded, str):
        print(loaded, file=sys.stderr)
        return EXIT_USAGE
    settings, location = loaded
    if args.service and args.service not in settings.services:
        print(f"--service: unknown service {args.service!r}", file=sys.stderr)
        return EXIT_USAGE
    calendar = Calendar({sid: s.calendar for sid, s in settings.services.items()})
    try:
        with location.open() as store:
            report = report_from_store(
                store,
                args.month,
                args.service,
                in_window=lambda service, local: _open(calendar, service, local),
                progress=_progress_bar() if sys.stderr.isatty() else None,
            )
    except StoreError as exc:
        print(store_failure(location, exc), file=sys.stderr)
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
