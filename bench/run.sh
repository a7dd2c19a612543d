#!/usr/bin/env bash
# The call-rate benchmark in one command (see bench/bench_calls.py and
# sipp-scenarios/README.md): starts `centralino serve` on bench/load.yaml, registers
# SIPp operators, ramps pass-through and full-flow call rates, measures CPU, memory
# per call and set-up latency, and SIPp against SIPp as the reference. Loopback only;
# under 10 minutes. Extra arguments go to bench_calls.py (e.g. --quick, --profile-rate 200).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || { echo "no $PYTHON: run scripts/setup.sh first" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester" >&2; exit 2; }
exec "$PYTHON" bench/bench_calls.py "$@"
