"""Inputs per second through the ACD engine with 1,000 queued calls and 100 operators.

Usage: python bench/bench_acd.py [--queued 1000] [--operators 100] [--inputs 200000]

A steady state of a busy morning: five skill queues kept at `--queued` waiting calls,
every operator serving two skills; offers are answered (10 % refused busy, then
skipped for the busy delay), calls end and each answered caller's place in the queues
is taken by a new call; 2 % of the inputs are a waiting caller hanging up. Time is
virtual (10 ms per input) and the engine's timers fire when due. The reference,
measured in the same run, is the same driver against a stub engine that does nothing:
the difference is the engine's own cost.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import deque
from typing import Any

from acd.config import parse_acd_config
from acd.engine import AcdEngine
from acd.events import CallAnswered, OfferCall, OfferFailure

SKILLS = ("lavoro", "td", "uru", "iopartecipo", "pagopa")


def make_engine(operators: int) -> AcdEngine:
    config = parse_acd_config(
        {
            "queues": [
                {"name": s, "skill": s, "announce_interval": 60, "max_wait": 3600} for s in SKILLS
            ],
            "operators": [
                {"id": f"op{i}", "skills": {SKILLS[i % 5]: 5, SKILLS[(i + 1) % 5]: 3}}
                for i in range(operators)
            ],
        }
    )
    return AcdEngine(config, now=0.0)


class StubEngine:
    """The reference: accepts every input, decides nothing."""

    def __init__(self) -> None:
        self._timer: float | None = None

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

    def commands(self) -> list[object]:
        return []

    def get_timer(self) -> float | None:
        return self._timer


class Driver:
    def __init__(self, engine: Any, *, operators: int, queued: int, seed: int = 5) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.now = 0.0
        self.inputs = 0
        self.offers: deque[tuple[str, str]] = deque()
        self.talking: deque[str] = deque()
        self.waiting: dict[str, None] = {}
        self.to_replace = 0
        self.next_id = 0
        for i in range(operators):
            self.step(engine.operator_registered, f"op{i}")
            self.step(engine.operator_login, f"op{i}")
        for _ in range(queued):
            self.new_call()

    def step(self, method: Any, *args: Any, **kwargs: Any) -> None:
        self.now += 0.01
        self.inputs += 1
        method(*args, now=self.now, **kwargs)
        timer = self.engine.get_timer()
        while timer is not None and timer <= self.now:
            self.engine.handle_timer(now=self.now)
            timer = self.engine.get_timer()
        for item in self.engine.commands():
            if isinstance(item, OfferCall):
                self.offers.append((item.call_id, item.operator))
            elif isinstance(item, CallAnswered):
                self.talking.append(item.call_id)
                self.waiting.pop(item.call_id, None)
                self.to_replace += 1  # the caller left the queue: keep it at its size

    def new_call(self) -> None:
        self.next_id += 1
        call_id = f"c{self.next_id}"
        self.waiting[call_id] = None
        self.step(self.engine.enqueue, call_id, SKILLS[self.next_id % 5], caller="0461000000")

    def act(self) -> None:
        while self.to_replace:
            self.to_replace -= 1
            self.new_call()
        if self.waiting and self.rng.random() < 0.02:
            call_id = self.rng.choice(list(self.waiting))
            del self.waiting[call_id]
            self.step(self.engine.caller_hung_up, call_id)
            self.new_call()
        elif self.offers:
            call_id, op = self.offers.popleft()
            if self.rng.random() < 0.1:
                self.step(self.engine.offer_rejected, call_id, op, reason=OfferFailure.BUSY)
            else:
                self.step(self.engine.offer_answered, call_id, op)
        elif self.talking:
            self.step(self.engine.call_ended, self.talking.popleft())
        else:
            self.new_call()


def measure(engine: Any, *, operators: int, queued: int, inputs: int) -> tuple[float, int]:
    driver = Driver(engine, operators=operators, queued=queued)
    start_inputs = driver.inputs
    t0 = time.perf_counter()
    while driver.inputs - start_inputs < inputs:
        driver.act()
    return time.perf_counter() - t0, driver.inputs - start_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--operators", type=int, default=100)
    parser.add_argument("--inputs", type=int, default=200_000)
    args = parser.parse_args()
    sizes = {"operators": args.operators, "queued": args.queued, "inputs": args.inputs}
    ref_s, ref_n = measure(StubEngine(), **sizes)
    engine = make_engine(args.operators)
    acd_s, acd_n = measure(engine, **sizes)
    waiting = sum(len(engine.queued_calls(q)) for q in engine.queue_names())
    print(f"operators: {args.operators}, calls in queues at the end: {waiting}")
    print(f"driver alone (reference): {ref_n / ref_s:12,.0f} inputs/s")
    print(f"ACD engine:               {acd_n / acd_s:12,.0f} inputs/s")
    engine_us = (acd_s - ref_s) / acd_n * 1e6
    print(f"engine cost per input:    {engine_us:12.1f} us")


if __name__ == "__main__":
    main()
