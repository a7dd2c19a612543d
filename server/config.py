"""Deployment configuration: one YAML file validated by pydantic models.

Errors name the file, the key path and the reason (`ConfigError`), so that
`centralino check-config` and `centralino serve` can print them and exit 2.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from acd.config import QueueConfig
from ivr.check import check_services
from ivr.config import ServiceConfig
from ivr.prompts import parse_catalogue
from routing.diversion import RicadutaConfig
from server.mailer import MailSettings

DEFAULT_CONFIG = Path("config/trentino.yaml")


class ConfigError(Exception):
    """A configuration file that cannot be used; str() names file, key and reason."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [
            f"{path}: {key}: {reason}" if key else f"{path}: {reason}" for key, reason in problems
        ]
        super().__init__("\n".join(lines))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostPort(_Model):
    """A listening address."""

    host: str
    port: int = Field(ge=0, le=65535)

    @classmethod
    def parse(cls, text: str) -> HostPort:
        """Parse `HOST:PORT` or `[IPv6]:PORT`."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        return cls(host=host.strip("[]"), port=int(port))

    @property
    def is_loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and localhost."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _host_port(value: Any) -> Any:
    return HostPort.parse(value) if isinstance(value, str) else value


class SipTimers(_Model):
    """RFC 3261 §17 base timers, in seconds."""

    t1: float = Field(0.5, gt=0)
    t2: float = Field(4.0, gt=0)
    t4: float = Field(5.0, gt=0)


class SipSettings(_Model):
    """The SIP listener and registrar."""

    listen: HostPort = HostPort(host="127.0.0.1", port=5060)
    realm: str = "centralino"
    digest_algorithms: tuple[Literal["MD5", "SHA-256"], ...] = Field(("MD5",), min_length=1)
    """Algorithms offered, one challenge each, in this order (RFC 8760 §2.4). MD5 alone
    by default: SIPp 3.6 answers the topmost challenge whatever it is and knows only
    MD5, and baresip 1.0 fails to register as soon as a SHA-256 challenge is present.
    Offer ["SHA-256", "MD5"] where every phone supports RFC 8760."""
    timers: SipTimers = SipTimers()
    min_expires: int = Field(60, ge=1)
    max_expires: int = Field(3600, ge=1)
    options_ping_interval: float = Field(30.0, gt=0)
    max_message_size: int = Field(8192, ge=1024, le=65535)
    user_agent: str = "Centralino"

    _listen = field_validator("listen", mode="before")(_host_port)


class HttpSettings(_Model):
    """The HTTP API, /healthz and /metrics."""

    listen: HostPort = HostPort(host="127.0.0.1", port=8080)
    # An RFC 6750 §2.1 b64token: what a client can send after `Bearer ` unchanged.
    token: str | None = Field(None, min_length=16, pattern=r"^[A-Za-z0-9._~+/-]+=*$", repr=False)
    """The bearer token every request but /healthz and /metrics must carry.
    `CENTRALINO_HTTP_TOKEN` takes precedence, so the secret can stay out of the file.
    Unset, the API is open: serve allows that on loopback only."""

    _listen = field_validator("listen", mode="before")(_host_port)


class RtpSettings(_Model):
    """The RTP port range: even ports for RTP, the next odd one for RTCP."""

    port_min: int = Field(20000, ge=1024, le=65534)
    port_max: int = Field(30000, ge=1024, le=65535)
    media_timeout: float = Field(60.0, gt=0)


class Trunk(_Model):
    """A PBX allowed to send us calls (by source address, IP or network), and the one we
    send calls out through: referents of transfers, callbacks to citizens."""

    name: str
    addresses: list[str] = Field(min_length=1)
    inband_dtmf: bool = False
    outbound: HostPort | None = None
    """Where calls out go (HOST:PORT); unset: back to the PBX a call came from (its
    source host on port 5060 for referents, its source address for callbacks)."""

    _outbound = field_validator("outbound", mode="before")(_host_port)
    _parsed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = PrivateAttr(())

    @field_validator("addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    def model_post_init(self, context: Any, /) -> None:
        """Parse the networks once: `allows` runs for every request."""
        self._parsed = tuple(ipaddress.ip_network(a, strict=False) for a in self.addresses)

    def allows(self, host: str) -> bool:
        """True when `host` is one of the trunk's addresses."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in network for network in self._parsed)


class CallSettings(_Model):
    """How call control treats calls in progress."""

    hold_music: bool = True
    """A party put on hold hears music on hold (else silence)."""
    transfer_timeout: float = Field(20.0, gt=0)
    """A transfer target that does not answer within this time sends the call back."""
    queue_prefix: str = "queue-"
    """REFER to `<prefix><queue>` moves the caller to that queue."""
    callback_ring_timeout: float = Field(45.0, gt=0)
    """How long a citizen's phone may ring when we call them back."""


class EventSettings(_Model):
    """Where the call event log is kept, and how often it is committed."""

    dsn: str | None = Field(None, repr=False)
    """`postgresql://user@host:port/db` to keep the log in PostgreSQL; by default it is
    `<data_dir>/events.sqlite3`.  Keep the password out of the file: libpq reads
    `PGPASSWORD` and `~/.pgpass`."""
    flush_interval: float = Field(0.5, gt=0, le=60)
    """Seconds between commits: what a crash (not a shutdown) can lose."""
    commit_timeout: float = Field(15.0, gt=0, le=600)
    """Seconds without a completed transaction before the database connection is cut
    and the batch retried on a new one (a server that stopped answering)."""

    @field_validator("dsn")
    @classmethod
    def _postgres_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.partition("://")[0] if "://" in value else ""
        if scheme not in ("postgresql", "postgres"):
            raise ValueError("expected a postgresql://user@host:port/database URI")
        return value


class Operator(_Model):
    """An operator who registers a softphone and takes calls."""

    id: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    name: str = ""
    password: str = Field(min_length=4, repr=False)
    skills: dict[str, int] = Field(default_factory=dict)

    @property
    def has_demo_password(self) -> bool:
        """The bundled demo credentials (`demo` + id) are for loopback only."""
        return self.password == f"demo{self.id}"


class Settings(_Model):
    """The whole configuration file."""

    sip: SipSettings = SipSettings()
    http: HttpSettings = HttpSettings()
    rtp: RtpSettings = RtpSettings()
    data_dir: Path = Path("var")
    events: EventSettings = EventSettings()
    trunks: list[Trunk] = Field(default_factory=list)
    operators: list[Operator] = Field(default_factory=list)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    queues: list[QueueConfig] = Field(default_factory=list)
    ricaduta: RicadutaConfig = RicadutaConfig()
    calls: CallSettings = CallSettings()
    mail: MailSettings | None = None
    """The SMTP relay and the referents' mailboxes (callback forms, voicemail)."""
    prompts_dir: Path = Path("prompts")
    """The prompt catalogue and WAVs; relative to the configuration file's folder."""

    @field_validator("operators")
    @classmethod
    def _unique_operators(cls, value: list[Operator]) -> list[Operator]:
        seen: set[str] = set()
        for op in value:
            if op.id in seen:
                raise ValueError(f"operator {op.id!r} defined twice")
            seen.add(op.id)
        return value

    def operator(self, operator_id: str) -> Operator | None:
        """The operator with this id, if configured."""
        return next((op for op in self.operators if op.id == operator_id), None)

    def trunk_for(self, host: str) -> Trunk | None:
        """The trunk whose addresses include `host`."""
        return next((t for t in self.trunks if t.allows(host)), None)


def load_settings(path: Path) -> Settings:
    """Read and validate a configuration file; ConfigError on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read the file: {exc.strerror}")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [("", f"not valid YAML: {_yaml_reason(exc)}")]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, [("", "the top level must be a mapping of sections")])
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc)) from exc
    prompts = settings.prompts_dir
    if not prompts.is_absolute():
        settings = settings.model_copy(update={"prompts_dir": path.parent.resolve() / prompts})
    problems = cross_check(settings)
    if problems:
        raise ConfigError(path, problems)
    return settings


def cross_check(settings: Settings) -> list[tuple[str, str]]:
    """References between sections: prompts, queues, nodes, skills."""
    queues = {q.name for q in settings.queues}
    problems = [
        (p.path, p.message)
        for p in check_services(settings.services, _prompt_ids(settings.prompts_dir), queues)
    ]
    skills = {skill for op in settings.operators for skill in op.skills}
    for index, queue in enumerate(settings.queues):
        if queue.skill not in skills:
            problems.append((f"queues.{index}.skill", f"no operator has skill {queue.skill!r}"))
    return problems


def _prompt_ids(folder: Path) -> set[str]:
    catalogue = folder / "catalogue.yaml"
    try:
        data = yaml.safe_load(catalogue.read_text(encoding="utf-8"))
        return parse_catalogue(data).ids()
    except (OSError, yaml.YAMLError, ValueError):
        return set()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} at line {mark.line + 1}" if mark is not None else str(problem)


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        problems.append((key, err["msg"]))
    return problems
