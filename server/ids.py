"""The production IdFactory: branches, tags and Call-IDs from the OS's CSPRNG."""

from __future__ import annotations

import secrets

from sip.ids import MAGIC_COOKIE


class SecureIds:
    """Unguessable identifiers (RFC 3261 §19.3 asks for at least 32 random bits in tags)."""

    __slots__ = ("_host",)

    def __init__(self, host: str = "centralino") -> None:
        self._host = host

    def branch(self) -> str:
        """z9hG4bK followed by 80 random bits."""
        return MAGIC_COOKIE + secrets.token_hex(10)

    def tag(self) -> str:
        """64 random bits."""
        return secrets.token_hex(8)

    def call_id(self) -> str:
        """128 random bits at our host."""
        return f"{secrets.token_hex(16)}@{self._host}"

    def nonce_secret(self) -> bytes:
        """A fresh secret for the digest nonce HMAC, per process start."""
        return secrets.token_bytes(32)
