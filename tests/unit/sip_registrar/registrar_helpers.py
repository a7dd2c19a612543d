"""A scripted phone that registers the way SIPp and baresip do: 401, then credentials."""

from __future__ import annotations

from dataclasses import dataclass, field

from sip.authenticator import DigestAuthenticator
from sip.digest import answer_challenge
from sip.header_fields import Headers
from sip.headers import parse_address, parse_auth_params
from sip.location import Addr
from sip.message import Request, Response
from sip.registrar import Registrar

REALM = "centralino"
SECRET = b"0123456789abcdef0123456789abcdef"
PASSWORDS = {"1001": "demo1001", "1002": "demo1002"}


def make_registrar(
    *, algorithms: tuple[str, ...] = ("SHA-256", "MD5"), **kwargs: object
) -> Registrar:
    auth = DigestAuthenticator(REALM, SECRET, credentials=PASSWORDS.get, algorithms=algorithms)
    return Registrar(auth, **kwargs)  # type: ignore[arg-type]


@dataclass
class Phone:
    """One registration dialog (one Call-ID) of a user agent."""

    user: str = "1001"
    password: str = "demo1001"
    contact_host: str = "127.0.0.1"
    contact_port: int = 5070
    source: Addr = ("127.0.0.1", 5070)
    call_id: str = "reg-1@phone"
    algorithm: str = "MD5"
    to_user: str | None = None
    cseq: int = 0
    nc: int = 0
    challenge: str | None = None
    sent: list[Request] = field(default_factory=list)

    @property
    def contact_uri(self) -> str:
        return f"sip:{self.user}@{self.contact_host}:{self.contact_port}"

    def request(self, contacts: list[str] | None, expires: int | None) -> Request:
        self.cseq += 1
        to_user = self.to_user or self.user
        headers = Headers.of(
            (
                "Via",
                f"SIP/2.0/UDP {self.source[0]}:{self.source[1]};rport;branch=z9hG4bK{self.cseq}",
            ),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.user}@127.0.0.1>;tag=ft{self.call_id.partition('@')[0]}"),
            ("To", f"<sip:{to_user}@127.0.0.1>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
        )
        for contact in [f"<{self.contact_uri}>"] if contacts is None else contacts:
            headers.add("Contact", contact)
        if expires is not None:
            headers.add("Expires", str(expires))
        return Request("REGISTER", "sip:127.0.0.1:5060", headers)

    def authorize(self, request: Request) -> None:
        assert self.challenge is not None
        self.nc += 1
        value = answer_challenge(
            self.challenge,
            "REGISTER",
            request.uri,
            self.user,
            self.password,
            cnonce=f"c{self.nc}",
            nc=self.nc,
        )
        request.headers.add("Authorization", value)

    def take_challenge(self, response: Response) -> None:
        for value in response.headers.get_all("WWW-Authenticate"):
            if parse_auth_params(value)[1]["algorithm"] == self.algorithm:
                self.challenge, self.nc = value, 0
                return
        raise AssertionError(f"no {self.algorithm} challenge in {response}")

    def send(self, registrar: Registrar, request: Request, *, now: float) -> Response:
        self.sent.append(request)
        return registrar.handle_register(request, self.source, now=now)

    def register(
        self,
        registrar: Registrar,
        *,
        now: float,
        expires: int | None = None,
        contacts: list[str] | None = None,
    ) -> Response:
        """Register as a softphone does: reuse the nonce; on a 401, answer and retry once."""
        request = self.request(contacts, expires)
        if self.challenge is not None:
            self.authorize(request)
        response = self.send(registrar, request, now=now)
        if response.status != 401:
            return response
        self.take_challenge(response)
        retry = self.request(contacts, expires)
        self.authorize(retry)
        return self.send(registrar, retry, now=now)


def contact_expires(response: Response) -> dict[str, int]:
    """Contact URI -> expires parameter, from a 200 to a REGISTER."""
    out: dict[str, int] = {}
    for value in response.headers.values("contact"):
        address = parse_address(value)
        out[str(address.uri)] = int(address.params["expires"] or "-1")
    return out


def drain(registrar: Registrar) -> list[object]:
    events: list[object] = []
    while (event := registrar.next_event()) is not None:
        events.append(event)
    return events
