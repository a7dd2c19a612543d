"""DropLogLimiter: one log line per source per window, a bounded number per window
whatever the sources, a summary of the rest; driven by explicit `now`, no sleep."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from server.telemetry import DropLogLimiter, DropsSuppressed


def test_first_drop_from_a_source_is_logged_then_silenced_for_the_window() -> None:
    limiter = DropLogLimiter(window=60.0)
    assert limiter.admit("192.0.2.1", now=100.0)
    assert not limiter.admit("192.0.2.1", now=100.5)
    assert not limiter.admit("192.0.2.1", now=159.9)
    assert limiter.admit("192.0.2.1", now=160.0)
    assert not limiter.admit("192.0.2.1", now=160.1)


def test_sources_are_limited_independently() -> None:
    limiter = DropLogLimiter(window=60.0)
    assert limiter.admit("192.0.2.1", now=0.0)
    assert limiter.admit("192.0.2.2", now=1.0)
    assert not limiter.admit("192.0.2.1", now=2.0)
    assert not limiter.admit("192.0.2.2", now=3.0)


def test_summary_comes_one_window_after_the_first_suppressed_drop() -> None:
    limiter = DropLogLimiter(window=60.0)
    assert limiter.summary(now=0.0) is None
    limiter.admit("a", now=10.0)
    assert limiter.summary(now=1000.0) is None  # nothing was suppressed
    for at in (11.0, 12.0, 13.0):
        limiter.admit("a", now=at)
    limiter.admit("b", now=14.0)
    limiter.admit("b", now=15.0)
    assert limiter.summary(now=70.9) is None
    assert limiter.summary(now=71.0) == DropsSuppressed(datagrams=4, sources=2)
    assert limiter.summary(now=71.0) is None  # reported once
    assert limiter.summary(now=500.0) is None


def test_a_flood_of_spoofed_sources_logs_at_most_max_sources_per_window() -> None:
    limiter = DropLogLimiter(window=60.0, max_sources=5, max_counted=100)
    logged = [limiter.admit(f"10.0.{n // 256}.{n % 256}", now=n * 0.001) for n in range(10_000)]
    assert sum(logged) == 5
    assert logged[:5] == [True] * 5
    summary = limiter.summary(now=61.0)
    assert summary == DropsSuppressed(datagrams=9_995, sources=100, more_sources=True)
    # A new window: a source may be logged again.
    assert limiter.admit("10.9.9.9", now=61.0)


def test_memory_is_bounded() -> None:
    limiter = DropLogLimiter(window=60.0, max_sources=5, max_counted=50)
    for n in range(5_000):
        limiter.admit(f"source-{n}", now=float(n) / 100)
    assert len(limiter._logged) <= 5
    assert len(limiter._sources) <= 50


EVENTS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.floats(0.0, 40.0)),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(events=EVENTS, max_sources=st.integers(1, 4), max_counted=st.integers(1, 6))
def test_every_drop_is_logged_or_summarised_within_the_limits(
    events: list[tuple[str, float]], max_sources: int, max_counted: int
) -> None:
    window = 60.0
    limiter = DropLogLimiter(window=window, max_sources=max_sources, max_counted=max_counted)
    now, logged, summarised = 0.0, [], 0
    for source, step in events:
        now += step
        if limiter.admit(source, now=now):
            logged.append((source, now))
        summary = limiter.summary(now=now)
        if summary is not None:
            summarised += summary.datagrams
            assert 1 <= summary.sources <= max_counted
    final = limiter.summary(now=now + 2 * window)
    summarised += final.datagrams if final is not None else 0
    assert len(logged) + summarised == len(events)
    for i, (source, at) in enumerate(logged):
        # At most one line per source per window, at most max_sources per window.
        recent = [(s, t) for s, t in logged[:i] if at - t < window]
        assert source not in {s for s, _ in recent}
        assert len(recent) < max_sources
    assert len(limiter._logged) <= max_sources


@settings(max_examples=100, deadline=None)
@given(events=EVENTS)
def test_a_source_quiet_for_a_window_is_logged_again(events: list[tuple[str, float]]) -> None:
    """With room for every source, a drop is logged exactly when its source has not
    been logged within the window."""
    limiter = DropLogLimiter(window=60.0, max_sources=10)
    now, last = 0.0, {}
    for source, step in events:
        now += step
        expected = source not in last or now - last[source] >= 60.0
        assert limiter.admit(source, now=now) == expected
        if expected:
            last[source] = now
