#!/usr/bin/env bash
# Set up everything Centralino needs on Debian 12 with Python 3.11: the Debian packages
# (SIPp, baresip, libbcg729, espeak-ng, sox, and PostgreSQL for the tests of the
# PostgreSQL event store), a virtual environment in .venv with the project and its
# development tools, and the prompt catalogue.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(python3-venv sip-tester baresip libbcg729-0 espeak-ng sox postgresql)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

if [ -f tools/make_prompts.py ]; then
  .venv/bin/python tools/make_prompts.py
fi
echo "Centralino is set up: .venv/bin/centralino serve"
