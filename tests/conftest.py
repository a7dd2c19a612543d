"""Suite-wide settings and fixtures: Hypothesis runs derandomized under CI, so a red
build always reproduces (locally it explores new examples on every run); a throwaway
PostgreSQL server for the tests of the PostgreSQL event store."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings
from pgserver import PgServer, running_server

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the whole run (tests/pgserver.py)."""
    with running_server() as server:
        yield server


_databases = itertools.count(1)


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """A new empty database on the shared server, dropped after the test."""
    name = f"centralino_test_{next(_databases)}"
    dsn = pg_server.database(name)
    try:
        yield dsn
    finally:
        pg_server.drop(name)
