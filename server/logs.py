"""Structured logs: one line per record, `key=value` pairs after the message."""

from __future__ import annotations

import logging
import sys
import time

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """`2026-11-26T14:00:00.123Z INFO sip.endpoint msg key=value ...` in UTC."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        base = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name} "
        base += record.getMessage()
        extras = [f"{k}={v!r}" for k, v in vars(record).items() if k not in _RESERVED]
        if extras:
            base += " " + " ".join(extras)
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr in the key=value format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
