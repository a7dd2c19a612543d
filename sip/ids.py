"""Identifiers a SIP endpoint invents: branches, tags and Call-IDs (RFC 3261 §8.1.1, §19.3).

Pure code never draws randomness itself (DESIGN.md, sans-I/O): it asks an injected
`IdFactory`. The runtime gives one built on `secrets`; tests use `CounterIds`, which is
deterministic so that wire bytes can be asserted exactly.
"""

from __future__ import annotations

from typing import Protocol

MAGIC_COOKIE = "z9hG4bK"
"""§8.1.1.7: a branch starting with this cookie was made by an RFC 3261 element."""


class IdFactory(Protocol):
    """Makes globally unique identifiers."""

    def branch(self) -> str:
        """A new Via branch, starting with the magic cookie z9hG4bK (§8.1.1.7)."""
        ...

    def tag(self) -> str:
        """A new From/To tag, at least 32 bits of randomness in production (§19.3)."""
        ...

    def call_id(self) -> str:
        """A new Call-ID (§8.1.1.4)."""
        ...


class CounterIds:
    """A deterministic IdFactory for tests and benchmarks: b1, b2, ... with a prefix."""

    __slots__ = ("_count", "_prefix")

    def __init__(self, prefix: str = "t") -> None:
        self._prefix = prefix
        self._count = 0

    def _next(self) -> int:
        self._count += 1
        return self._count

    def branch(self) -> str:
        """z9hG4bK<prefix>b<n>."""
        return f"{MAGIC_COOKIE}{self._prefix}b{self._next()}"

    def tag(self) -> str:
        """<prefix>t<n>."""
        return f"{self._prefix}t{self._next()}"

    def call_id(self) -> str:
        """<prefix>c<n>@centralino."""
        return f"{self._prefix}c{self._next()}@centralino"
