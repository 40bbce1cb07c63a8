#!/usr/bin/env bash
# Set up everything the board software needs on Debian/Ubuntu, idempotently:
#   system packages (libfribidi0 for Pillow's text shaping; libharfbuzz-bin for the render checks),
#   a virtualenv in .venv, and the package with its dependencies.
# Usage: bash scripts/setup.sh [--dev]     (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

need=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in libfribidi0 libharfbuzz-bin; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=("python3-venv")
fi
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
  echo "setup: installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
echo "setup: ready (.venv/bin/signage)"
