"""A throwaway PostgreSQL server for the tests (the real thing, from Debian's postgresql).

Its own cluster in a temporary folder, on a free loopback port, with trust
authentication for loopback only; every wait is bounded, and the server is stopped by its
PID and its folder removed.  As root, the cluster belongs to the `postgres` user (initdb
refuses root): `setpriv` switches user and then execs, so the PID we hold is the
postmaster's own.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


def bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(re.sub(r"\D", "", p.parent.parent.name) or 0),
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def need_postgres() -> Path:
    """The bin folder, or skip (fail under CI, where scripts/setup.sh installs it)."""
    found = bindir()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: scripts/setup.sh installs it")
        pytest.skip("PostgreSQL not installed")
    return found


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One running postmaster; `dsn()` and `database()` give connection strings."""

    def __init__(self, bin_dir: Path, *, password: str | None = None) -> None:
        """A new cluster; with `password`, loopback connections need it (SCRAM-SHA-256)
        for the `postgres` user, as on a production server."""
        self.bin_dir = bin_dir
        self.password = password
        self.root = Path(tempfile.mkdtemp(prefix="centralino-pg-"))
        self.data = self.root / "data"
        self.port = free_tcp_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        auth = ["-A", "trust"]
        if password is not None:
            secret = self.root / "pwfile"
            secret.write_text(password + "\n", encoding="utf-8")
            if self._as:
                os.chown(secret, user.pw_uid, user.pw_gid)
            auth = ["-A", "scram-sha-256", "--auth-local=trust", f"--pwfile={secret}"]
        self._run(
            str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", *auth,
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.start()

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self._as, *cmd], capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr.decode(errors='replace')}")

    def dsn(self, database: str = "postgres", password: str | None = None) -> str:
        """A DSN for the `postgres` user (with the server's password if it has one)."""
        password = self.password if password is None else password
        user = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        """Start the postmaster and wait (bounded) until it accepts connections."""
        options = [
            "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            "-c", "full_page_writes=off", "-c", "max_connections=50",
        ]  # fmt: skip
        log = (self.root / "server.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [*self._as, str(self.bin_dir / "postgres"), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log()[-2000:]}")
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres not ready:\n{self.log()[-2000:]}") from None
                time.sleep(0.1)

    def pause(self) -> None:
        """Freeze the postmaster and its backends (SIGSTOP by PID): the server stops
        answering, its connections stay open, as on a hung host."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: int) -> None:
        # Each backend is a session leader of its own (setsid), so not in the
        # postmaster's process group: signal the postmaster's children by PID.
        if self.process is None or self.process.poll() is not None:
            return
        for pid in (self.process.pid, *_children(self.process.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL if it does not end in time."""
        self.resume()  # a paused server would not see the signal
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def database(self, name: str) -> str:
        """Create an empty database and return its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _children(parent: int) -> list[int]:
    """The PIDs whose parent is `parent` (from /proc)."""
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        if int(text.rpartition(")")[2].split()[1]) == parent:
            found.append(int(text.split(" ", 1)[0]))
    return found


@contextlib.contextmanager
def running_server(*, password: str | None = None) -> Iterator[PgServer]:
    """A server for the duration of the block, removed afterwards."""
    server = PgServer(need_postgres(), password=password)
    try:
        yield server
    finally:
        server.remove()
