"""The `centralino` command: serve, check-config, report, export."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from server.app import run
from server.config import (
    DEFAULT_CONFIG,
    ConfigError,
    HostPort,
    HttpSettings,
    Settings,
    load_settings,
)
from server.export_cli import add_export_parser, run_export
from server.logs import setup_logging
from server.report_cli import add_parser, run_report

EXIT_CONFIG = 2
TOKEN_ENV = "CENTRALINO_HTTP_TOKEN"

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    handlers = {
        "serve": _serve,
        "check-config": _check_config,
        "report": run_report,
        "export": run_export,
    }
    return handlers[args.command](args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="centralino", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the switch")
    serve.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    serve.add_argument("--sip", type=HostPort.parse, help="SIP UDP address, HOST:PORT")
    serve.add_argument("--http", type=HostPort.parse, help="HTTP address, HOST:PORT")
    serve.add_argument("--data", type=Path, help="data folder (event log, voicemail)")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument("--drain-seconds", type=float, default=10.0)
    serve.add_argument(
        "--allow-demo-credentials",
        action="store_true",
        help="serve the bundled demo operator passwords on a non-loopback address",
    )
    serve.add_argument(
        "--allow-unauthenticated-api",
        action="store_true",
        help="serve the HTTP API on a non-loopback address without http.token",
    )
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path", type=Path, nargs="?", default=DEFAULT_CONFIG)
    add_parser(commands)
    add_export_parser(commands)
    return parser


def _check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    print(
        f"{args.path}: ok ({len(settings.trunks)} trunks, {len(settings.operators)} operators,"
        f" {len(settings.services)} services)"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        settings = _effective_settings(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    return run(settings, drain_seconds=args.drain_seconds)


def _effective_settings(args: argparse.Namespace) -> Settings:
    """The file's settings with the command line and the environment applied, refused
    (ConfigError) when they would expose demo passwords or an open API to the network."""
    settings = load_settings(args.config)
    sip = settings.sip.model_copy(update={"listen": args.sip}) if args.sip else settings.sip
    http = _http_settings(args, settings.http)
    data = args.data or settings.data_dir
    settings = settings.model_copy(update={"sip": sip, "http": http, "data_dir": data})
    problems = _demo_credentials(args, settings) + _open_api(args, settings.http)
    if problems:
        raise ConfigError(args.config, problems)
    return settings


def _http_settings(args: argparse.Namespace, http: HttpSettings) -> HttpSettings:
    """`--http` and `CENTRALINO_HTTP_TOKEN` over the file's `http` section."""
    if args.http:
        http = http.model_copy(update={"listen": args.http})
    token = os.environ.get(TOKEN_ENV)
    if token is None:
        return http
    try:
        # Validated like the file's value; the error names the variable, never the value.
        return HttpSettings.model_validate({**http.model_dump(), "token": token})
    except ValidationError as exc:
        reasons = "; ".join(err["msg"] for err in exc.errors())
        raise ConfigError(args.config, [(f"http.token ({TOKEN_ENV})", reasons)]) from None


def _demo_credentials(args: argparse.Namespace, settings: Settings) -> list[tuple[str, str]]:
    exposed = not (settings.sip.listen.is_loopback and settings.http.listen.is_loopback)
    demo = [op.id for op in settings.operators if op.has_demo_password]
    if not exposed or not demo or args.allow_demo_credentials:
        return []
    reason = (
        f"demo credentials ({', '.join(demo)}) only bind to loopback; change the"
        " passwords or pass --allow-demo-credentials"
    )
    return [("operators", reason)]


def _open_api(args: argparse.Namespace, http: HttpSettings) -> list[tuple[str, str]]:
    """Anyone who reaches the port could pause operators or close services: beyond
    loopback the API needs a token, unless the operator says a proxy guards it."""
    if http.listen.is_loopback or http.token is not None:
        return []
    if args.allow_unauthenticated_api:
        log.warning("the HTTP API on %s has no authentication", http.listen)
        return []
    reason = (
        f"the HTTP API on {http.listen} needs a token: set http.token or {TOKEN_ENV}"
        " (at least 16 characters), or pass --allow-unauthenticated-api"
    )
    return [("http.token", reason)]


if __name__ == "__main__":
    sys.exit(main())
