"""`centralino serve` and the HTTP API's bearer token, as an operator deploys it: an
open API is refused beyond loopback, CENTRALINO_HTTP_TOKEN (or http.token) closes it,
and the token never reaches the log."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CENTRALINO,
    ROOT,
    Switch,
    free_tcp_port,
    free_udp_port,
    stop_process,
    write_config,
)

pytestmark = pytest.mark.e2e

TOKEN = "e2e-Token.0123456789_abcdef~XYZ"
ENV = "CENTRALINO_HTTP_TOKEN"


def _real_passwords(data: dict[str, Any]) -> None:
    """Not the demo passwords, which are refused beyond loopback on their own."""
    for op in data["operators"]:
        op["password"] = f"not-a-demo-password-{op['id']}"


def _environment(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if token is not None:
        env[ENV] = token
    return env


def _serve_args(tmp: Path, config: Path, http_host: str) -> tuple[list[str], int]:
    """SIP on loopback, HTTP on `http_host`."""
    http_port = free_tcp_port()
    args = [str(CENTRALINO), "serve", "--config", str(config)]
    args += ["--sip", f"127.0.0.1:{free_udp_port()}", "--http", f"{http_host}:{http_port}"]
    return [*args, "--data", str(tmp / "var")], http_port


def refused(tmp: Path, config: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    args, _ = _serve_args(tmp, config, "0.0.0.0")
    return subprocess.run(
        args,
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        env=_environment(token),
    )


def serve(tmp: Path, config: Path, *extra: str, token: str | None = None) -> Switch:
    """`centralino serve` with HTTP on 0.0.0.0, healthy within 20 s (else it is stopped)."""
    args, http_port = _serve_args(tmp, config, "0.0.0.0")
    log_path = tmp / "centralino.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*args, *extra], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_environment(token)
        )
    sw = Switch(proc, 0, http_port, tmp / "var", log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if sw.http_get("/healthz")[0] == 200:
                return sw
        except OSError:
            pass
        time.sleep(0.1)
    stop_process(proc)
    raise AssertionError(f"centralino did not become healthy:\n{sw.log()}")


def call(sw: Switch, method: str, path: str, authorization: str | None = None) -> int:
    """The HTTP status of one request to the switch (through loopback)."""
    request = urllib.request.Request(f"http://127.0.0.1:{sw.http_port}{path}", method=method)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            assert exc.headers["WWW-Authenticate"].startswith("Bearer ")
            assert "token" in json.loads(exc.read())["detail"]
        return int(exc.code)


def test_an_open_api_on_a_public_address_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, _real_passwords)
    done = refused(tmp_path, config)
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith(f"{config}:")]
    assert ": http.token: " in line and "--allow-unauthenticated-api" in line, line
    assert ENV in line and "0.0.0.0" in line


def test_demo_passwords_and_an_open_api_are_both_named(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = refused(tmp_path, config)
    assert done.returncode == 2
    keys = [
        line.split(": ")[1] for line in done.stderr.splitlines() if line.startswith(str(config))
    ]
    assert sorted(keys) == ["http.token", "operators"], done.stderr


def test_a_bad_token_in_the_environment_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, _real_passwords)
    for bad in ("short-secret", "has spaces in the secret"):
        done = refused(tmp_path, config, token=bad)
        assert done.returncode == 2
        assert f"http.token ({ENV})" in done.stderr, done.stderr
        assert bad not in done.stderr and bad not in done.stdout


def test_allow_unauthenticated_api_serves_an_open_api(tmp_path: Path) -> None:
    config = write_config(tmp_path, _real_passwords)
    sw = serve(tmp_path, config, "--allow-unauthenticated-api")
    try:
        assert call(sw, "GET", "/api/operators") == 200
        assert call(sw, "POST", "/api/operators/1001/login") == 200
    finally:
        assert stop_process(sw.process) == 0, sw.log()
    assert "no authentication" in sw.log()


def test_the_token_from_the_environment_guards_the_api(tmp_path: Path) -> None:
    """serve listens on a public address with the token: the API wants it (401 without
    or with a wrong one, GET and POST), /healthz and /metrics answer with or without it,
    and the token is nowhere in the log."""
    config = write_config(tmp_path, _real_passwords)
    sw = serve(tmp_path, config, token=TOKEN)
    try:
        for method, path in (("GET", "/api/operators"), ("POST", "/api/operators/1001/login")):
            assert call(sw, method, path) == 401
            assert call(sw, method, path, "Bearer wrong-token-0123456789") == 401
        assert call(sw, "GET", "/api/operators/1001", f"Bearer {TOKEN}") == 200
        assert call(sw, "POST", "/api/operators/1001/login", f"Bearer {TOKEN}") == 200
        for path in ("/healthz", "/metrics"):
            assert call(sw, "GET", path) == 200
            assert call(sw, "GET", path, f"Bearer {TOKEN}") == 200
    finally:
        assert stop_process(sw.process) == 0, sw.log()
    assert TOKEN not in sw.log()
    assert "Traceback" not in sw.log()


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    in_file = "file-token-0123456789abcdef"

    def with_token(data: dict[str, Any]) -> None:
        _real_passwords(data)
        data["http"] = {"token": in_file}

    config = write_config(tmp_path, with_token)
    sw = serve(tmp_path, config, token=TOKEN)
    try:
        assert call(sw, "GET", "/api/queues", f"Bearer {in_file}") == 401
        assert call(sw, "GET", "/api/queues", f"Bearer {TOKEN}") == 200
    finally:
        assert stop_process(sw.process) == 0, sw.log()
    assert in_file not in sw.log() and TOKEN not in sw.log()
