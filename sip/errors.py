"""Protocol errors, after h11: ours are local, the peer's are remote and carry a status."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of the SIP protocol errors."""


class LocalProtocolError(ProtocolError):
    """We tried something the protocol forbids (a bug in the caller of the library)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed or illegal.

    `status_hint` is the response the endpoint should answer with when a response can
    be formed (400 by default, 505 for a bad version, 513 for an oversize message);
    None means the message cannot be answered and is dropped and logged.
    """

    def __init__(self, reason: str, *, status_hint: int | None = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint
