"""Media runtime capacity over real loopback sockets: prompt streams, bridged calls, G.729.

Run: .venv/bin/python bench/bench_media.py [--plays 250,500,1000]
     [--bridges 100,250,500] [--g729 20] [--seconds 3] [--drift 600]

Two processes, as in production: the runtime (server.media.MediaRuntime on uvloop) in a
child process, and a load generator in this one, whose peers are plain UDP sockets paced
by their own absolute 20 ms schedule.

- Playback: N legs play music on hold (PCMU, looping) to N peers. Loss counts sequence
  gaps; jitter is each packet's lateness against its stream's own 20 ms schedule (p99 of
  |deviation from the stream's median offset|).
- Bridged G.711: N calls, 2N peers each sending 50 packets/s through the runtime to its
  partner. The payload carries the send instant, so each packet's one-way delay is
  measured; loss is sent versus received after the senders stop and the queues drain.
  The reference is the same generator with the pairs talking directly (no runtime), so
  the runtime's added delay and jitter can be read against it.
- G.729: N calls bridged PCMU <-> G.729 (both directions transcoded), runtime CPU per call.
- Drift (--drift S): one looping prompt for S seconds; the packets counted in that span
  must be S / 20 ms + 1, give or take one (30,001 in 600 s), whatever the tick's jitter.

CPU is each process's own CPU time (DESIGN.md: top and vmstat under-count here). The
machine has 2 cores shared with other work; the generator's own CPU is shown because a
saturated generator, not the runtime, can be what limits a row.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import struct
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvloop

from media import g711
from media.g729 import load_g729
from routing.media_plane import LegMedia, MediaEvent
from server.media import MediaRuntime

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
FRAME = 0.020
WARMUP = 1.0
DRAIN = 0.3
HEADER = struct.Struct("!BBHII")
STAMP = struct.Struct("!d")

# --- the runtime process ---------------------------------------------------------------


def _ignore(event: MediaEvent) -> None:
    del event


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    g729 = load_g729()
    with tempfile.TemporaryDirectory() as data:
        runtime = MediaRuntime(
            loop, host=HOST, port_min=50000, port_max=60998, prompts_dir=ROOT / "config/prompts",
            data_dir=Path(data), media_timeout=3600.0, g729=g729, on_event=_ignore,
        )  # fmt: skip
        runtime.prompts.preload(["music-on-hold"], ["it"])
        while True:
            command, args = await loop.run_in_executor(None, conn.recv)
            if command == "quit":
                break
            conn.send(_command(runtime, command, args))


def _command(runtime: MediaRuntime, command: str, args: Any) -> Any:
    if command == "cpu":
        return time.process_time(), runtime.stats()
    if command == "teardown":
        runtime.close()
        return None
    kind, peers, codec_b = args
    media = {
        "PCMU": LegMedia(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=None),
        "G729": LegMedia(codec="G729", payload_type=18, telephone_event_pt=None, remote=None),
    }
    addrs = []
    for index, peer in enumerate(peers):
        name = f"{index // 2}/{index % 2}"
        addrs.append(runtime.open_leg(name))
        codec = codec_b if kind == "bridge" and index % 2 else "PCMU"
        runtime.configure_leg(name, LegMedia(**{**_fields(media[codec]), "remote": tuple(peer)}))
        if kind == "play":
            runtime.play(name, ["music-on-hold"], language="it", play_id=index, loop=True)
        elif index % 2:
            runtime.bridge(f"{index // 2}/0", name)
    return addrs


def _fields(media: LegMedia) -> dict[str, Any]:
    return {name: getattr(media, name) for name in LegMedia.__dataclass_fields__}


def _child(conn: Connection) -> None:
    uvloop.run(_serve(conn))


# --- the load generator ----------------------------------------------------------------


# Kernel receive timestamps (Linux SO_TIMESTAMPNS, CLOCK_REALTIME): arrival times that do
# not include the generator's own scheduling delays.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("qq")


@dataclass
class Peers:
    """UDP peer sockets; each records what arrives (count, delays, schedule offsets)."""

    count: int
    socks: list[socket.socket] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    delays: list[list[float]] = field(default_factory=list)
    offsets: list[list[float]] = field(default_factory=list)
    first: list[tuple[float, int] | None] = field(default_factory=list)
    last_seq: list[int] = field(default_factory=list)
    gaps: int = 0
    measuring: bool = False

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self.count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((HOST, 0))
            sock.setblocking(False)
            self.socks.append(sock)
            loop.add_reader(sock, self._readable, index)
        self.received = [0] * self.count
        self.offsets = [[] for _ in range(self.count)]
        self.delays = [[] for _ in range(self.count)]
        self.first = [None] * self.count
        self.last_seq = [-1] * self.count

    @property
    def addrs(self) -> list[tuple[str, int]]:
        return [s.getsockname() for s in self.socks]

    def _readable(self, index: int) -> None:
        sock = self.socks[index]
        for _ in range(64):
            try:
                data, ancillary, _flags, _addr = sock.recvmsg(2048, 64)
            except OSError:
                return
            if len(data) < 12 or 192 <= data[1] <= 223:
                continue  # the runtime's RTCP report to a port that happens to be ours
            self.received[index] += 1
            if self.measuring and ancillary:
                seconds, nanoseconds = TIMESPEC.unpack_from(ancillary[0][2])
                self._measure(index, data, seconds + nanoseconds * 1e-9)

    def _measure(self, index: int, data: bytes, now: float) -> None:
        seq = HEADER.unpack_from(data)[2]
        last = self.last_seq[index]
        if last >= 0 and (seq - last) & 0xFFFF != 1:
            self.gaps += ((seq - last) & 0xFFFF) - 1
        self.last_seq[index] = seq
        first = self.first[index]
        if first is None:
            self.first[index] = (now, seq)
        else:
            self.offsets[index].append(now - first[0] - ((seq - first[1]) & 0xFFFF) * FRAME)
        if len(data) == 172 and data[12] == 0x42:  # G.711 from one of our peers
            self.delays[index].append(now - STAMP.unpack_from(data, 13)[0])

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self.socks:
            loop.remove_reader(sock)
            sock.close()


class Senders:
    """Peer i sends PCMU (or G.729) at 50 packets/s to targets[i] on an absolute grid.

    Calls are not in phase in real life: the peers are spread over 20 slots of 1 ms, so
    the runtime sees a steady flow rather than one burst every 20 ms.
    """

    SLOTS = 20

    def __init__(self, peers: Peers, targets: list[tuple[str, int]], g729: list[bool]) -> None:
        self.peers, self.targets, self.g729 = peers, targets, g729
        self.sent = 0
        self.index = 0
        self.origin = time.perf_counter()
        self.running = True
        self.loop = asyncio.get_running_loop()
        self.body = bytearray(b"\x42" + bytes(8) + b"\xff" * 151)
        self.g729_body = b"\x00" * 20
        self._tick()

    def _tick(self) -> None:
        if not self.running:
            return
        frame, slot = divmod(self.index, self.SLOTS)
        seq, ts = frame & 0xFFFF, (frame * 160) & 0xFFFFFFFF
        socks, targets = self.peers.socks, self.targets
        for i in range(slot, len(socks), self.SLOTS):
            if self.g729[i]:
                packet = HEADER.pack(0x80, 18, seq, ts, 1000 + i) + self.g729_body
            else:
                STAMP.pack_into(self.body, 1, time.time())
                packet = HEADER.pack(0x80, 0, seq, ts, 1000 + i) + self.body
            try:
                socks[i].sendto(packet, targets[i])
                self.sent += 1
            except OSError:
                pass
        step = FRAME / self.SLOTS
        self.index = max(self.index + 1, int((time.perf_counter() - self.origin) / step))
        delay = self.origin + self.index * step - time.perf_counter()
        self.loop.call_later(max(0.0, delay), self._tick)


class Runtime:
    """The runtime child process behind a pipe."""

    def __init__(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(target=_child, args=(child,))
        self.process.start()

    async def call(self, command: str, args: Any = None) -> Any:
        def exchange() -> Any:
            self.conn.send((command, args))
            return self.conn.recv()

        return await asyncio.get_running_loop().run_in_executor(None, exchange)

    def stop(self) -> None:
        self.conn.send(("quit", None))
        self.process.join(10)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _jitter(offsets: list[list[float]]) -> float:
    """p99 of each packet's deviation from its own stream's median offset."""
    deviations = []
    for stream in offsets:
        if stream:
            median = _percentile(stream, 0.5)
            deviations += [abs(o - median) for o in stream]
    return _percentile(deviations, 0.99)


async def _window(
    runtime: Runtime | None, peers: Peers, seconds: float
) -> tuple[float, float, str]:
    """Measure for `seconds`: runtime and generator CPU fractions, the runtime's late ticks."""
    cpu0, stats0 = await runtime.call("cpu") if runtime else (0.0, {})
    own0, wall0 = time.process_time(), time.perf_counter()
    peers.measuring = True
    await asyncio.sleep(seconds)
    peers.measuring = False
    wall = time.perf_counter() - wall0
    cpu1, stats1 = await runtime.call("cpu") if runtime else (0.0, {})
    late = "-"
    if stats1:
        count = stats1["late_ticks"] - stats0["late_ticks"]
        late = f"{count} (max {stats1['late_max_us'] / 1000:.0f} ms), longest tick"
        late += f" {stats1['tick_max_us'] / 1000:.0f} ms"
    return (cpu1 - cpu0) / wall, (time.process_time() - own0) / wall, late


async def bench_play(runtime: Runtime, streams: int, seconds: float) -> Row:
    peers = Peers(streams)
    await runtime.call("setup", ("play", peers.addrs, "PCMU"))
    await asyncio.sleep(WARMUP)
    cpu, own, late = await _window(runtime, peers, seconds)
    await runtime.call("teardown")
    peers.close()
    expected = peers.gaps + sum(len(o) + 1 for o in peers.offsets if o)
    loss = peers.gaps / max(1, expected)
    return Row(f"playback x{streams}", loss, float("nan"), _jitter(peers.offsets), cpu, own, late)


async def bench_bridge(runtime: Runtime | None, calls: int, seconds: float, codec: str) -> Row:
    peers = Peers(2 * calls)
    if runtime is None:  # reference: the pairs talk to each other directly
        addrs = [peers.addrs[i ^ 1] for i in range(2 * calls)]
    else:
        addrs = await runtime.call("setup", ("bridge", peers.addrs, codec))
    g729 = [codec == "G729" and i % 2 == 1 for i in range(2 * calls)]
    senders = Senders(peers, addrs, g729)
    await asyncio.sleep(WARMUP)
    cpu, own, late = await _window(runtime, peers, seconds)
    senders.running = False
    await asyncio.sleep(DRAIN)
    if runtime is not None:
        await runtime.call("teardown")
    peers.close()
    loss = max(0.0, 1 - sum(peers.received) / max(1, senders.sent))
    delay = _percentile([d for stream in peers.delays for d in stream], 0.5)
    jitter = _jitter(peers.delays)
    label = "reference (direct)" if runtime is None else f"bridged {codec}<->PCMU"
    return Row(f"{label} x{calls}", loss, delay, jitter, cpu, own, late)


@dataclass(frozen=True)
class Row:
    label: str
    loss: float
    delay: float
    jitter: float
    cpu: float
    own: float
    late: str

    def __str__(self) -> str:
        flag = "ok" if self.loss < 0.001 else "LOSS"
        return (
            f"{self.label:<30} {100 * self.loss:7.3f} % {flag:<4} {1000 * self.delay:8.2f}"
            f" {1000 * self.jitter:10.2f} {100 * self.cpu:9.1f} % {100 * self.own:11.1f} %"
            f"  {self.late}"
        )


async def bench_drift(runtime: Runtime, seconds: float) -> str:
    """One looping stream for `seconds`: packets in that span, and the schedule's drift."""
    peers = Peers(1)
    peers.measuring = True
    await runtime.call("setup", ("play", peers.addrs, "PCMU"))
    await asyncio.sleep(seconds + 0.5)
    await runtime.call("teardown")
    peers.close()
    # offsets[k] is packet k+1's arrival minus (first arrival + (k+1) * 20 ms).
    offsets = peers.offsets[0]
    count = 1 + sum(1 for k, o in enumerate(offsets) if o + (k + 1) * FRAME <= seconds + FRAME / 2)
    expected = round(seconds / FRAME) + 1
    drift = offsets[-1] if offsets else float("nan")
    return (
        f"drift: {count:,} packets in {seconds:g} s (schedule: {expected:,}), last packet"
        f" {1000 * drift:+.2f} ms off its instant, p99 jitter {1000 * _jitter([offsets]):.2f} ms"
    )


async def main_async(runtime: Runtime, args: argparse.Namespace) -> None:
    if args.drift:
        print(await bench_drift(runtime, args.drift), flush=True)
    print(f"{'scenario':<30} {'loss':>9} {'':<4} {'delay ms':>8} {'p99 jit ms':>10}"
          f" {'runtime CPU':>11} {'generator CPU':>13}  late ticks > 5 ms")  # fmt: skip
    for streams in args.plays:
        print(await bench_play(runtime, streams, args.seconds), flush=True)
    g711_rows = []
    for calls in args.bridges:
        print(await bench_bridge(None, calls, args.seconds, "PCMU"), flush=True)
        g711_rows.append(await bench_bridge(runtime, calls, args.seconds, "PCMU"))
        print(g711_rows[-1], flush=True)
    if args.g729 and load_g729() is not None:
        row = await bench_bridge(runtime, args.g729, args.seconds, "G729")
        print(row, flush=True)
        _g729_summary(row, args.g729, g711_rows)


def _g729_summary(row: Row, calls: int, g711_rows: list[Row]) -> None:
    """CPU per transcoded stream (one direction), less what a G.711 relay costs anyway."""
    per_call = row.cpu / calls
    relay = min((r.cpu / int(r.label.rsplit("x", 1)[1]) for r in g711_rows), default=0.0)
    per_stream = (per_call - relay) / 2
    print(
        f"G.729 transcoding: {100 * per_call:.2f} % of a core per call (both directions);"
        f" {100 * per_stream:.2f} % per transcoded stream beyond a G.711 relay"
        f" = {1e6 * per_stream / 50:.0f} µs per packet"
    )


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=_sizes, default=_sizes("250,500,1000"))
    parser.add_argument("--bridges", type=_sizes, default=_sizes("100,250,500"))
    parser.add_argument("--g729", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--drift", type=float, default=0.0, help="seconds of one stream (600)")
    args = parser.parse_args()
    g711.PCMU.encode(bytes(320))  # import-time work outside the measurements
    runtime = Runtime()  # forked before any event loop exists in this process
    try:
        uvloop.run(main_async(runtime, args))
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
