"""Call-rate benchmark of `centralino serve` with SIPp, on loopback only.

Run: bash bench/run.sh   (or .venv/bin/python bench/bench_calls.py [--quick])

One run, bounded by --budget seconds (default 540, under 10 minutes):
1. starts the switch on bench/load.yaml (SIP, HTTP and RTP on 127.0.0.1 only);
2. registers N SIPp operators (load-register.xml) answering in one SIPp UAS
   (load-operator.xml: ring, answer, then the caller hangs up);
3. memory: callers who hang up after a few seconds (load-caller-abandon.xml), N of
   them talking to the operators and the others queued with music on hold; the RSS
   growth over the calls in progress is the memory per call. Then the UAS is restarted
   on the same port with operators who hang up after their talk time;
4. ramps the call rate (doubling, then bisecting) for (a) pass-through, 800000001,
   straight to the queue (load-caller.xml), and (b) the full flow, 800000002: welcome,
   RFC 2833 digit, queue, operator, BYE (load-caller-ivr.xml); a step passes when SIPp
   exits 0 (0 failed calls), every call reached an operator, and SIPp reached 90% of
   the asked rate;
5. stops the switch, then ramps SIPp against SIPp (`sipp -sn uas`) as the reference.

Per step: the switch's CPU from /proc/<pid>/stat (utime + stime; top under-counts on
these machines), its peak RSS and peak calls in progress (GET /healthz), and the
call set-up latency p50/p99 from SIPp's -trace_rtt (rtd 1: INVITE to 200; rtd 2:
INVITE to the switch's BYE, that is queueing, offer, ring and talk). Prints a table and
writes JSON to bench/results/ (git-ignored). --profile-rate RATE also runs py-spy (a
dev tool, `pip install py-spy`, not a dependency) on the switch during one step of each
flow at that rate and prints the functions with the most samples.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "sipp-scenarios"
CONFIG = ROOT / "bench" / "load.yaml"
RESULTS = ROOT / "bench" / "results"
CENTRALINO = Path(sys.executable).parent / "centralino"
FLOWS = ("pass-through", "full-flow")
DIGIT_PCAP = "/usr/share/sip-tester/dtmf_2833_1.pcap"
PASSWORD = "bench-load-only"  # bench/load.yaml's test-only password
HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    """Every UDP/TCP port of a run, all on 127.0.0.1."""

    sip: int = 31060
    http: int = 31080
    operators: int = 31070
    register: int = 31071
    caller: int = 31090
    ref_uas: int = 31100
    ref_uac: int = 31101
    caller_media: int = 31200
    operator_media: int = 31300
    ref_media: int = 31400
    ref_uas_media: int = 31500
    register_media: int = 31600


@dataclass(slots=True, kw_only=True)
class Step:
    """One rate tried: what SIPp and /proc saw."""

    flow: str
    rate: int
    calls: int
    ok: bool
    sipp_exit: int
    failed: int
    reached_operator: int | None
    achieved_rate: float
    cpu_percent: float
    cpu_ms_per_call: float
    peak_rss_kb: int
    peak_calls: int
    setup_p50_ms: float | None
    setup_p99_ms: float | None
    end_p50_ms: float | None
    end_p99_ms: float | None
    peak_cpu_percent: float
    sipp_cpu_percent: list[float]
    load_average: float
    note: str = ""
    profiled: bool = False
    """Run under py-spy: shown, but left out of the summary (the profiler takes CPU)."""


@dataclass(slots=True)
class Watched:
    """What the sampling loop saw during one step."""

    wall: float = 0.0
    switch_cpu: float = 0.0
    peak_cpu_percent: float = 0.0
    peak_rss_kb: int = 0
    peak_calls: int = 0
    sipp_cpu: list[float] = field(default_factory=list)


def busiest_second(window: list[tuple[float, float]]) -> float:
    """CPU % over the last second of (time, cpu seconds) samples."""
    now, cpu = window[-1]
    earlier = [(t, c) for t, c in window if now - t >= 1.0]
    if not earlier:
        return 0.0
    then, before = earlier[-1]
    return 100 * (cpu - before) / (now - then)


@dataclass(slots=True)
class Run:
    """Processes started by this run, ended by PID whatever happens."""

    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = (self.workdir / f"{name}.out").open("wb")
        proc = subprocess.Popen(
            argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


# -- /proc and /healthz ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (proc(5): fields 14 and 15, after the comm)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid: int) -> int:
    """Resident set size (proc(5) statm, second field, in pages)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB


def health(ports: Ports) -> dict[str, object]:
    url = f"http://{HOST}:{ports.http}/healthz"
    with urllib.request.urlopen(url, timeout=2) as response:
        data: dict[str, object] = json.loads(response.read())
    return data


def calls_in_progress(ports: Ports) -> int:
    value = health(ports).get("calls", 0)
    return value if isinstance(value, int) else 0


def wait_idle(ports: Ports, seconds: float) -> int:
    """Wait until the switch has no call in progress; the calls left."""
    deadline = time.monotonic() + seconds
    left = calls_in_progress(ports)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = calls_in_progress(ports)
    return left


# -- SIPp ------------------------------------------------------------------------------


def sipp_common(port: int, media: int, timeout: float) -> list[str]:
    return [
        "-i", HOST, "-p", str(port), "-mp", str(media), "-buff_size", "4194304",
        "-timeout", f"{timeout:.0f}s", "-timeout_error", "-nostdin", "-trace_err",
    ]  # fmt: skip


def caller_argv(flow: str, rate: int, calls: int, ports: Ports, timeout: float) -> list[str]:
    """The SIPp caller of a flow: pass-through, full-flow, or reference (SIPp's uac)."""
    load = [
        "-r", str(rate), "-m", str(calls), "-l", str(calls), "-recv_timeout", "10000",
        "-trace_rtt", "-rtt_freq", "1",
    ]  # fmt: skip
    common = sipp_common(ports.caller, ports.caller_media, timeout) + load
    switch = f"{HOST}:{ports.sip}"
    if flow == "pass-through":
        scenario = ["-sf", str(SCENARIOS / "load-caller.xml"), "-s", "800000001"]
        return ["sipp", switch, *scenario, *common]
    if flow == "full-flow":
        keys = ["-key", "welcome_ms", "500", "-key", "digit_pcap", DIGIT_PCAP]
        scenario = ["-sf", str(SCENARIOS / "load-caller-ivr.xml"), "-s", "800000002"]
        return ["sipp", switch, *scenario, *keys, *common]
    reference = sipp_common(ports.ref_uac, ports.ref_media, timeout) + load
    return ["sipp", f"{HOST}:{ports.ref_uas}", "-sn", "uac", "-s", "ref", *reference]


def rtt_values(workdir: Path, pid: int) -> dict[int, list[tuple[float, float]]]:
    """SIPp's -trace_rtt file: (date_ms, response_ms) per rtd number."""
    found: dict[int, list[tuple[float, float]]] = {}
    for path in workdir.glob(f"*_{pid}_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2].strip().isdigit():
                found.setdefault(int(parts[2]), []).append((float(parts[0]), float(parts[1])))
    return found


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)


def sipp_failed(out: Path) -> int:
    """The 'Failed call' cumulative count from SIPp's final screen."""
    for line in reversed(out.read_text(errors="replace").splitlines()):
        if line.strip().startswith("Failed call"):
            return int(line.split("|")[2].split()[0])
    return -1


def stat_successes(workdir: Path, pid: int) -> int:
    """Successful calls so far in a SIPp -trace_stat file (last line, cumulative)."""
    files = list(workdir.glob(f"*_{pid}_.csv"))
    if not files:
        return 0
    lines = files[0].read_text().splitlines()
    if len(lines) < 2:
        return 0
    header, last = lines[0].split(";"), lines[-1].split(";")
    return int(last[header.index("SuccessfulCall(C)")])


# -- one step --------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Bench:
    run: Run
    ports: Ports
    switch: subprocess.Popen[bytes] | None
    operator: subprocess.Popen[bytes] | None
    step_seconds: float
    fixed_ms: dict[str, float]
    steps: list[Step] = field(default_factory=list)

    def operator_successes(self) -> int | None:
        if self.operator is None:
            return None
        stat = self.run.workdir.glob(f"*_{self.operator.pid}_.csv")
        before = max((p.stat().st_mtime for p in stat), default=0.0)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the next -fd 1 dump
            stat = self.run.workdir.glob(f"*_{self.operator.pid}_.csv")
            if max((p.stat().st_mtime for p in stat), default=0.0) > before:
                break
            time.sleep(0.1)
        return stat_successes(self.run.workdir, self.operator.pid)

    def step(self, flow: str, rate: int) -> Step:
        calls = max(1, int(rate * self.step_seconds))
        timeout = self.step_seconds + 25
        ops_before = self.operator_successes()
        load = os.getloadavg()[0]
        proc = self.run.start(f"{flow}-{rate}", caller_argv(flow, rate, calls, self.ports, timeout))
        seen = self._watch(proc)
        if self.switch is not None:
            wait_idle(self.ports, 10)
        ops_after = self.operator_successes()
        reached = None if ops_before is None or ops_after is None else ops_after - ops_before
        return self._record(flow, rate, calls, proc, seen, reached, load)

    def _watch(self, proc: subprocess.Popen[bytes]) -> Watched:
        """Sample the switch and SIPp every 0.25 s until SIPp exits."""
        pids = [proc.pid] + [p.pid for p in (self.switch, self.operator) if p is not None]
        seen, start = Watched(), time.monotonic()
        cpu0 = {pid: cpu_seconds(pid) for pid in pids}
        cpu = dict.fromkeys(pids, 0.0)
        window: list[tuple[float, float]] = []
        while proc.poll() is None:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, IndexError):
                cpu = {pid: cpu_seconds(pid) - cpu0[pid] for pid in pids}
            if self.switch is not None:
                seen.peak_rss_kb = max(seen.peak_rss_kb, rss_kb(self.switch.pid))
                seen.peak_calls = max(seen.peak_calls, calls_in_progress(self.ports))
                window.append((time.monotonic(), cpu[self.switch.pid]))
                seen.peak_cpu_percent = max(seen.peak_cpu_percent, busiest_second(window))
            time.sleep(0.25)
        seen.wall = time.monotonic() - start
        seen.sipp_cpu = [cpu[pid] for pid in pids if pid != getattr(self.switch, "pid", None)]
        seen.switch_cpu = cpu[self.switch.pid] if self.switch is not None else 0.0
        return seen

    def _record(
        self,
        flow: str,
        rate: int,
        calls: int,
        proc: subprocess.Popen[bytes],
        seen: Watched,
        reached: int | None,
        load: float,
    ) -> Step:
        rtts = rtt_values(self.run.workdir, proc.pid)
        setup = [ms for _, ms in rtts.get(1, [])]
        ends = [ms - self.fixed_ms.get(flow, 0.0) for _, ms in rtts.get(2, [])]
        dates = [date for date, _ in rtts.get(1, [])]
        span = (max(dates) - min(dates)) / 1000 if len(dates) > 1 else 0.0
        achieved = (len(dates) - 1) / span if span > 0 else 0.0
        failed = sipp_failed(self.run.workdir / f"{flow}-{rate}.out")
        ok = proc.returncode == 0 and failed == 0 and achieved >= 0.9 * rate
        note = "" if achieved >= 0.9 * rate else "SIPp did not reach the rate"
        if reached is not None and reached != calls:
            ok, note = False, f"{reached} of {calls} calls reached an operator"
        sipp_percent = [round(100 * c / seen.wall, 1) for c in seen.sipp_cpu]
        result = Step(
            flow=flow, rate=rate, calls=calls, ok=ok, sipp_exit=proc.returncode, failed=failed,
            reached_operator=reached, achieved_rate=round(achieved, 1),
            cpu_percent=round(100 * seen.switch_cpu / seen.wall, 1),
            peak_cpu_percent=round(seen.peak_cpu_percent, 1),
            cpu_ms_per_call=round(1000 * seen.switch_cpu / calls, 3),
            peak_rss_kb=seen.peak_rss_kb, peak_calls=seen.peak_calls,
            setup_p50_ms=percentile(setup, 50), setup_p99_ms=percentile(setup, 99),
            end_p50_ms=percentile(ends, 50), end_p99_ms=percentile(ends, 99),
            sipp_cpu_percent=sipp_percent, load_average=round(load, 2), note=note,
        )  # fmt: skip
        self.steps.append(result)
        print(format_step(result), flush=True)
        return result

    def ramp(self, flow: str, start: int, cap: int, deadline: float, bisect: int = 3) -> int:
        """The highest rate with 0 failed calls: double until a failure, then bisect."""
        good, bad, rate = 0, 0, start
        while rate <= cap and time.monotonic() + self.step_seconds + 15 < deadline:
            if not self.step(flow, rate).ok:
                bad = rate
                break
            good, rate = rate, rate * 2
        for _ in range(bisect):
            if not bad or bad - good <= max(10, good // 10):
                break
            if time.monotonic() + self.step_seconds + 15 >= deadline:
                break
            rate = (good + bad) // 2
            if self.step(flow, rate).ok:
                good = rate
            else:
                bad = rate
        return good


def format_step(s: Step) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    verdict = "ok" if s.ok else "FAIL"
    return (
        f"{s.flow:12} {s.rate:6}/s {s.achieved_rate:8.1f}/s {s.calls:6} {verdict:4}"
        f" failed={s.failed:<4} cpu={s.cpu_percent:5.1f}% {s.cpu_ms_per_call:6.2f}ms/call"
        f" rss={s.peak_rss_kb // 1024:4}MB calls<={s.peak_calls:<5}"
        f" setup p50/p99={ms(s.setup_p50_ms)}/{ms(s.setup_p99_ms)}ms"
        f" end p50/p99={ms(s.end_p50_ms)}/{ms(s.end_p99_ms)}ms peak cpu={s.peak_cpu_percent:.0f}%"
        f" sipp={'+'.join(f'{c:.0f}' for c in s.sipp_cpu_percent)}% load={s.load_average}"
        f" {s.note}"
    )


# -- the phases ------------------------------------------------------------------------


def free_ports(ports: Ports) -> list[int]:
    """Ports of this run already taken on 127.0.0.1 (UDP, and TCP for HTTP)."""
    taken = []
    for port, kind in [(p, socket.SOCK_DGRAM) for p in asdict(ports).values()] + [
        (ports.http, socket.SOCK_STREAM)
    ]:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((HOST, port))
            except OSError:
                taken.append(port)
    return taken


def start_switch(run: Run, ports: Ports, command: str) -> subprocess.Popen[bytes]:
    argv = [
        *shlex.split(command), "serve", "--config", str(CONFIG), "--sip", f"{HOST}:{ports.sip}",
        "--http", f"{HOST}:{ports.http}", "--data", str(run.workdir / "var"),
        "--log-level", "WARNING", "--drain-seconds", "2",
    ]  # fmt: skip
    proc = run.start("switch", argv)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the switch exited: see {run.workdir / 'switch.out'}")
        try:
            health(ports)
            return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the switch did not answer /healthz within 20 s")


def memory_per_call(bench: Bench, rate: int, seconds: float) -> dict[str, float]:
    """RSS growth over calls in progress: callers who hang up after `seconds` + 1.5 s,
    as many talking to an operator as there are operators (who let the caller hang up),
    the others waiting in the queue with music on hold."""
    assert bench.switch is not None
    pid, ports, run = bench.switch.pid, bench.ports, bench.run
    warm = abandon_argv(20, 40, 200, ports)
    run.start("memory-warmup", warm).wait()
    wait_idle(ports, 10)
    rss0 = rss_kb(pid)
    calls = int(rate * seconds)
    proc = run.start("memory", abandon_argv(rate, calls, int(seconds * 1000) + 1500, ports))
    peak_calls, rss_at_peak = 0, rss0
    while proc.poll() is None:
        now_calls, now_rss = calls_in_progress(ports), rss_kb(pid)
        if now_calls >= peak_calls:
            peak_calls, rss_at_peak = now_calls, max(rss_at_peak, now_rss)
        time.sleep(0.2)
    wait_idle(ports, 10)
    per_call = (rss_at_peak - rss0) / peak_calls if peak_calls else 0.0
    result = {
        "rss_before_kb": rss0,
        "rss_at_peak_kb": rss_at_peak,
        "peak_calls": peak_calls,
        "kb_per_call": round(per_call, 1),
        "sipp_exit": proc.returncode,
    }
    print(f"memory: {json.dumps(result)}", flush=True)
    return result


def abandon_argv(rate: int, calls: int, wait_ms: int, ports: Ports) -> list[str]:
    scenario = str(SCENARIOS / "load-caller-abandon.xml")
    return [
        "sipp", f"{HOST}:{ports.sip}", "-sf", scenario, "-s", "800000001",
        "-key", "wait_ms", str(wait_ms), "-r", str(rate), "-m", str(calls), "-l", str(calls),
        *sipp_common(ports.caller, ports.caller_media, wait_ms / 1000 + 30),
    ]  # fmt: skip


def start_uas(
    run: Run, ports: Ports, args: argparse.Namespace, hangup: str
) -> subprocess.Popen[bytes]:
    """One SIPp UAS answering for every operator (`hangup`: operator or caller)."""
    return run.start(f"operators-{hangup}", [
        "sipp", "-sf", str(SCENARIOS / "load-operator.xml"),
        "-key", "ring_ms", str(args.ring_ms), "-key", "talk_ms", str(args.talk_ms),
        "-key", "hangup", hangup, "-trace_stat", "-fd", "1",
        *sipp_common(ports.operators, ports.operator_media, 3600),
    ])  # fmt: skip


def register_operators(run: Run, ports: Ports, count: int) -> None:
    """REGISTER operators 2001.. with digest, their Contact at the UAS's port."""
    csv = run.workdir / "operators.csv"
    lines = [f"{2000 + i};[authentication username={2000 + i} password={PASSWORD}]"
             for i in range(1, count + 1)]  # fmt: skip
    csv.write_text("SEQUENTIAL\n" + "\n".join(lines) + "\n")
    register = run.start("register", [
        "sipp", f"{HOST}:{ports.sip}", "-sf", str(SCENARIOS / "load-register.xml"),
        "-inf", str(csv), "-m", str(count), "-r", "200",
        "-key", "contact_port", str(ports.operators), "-key", "expires", "3600",
        *sipp_common(ports.register, ports.register_media, 20),
    ])  # fmt: skip
    if register.wait(timeout=30) != 0:
        raise SystemExit(f"operators did not register: see {run.workdir / 'register.out'}")
    registered = health(ports).get("registrations")
    print(f"operators: {registered} registered, answering at {HOST}:{ports.operators}")


def profile(bench: Bench, flow: str, rate: int) -> dict[str, list[tuple[str, float]]]:
    """py-spy on the switch during one step of `flow`: top self and total times."""
    assert bench.switch is not None
    raw = bench.run.workdir / f"pyspy-{flow}.txt"
    spy = bench.run.start(f"py-spy-{flow}", [
        str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(bench.switch.pid),
        "-d", str(int(bench.step_seconds) + 1), "-r", "250", "-f", "raw", "-F",
        "--nonblocking", "-o", str(raw),
    ])  # fmt: skip
    time.sleep(1)
    bench.step(flow, rate).profiled = True
    spy.wait(timeout=60)
    return top_functions(raw)


def top_functions(raw: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive shares of samples per function, from py-spy's raw output."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        samples += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda item: -item[1])[:top]
        return [(name, round(100 * n / max(1, samples), 1)) for name, n in ranked]

    return {"self_percent": share(own), "total_percent": share(total)}


def reference(run: Run, ports: Ports, args: argparse.Namespace, deadline: float) -> Bench:
    """SIPp's uac against SIPp's uas directly: the same ramp, no switch in between."""
    uas = run.start("reference-uas", [
        "sipp", "-sn", "uas", *sipp_common(ports.ref_uas, ports.ref_uas_media, 3600),
    ])  # fmt: skip
    time.sleep(0.5)
    bench = Bench(run=run, ports=ports, switch=None, operator=None,
                  step_seconds=min(3.0, args.step_seconds), fixed_ms={})  # fmt: skip
    bench.ramp("reference", 1000, args.ref_cap, deadline, bisect=2)
    run.stop(uas)
    return bench


# -- report ----------------------------------------------------------------------------


def best(steps: list[Step], flow: str) -> Step | None:
    passed = [s for s in steps if s.flow == flow and s.ok and not s.profiled]
    return max(passed, key=lambda s: s.rate) if passed else None


def machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    sipp = subprocess.run(["sipp", "-v"], capture_output=True, text=True, check=False)
    version = next((line.strip() for line in sipp.stdout.splitlines() if "SIPp v" in line), "")
    git = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
    revision = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    return {
        "revision": revision,
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "sipp": version,
        "load_average_at_start": os.getloadavg(),
    }


def summary(steps: list[Step], memory: dict[str, float]) -> list[dict[str, object]]:
    aims = {"pass-through": 1000, "full-flow": 200, "reference": None}
    rows: list[dict[str, object]] = []
    for flow, aim in aims.items():
        top = best(steps, flow)
        failed = [s.rate for s in steps if s.flow == flow and not s.ok and not s.profiled]
        first_fail = min(failed, default=None)
        rows.append({
            "flow": flow, "max_rate_0_failed": top.rate if top else 0, "aim": aim,
            "first_failing_rate": first_fail,
            "cpu_ms_per_call": top.cpu_ms_per_call if top else None,
            "cpu_percent": top.cpu_percent if top else None,
            "peak_cpu_percent": top.peak_cpu_percent if top else None,
            "setup_p50_ms": top.setup_p50_ms if top else None,
            "setup_p99_ms": top.setup_p99_ms if top else None,
            "to_operator_p50_ms": top.end_p50_ms if top else None,
            "to_operator_p99_ms": top.end_p99_ms if top else None,
        })  # fmt: skip
    rows.append({"flow": "memory", "kb_per_call": memory.get("kb_per_call"), "aim_kb": 100,
                 "peak_calls": memory.get("peak_calls")})  # fmt: skip
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    def cell(value: object) -> str:
        return "-" if value is None else str(value)

    print("\nflow          max calls/s (0 failed)  aim    CPU ms/call  CPU %   "
          "set-up p50/p99 ms  to operator p50/p99 ms  first failing")  # fmt: skip
    for row in rows:
        if row["flow"] == "memory":
            print(f"memory        {cell(row['kb_per_call'])} KB per call in progress "
                  f"(at {cell(row['peak_calls'])} calls; aim < 100 KB)")  # fmt: skip
            continue
        print(
            f"{cell(row['flow']):13} {cell(row['max_rate_0_failed']):>22}  {cell(row['aim']):5}"
            f"  {cell(row['cpu_ms_per_call']):>11}  {cell(row['cpu_percent']):>5}"
            f"   {cell(row['setup_p50_ms'])}/{cell(row['setup_p99_ms']):<13}"
            f"  {cell(row['to_operator_p50_ms'])}/{cell(row['to_operator_p99_ms']):<18}"
            f"  {cell(row['first_failing_rate'])}"
        )


def print_profile(flow: str, profile: dict[str, object]) -> None:
    for kind, ranked in profile.items():
        print(f"\npy-spy, {flow}, {kind.replace('_', ' ')} of samples:")
        for name, share in ranked if isinstance(ranked, list) else []:
            print(f"  {share:5.1f}  {name}")


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operators", type=int, default=99, help="1 to 99 (2001-2099)")
    parser.add_argument("--ring-ms", type=int, default=10)
    parser.add_argument("--talk-ms", type=int, default=50)
    parser.add_argument("--step-seconds", type=float, default=4.0)
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the run")
    parser.add_argument("--pass-cap", type=int, default=3200)
    parser.add_argument("--full-cap", type=int, default=1600)
    parser.add_argument("--ref-cap", type=int, default=16000)
    parser.add_argument("--memory-rate", type=int, default=100)
    parser.add_argument("--memory-seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="short steps, low caps (smoke)")
    parser.add_argument(
        "--profile-rate", type=int, default=0, help="py-spy one step of each flow at this rate"
    )
    parser.add_argument(
        "--switch-command", default=str(CENTRALINO), help="what runs `centralino` (experiments)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.step_seconds, args.pass_cap, args.full_cap, args.ref_cap = 2.0, 100, 50, 2000
        args.memory_rate, args.memory_seconds = 20, 2.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + args.budget
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    ports = Ports()
    taken = free_ports(ports)
    if taken:
        print(f"ports in use on {HOST}: {taken}; stop what holds them", file=sys.stderr)
        return 2
    run = Run(workdir=RESULTS / f"calls-{stamp}")
    run.workdir.mkdir(parents=True)
    report: dict[str, object] = {"machine": machine(), "args": vars(args), "started": stamp}
    try:
        report.update(phases(run, ports, args, deadline))
    finally:
        run.stop_all()
    report["seconds"] = round(time.monotonic() - started, 1)
    out = RESULTS / f"calls-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    rows = report["summary"]
    assert isinstance(rows, list)
    print_table(rows)
    profiled = report.get("profile")
    if isinstance(profiled, dict):
        for flow, tops in profiled.items():
            print_profile(flow, tops)
    print(f"\n{report['seconds']} s; JSON: {out}; SIPp output: {run.workdir}")
    return 0


def phases(run: Run, ports: Ports, args: argparse.Namespace, deadline: float) -> dict[str, object]:
    switch = start_switch(run, ports, args.switch_command)
    bench = Bench(run=run, ports=ports, switch=switch, operator=None,
                  step_seconds=args.step_seconds, fixed_ms={})  # fmt: skip
    listener = start_uas(run, ports, args, "caller")
    register_operators(run, ports, args.operators)
    memory = memory_per_call(bench, args.memory_rate, args.memory_seconds)
    memory["talking_at_peak"] = min(args.operators, int(memory["peak_calls"]))
    run.stop(listener)
    bench.operator = start_uas(run, ports, args, "operator")
    time.sleep(0.5)
    fixed = float(args.ring_ms + args.talk_ms)
    bench.fixed_ms = {"pass-through": fixed, "full-flow": fixed + 500}
    share = (deadline - time.monotonic() - 60) / 2
    bench.ramp("pass-through", 50, args.pass_cap, time.monotonic() + share)
    bench.ramp("full-flow", 25, args.full_cap, deadline - 60)
    profiled = {}
    if args.profile_rate:
        profiled = {flow: profile(bench, flow, args.profile_rate) for flow in FLOWS}
    run.stop(switch, signal.SIGINT)
    run.stop(bench.operator)
    ref = reference(run, ports, args, deadline)
    steps = bench.steps + ref.steps
    return {
        "memory": memory,
        "steps": [asdict(s) for s in steps],
        "summary": summary(steps, memory),
        "profile": profiled,
    }


if __name__ == "__main__":
    sys.exit(main())
