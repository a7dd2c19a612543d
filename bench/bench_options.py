"""OPTIONS/s that `centralino serve` answers, next to SIPp answering OPTIONS itself.

Run: .venv/bin/python bench/bench_options.py [--rates 1000,2000,5000,8000,10000]
     [--seconds 3] [--log-level INFO] [--no-parser]

For each rate, SIPp (`sipp-scenarios/options.xml`, which checks the 200 carries Allow)
sends `rate x seconds` OPTIONS at `-r rate`, first to a SIPp UAS
(`sipp-scenarios/options-uas.xml`: the reference, measured in the same run), then to a
`centralino serve` started as a user starts it, on the bundled configuration. A step
passes when SIPp reports 0 failed calls. The achieved rate is successful calls over the
time between SIPp's first and last statistics dump; the switch's CPU time per OPTIONS
comes from /proc/PID/stat (top under-counts on these machines). The parser figures of
bench/bench_parser.py are appended. The table is printed and the figures are written as
JSON to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "sipp-scenarios"
RESULTS = ROOT / "bench" / "results"
CENTRALINO = Path(sys.executable).with_name("centralino")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One SIPp run at one target rate against one server."""

    server: str
    target_rate: int
    calls: int
    successful: int
    failed: int
    retransmissions: int
    seconds: float
    achieved_rate: float
    server_cpu_us_per_call: float | None
    exit_code: int


def free_port(kind: int) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65000:
            return port
    raise RuntimeError("no free port")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process we started, by PID, bounded."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start_centralino(tmp: Path, log_level: str) -> tuple[subprocess.Popen[bytes], int]:
    sip, http = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    args = [str(CENTRALINO), "serve", "--sip", f"127.0.0.1:{sip}"]
    args += ["--http", f"127.0.0.1:{http}", "--data", str(tmp / "var")]
    args += ["--log-level", log_level]
    log = (tmp / "centralino.log").open("wb")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=2):
                return proc, sip
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"centralino did not start: {(tmp / 'centralino.log').read_text()}")


def start_reference(sipp: str, seconds: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port(socket.SOCK_DGRAM)
    args = [sipp, "-sf", str(SCENARIOS / "options-uas.xml"), "-i", "127.0.0.1"]
    args += ["-p", str(port), "-nostdin", "-buff_size", "4194304"]
    args += ["-timeout", f"{int(seconds)}s"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if proc.poll() is not None:
        raise RuntimeError("the SIPp reference UAS did not start")
    return proc, port


def last_stats(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    header = lines[0].rstrip(";").split(";")
    values = lines[-1].rstrip(";").split(";")
    return dict(zip(header, values, strict=False))


def epoch(stamp: str) -> float:
    """SIPp writes `date<TAB>time<TAB>epoch` in its time columns."""
    return float(stamp.rsplit("\t", maxsplit=1)[-1])


def run_step(
    sipp: str, server: str, port: int, rate: int, seconds: float, tmp: Path, pid: int | None
) -> Step:
    calls = int(rate * seconds)
    stats = tmp / f"{server}-{rate}.csv"
    args = [sipp, f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "options.xml")]
    args += ["-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)), "-nostdin"]
    args += ["-m", str(calls), "-r", str(rate), "-l", str(max(100, rate))]
    args += ["-recv_timeout", "5000", "-buff_size", "4194304"]
    args += ["-timeout", f"{int(seconds * 4 + 10)}s", "-timeout_error"]
    args += ["-trace_stat", "-stf", str(stats), "-fd", "1"]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    done = subprocess.run(
        args,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=seconds * 4 + 30,
    )
    cpu = cpu_seconds(pid) - cpu_before if pid else None
    row = last_stats(stats)
    successful = int(row["SuccessfulCall(C)"])
    elapsed = max(epoch(row["CurrentTime"]) - epoch(row["StartTime"]), 1e-6)
    return Step(
        server=server,
        target_rate=rate,
        calls=calls,
        successful=successful,
        failed=int(row["FailedCall(C)"]),
        retransmissions=int(row["Retransmissions(C)"]),
        seconds=round(elapsed, 3),
        achieved_rate=round(successful / elapsed, 1),
        server_cpu_us_per_call=round(cpu / successful * 1e6, 1) if cpu and successful else None,
        exit_code=done.returncode,
    )


def parser_figures() -> list[str]:
    """The lines bench/bench_parser.py prints (messages/s on one core)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_parser.py"), "--seconds", "0.5"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.stdout.splitlines() if done.returncode == 0 else [done.stderr.strip()]


def print_table(steps: list[Step]) -> None:
    print(
        f"{'server':10} {'target/s':>9} {'calls':>7} {'ok':>7} {'failed':>6} "
        f"{'retrans':>7} {'achieved/s':>10} {'cpu us/call':>11}"
    )
    for s in steps:
        cpu = f"{s.server_cpu_us_per_call:.0f}" if s.server_cpu_us_per_call else "-"
        print(
            f"{s.server:10} {s.target_rate:>9} {s.calls:>7} {s.successful:>7} "
            f"{s.failed:>6} {s.retransmissions:>7} {s.achieved_rate:>10,.0f} {cpu:>11}"
        )


def best_clean(steps: list[Step], server: str) -> float:
    """The highest achieved rate among the steps with no failure."""
    clean = [
        s.achieved_rate for s in steps if s.server == server and s.failed == 0 and s.exit_code == 0
    ]
    return max(clean, default=0.0)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rates", default="1000,2000,5000,8000,10000")
    options.add_argument("--seconds", type=float, default=3.0)
    options.add_argument("--log-level", default="INFO")
    options.add_argument("--no-parser", action="store_true")
    args = options.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 1
    rates = [int(r) for r in args.rates.split(",")]
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="bench-options-") as folder:
        tmp = Path(folder)
        total = len(rates) * (args.seconds * 4 + 20) + 30
        reference, ref_port = start_reference(sipp, total)
        switch, sip_port = start_centralino(tmp, args.log_level)
        try:
            for rate in rates:
                steps.append(run_step(sipp, "sipp-uas", ref_port, rate, args.seconds, tmp, None))
                steps.append(
                    run_step(sipp, "centralino", sip_port, rate, args.seconds, tmp, switch.pid)
                )
        finally:
            stop(switch)
            stop(reference)
    parser = [] if args.no_parser else parser_figures()
    print_table(steps)
    summary = {s: best_clean(steps, s) for s in ("sipp-uas", "centralino")}
    print(
        f"best rate with 0 failures: centralino {summary['centralino']:,.0f}/s, "
        f"SIPp reference {summary['sipp-uas']:,.0f}/s (log level {args.log_level})"
    )
    for line in parser:
        print(line)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"options-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "log_level": args.log_level,
        "seconds_per_step": args.seconds,
        "steps": [asdict(s) for s in steps],
        "best_clean_rate": summary,
        "parser": parser,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
