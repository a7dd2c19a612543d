"""The HTTP API's bearer token (RFC 6750): every route but /healthz and /metrics needs
it once `http.token` is set; without a token the API is open, as on loopback today."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from api_harness import ROOT, Api, Clock, detail, make_runtime

from server import cli
from server.api_auth import BearerAuth, check_bearer
from server.config import ConfigError, HttpSettings, Settings, load_settings
from server.http import create_app

TOKEN = "s3cr3t-t0ken-Abc.def_ghi~jkl+mn/op=="
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SERVICE = "io-partecipo"


async def _api(tmp_path: Path, token: str | None) -> AsyncIterator[Api]:
    clock = Clock()
    settled: list[float] = []
    runtime = make_runtime(tmp_path / "var", clock, settled=settled)
    transport = httpx.ASGITransport(app=create_app(runtime, token=token))
    async with httpx.AsyncClient(transport=transport, base_url="http://centralino.test") as c:
        yield Api(runtime, clock, c, settled)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for item in _api(tmp_path, TOKEN):
        yield item


@pytest.fixture
async def open_api(tmp_path: Path) -> AsyncIterator[Api]:
    async for item in _api(tmp_path, None):
        yield item


def until(api: Api) -> str:
    return (api.clock.wall(api.clock.now) + timedelta(hours=1)).isoformat()


# (method, path, JSON body) of requests that change or read the switch.
REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/operators", None),
    ("GET", "/api/operators/1001", None),
    ("GET", "/api/queues", None),
    ("GET", "/api/services", None),
    ("GET", f"/api/services/{SERVICE}/notice", None),
    ("GET", "/api/forms/callback", None),
    ("POST", "/api/operators/1001/login", None),
    ("POST", "/api/operators/1001/pause", {"reason": "pranzo"}),
    ("POST", "/api/calls/c1/disposition", {"disposition": "resolved"}),
    ("DELETE", f"/api/services/{SERVICE}/override", None),
    ("PUT", f"/api/services/{SERVICE}/notice", {"text": {"it": "Chiuso"}}),
    ("GET", "/api/no-such-route", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
]

WRONG = {
    "missing": ({}, None),
    "empty bearer": ({"Authorization": "Bearer "}, None),
    "basic scheme": ({"Authorization": f"Basic {TOKEN}"}, None),
    "token alone": ({"Authorization": TOKEN}, None),
    "wrong token": ({"Authorization": "Bearer not-the-token-0123456789"}, "invalid_token"),
    "prefix of token": ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "invalid_token"),
    "token plus more": ({"Authorization": f"Bearer {TOKEN}x"}, "invalid_token"),
}


async def call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return await api.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("case", sorted(WRONG))
@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
async def test_without_the_token_every_api_route_is_401(
    api: Api, case: str, method: str, path: str, body: Any
) -> None:
    headers, error = WRONG[case]
    response = await call(api, method, path, body, headers)
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) == (error is not None), challenge
    assert isinstance(detail(response), str) and "token" in detail(response)
    assert TOKEN not in response.text


async def test_a_rejected_control_changes_nothing(api: Api) -> None:
    response = await api.client.post("/api/operators/1001/login")
    assert response.status_code == 401
    assert api.runtime.acd.operator_state("1001") == "logged_out"
    assert api.settled == []
    response = await api.client.put(
        f"/api/services/{SERVICE}/override", json={"state": "closed", "until": until(api)}
    )
    assert response.status_code == 401
    assert (await api.client.get(f"/api/services/{SERVICE}", headers=BEARER)).json()[
        "override"
    ] is None


async def test_the_body_is_not_read_before_authentication(api: Api) -> None:
    """A malformed body is 401, not 422: nothing is parsed for a stranger."""
    response = await api.client.post(
        "/api/operators/1001/pause",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 401


async def test_with_the_token_the_api_works(api: Api) -> None:
    response = await api.client.post("/api/operators/1001/login", headers=BEARER)
    assert response.status_code == 200, response.text
    assert api.runtime.acd.operator_state("1001") == "available"
    response = await api.client.post(
        "/api/operators/1001/pause", json={"reason": "pranzo"}, headers=BEARER
    )
    assert (response.status_code, response.json()["state"]) == (200, "paused")
    response = await api.client.put(
        f"/api/services/{SERVICE}/override",
        json={"state": "closed", "until": until(api)},
        headers=BEARER,
    )
    assert response.status_code == 200, response.text
    listed = await api.client.get("/api/operators", headers=BEARER)
    assert listed.status_code == 200 and len(listed.json()) == 4


async def test_the_scheme_is_case_insensitive(api: Api) -> None:
    """RFC 9110 §11.1: the auth-scheme is case-insensitive; the token is not."""
    lower = await api.client.get("/api/queues", headers={"Authorization": f"bearer {TOKEN}"})
    assert lower.status_code == 200
    swapped = {"Authorization": f"Bearer {TOKEN.swapcase()}"}
    assert (await api.client.get("/api/queues", headers=swapped)).status_code == 401


async def test_errors_behind_the_token_keep_their_status(api: Api) -> None:
    assert (await api.client.get("/api/operators/9999", headers=BEARER)).status_code == 404
    assert (await api.client.get("/api/no-such-route", headers=BEARER)).status_code == 404
    response = await api.client.post("/api/operators/1001/ready", headers=BEARER)
    assert response.status_code == 409


@pytest.mark.parametrize("headers", [{}, BEARER, {"Authorization": "Bearer wrong-token-00000000"}])
async def test_healthz_and_metrics_stay_open(api: Api, headers: dict[str, str]) -> None:
    health = await api.client.get("/healthz", headers=headers)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    metrics = await api.client.get("/metrics", headers=headers)
    assert (metrics.status_code, metrics.text) == (200, "# metrics\n")


async def test_without_a_token_the_api_is_open(open_api: Api) -> None:
    assert (await open_api.client.get("/api/operators")).status_code == 200
    response = await open_api.client.post("/api/operators/1001/login")
    assert response.status_code == 200
    assert open_api.runtime.acd.operator_state("1001") == "available"
    # A client that sends a token anyway is not refused.
    assert (await open_api.client.get("/api/queues", headers=BEARER)).status_code == 200


async def test_the_token_is_never_logged(
    api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async for other in _api(tmp_path / "second", TOKEN):
        await other.client.get("/api/operators")
    for headers, _ in WRONG.values():
        await api.client.post("/api/operators/1001/login", headers=headers)
    await api.client.post("/api/operators/1001/login", headers=BEARER)
    await api.client.get("/metrics", headers=BEARER)
    assert any(r.name == "server.api_auth" for r in caplog.records)  # 401s were logged
    assert any("bearer token" in r.getMessage() for r in caplog.records)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert TOKEN not in logged


def test_the_token_is_not_in_reprs() -> None:
    settings = HttpSettings.model_validate({"token": TOKEN})
    assert settings.token == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    assert TOKEN not in repr(BearerAuth(create_app_stub, token=TOKEN))


async def create_app_stub(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (None, ""),
        (b"", ""),
        (b"Bearer", ""),
        (b"Digest " + TOKEN.encode(), ""),
        (b"Bearer " + TOKEN.encode(), None),
        (b"BEARER " + TOKEN.encode(), None),
        (b"Bearer  " + TOKEN.encode() + b" ", None),
        (b"Bearer " + TOKEN.encode()[:-1], "invalid_token"),
        (b"Bearer \xff\xfe", "invalid_token"),
    ],
)
def test_check_bearer(header: bytes | None, verdict: str | None) -> None:
    assert check_bearer(header, TOKEN.encode()) == verdict


# -- where serve takes the token from, and when it refuses to start --------------------

FILE_TOKEN = "token-from-the-file-0123456789"


def config_file(tmp_path: Path, **http: Any) -> Path:
    data = yaml.safe_load((ROOT / "config" / "trentino.yaml").read_text(encoding="utf-8"))
    data["prompts_dir"] = str(ROOT / "config" / data.get("prompts_dir", "prompts"))
    for op in data["operators"]:
        op["password"] = f"not-a-demo-password-{op['id']}"
    data["http"] = http
    path = tmp_path / "centralino.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def effective(path: Path, *flags: str) -> Settings:
    return cli._effective_settings(
        cli._parser().parse_args(["serve", "--config", str(path), *flags])
    )


def refusal(path: Path, *flags: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        effective(path, *flags)
    return info.value


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)


def test_the_file_token_is_used(tmp_path: Path, no_env_token: None) -> None:
    path = config_file(tmp_path, token=FILE_TOKEN)
    assert effective(path, "--http", "0.0.0.0:8080").http.token == FILE_TOKEN


def test_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.TOKEN_ENV, TOKEN)
    path = config_file(tmp_path, token=FILE_TOKEN, listen="127.0.0.1:9000")
    settings = effective(path, "--http", "0.0.0.0:8080")
    assert settings.http.token == TOKEN
    assert str(settings.http.listen) == "0.0.0.0:8080"
    assert effective(config_file(tmp_path)).http.token == TOKEN


def test_an_open_api_beyond_loopback_is_refused(tmp_path: Path, no_env_token: None) -> None:
    path = config_file(tmp_path)
    for address in ("0.0.0.0:8080", "192.0.2.10:8080", "[::]:8080", "switch.example:8080"):
        error = refusal(path, "--http", address)
        assert [key for key, _ in error.problems] == ["http.token"], address
        assert "--allow-unauthenticated-api" in str(error) and cli.TOKEN_ENV in str(error)
    for address in ("127.0.0.1:8080", "[::1]:8080", "localhost:8080"):
        assert effective(path, "--http", address).http.token is None


def test_allow_unauthenticated_api_is_explicit_and_logged(
    tmp_path: Path, no_env_token: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = config_file(tmp_path)
    settings = effective(path, "--http", "0.0.0.0:8080", "--allow-unauthenticated-api")
    assert settings.http.token is None
    assert any("no authentication" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "bad", ["", "too-short-1234", "with space 0123456789", "ünïcode-0123456789"]
)
def test_a_bad_token_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv(cli.TOKEN_ENV, bad)
    error = refusal(config_file(tmp_path))
    assert [key for key, _ in error.problems] == [f"http.token ({cli.TOKEN_ENV})"]
    assert error.__cause__ is None and error.__suppress_context__
    if bad:
        assert bad not in str(error)
    monkeypatch.delenv(cli.TOKEN_ENV)
    with pytest.raises(ConfigError) as info:
        load_settings(config_file(tmp_path, token=bad))
    assert [key for key, _ in info.value.problems] == ["http.token"]
    if bad:
        assert bad not in str(info.value)
