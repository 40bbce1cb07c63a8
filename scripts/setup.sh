#!/usr/bin/env bash
# Set up everything the board software needs on Debian/Ubuntu, idempotently:
#   system packages (libfribidi0 for Pillow's text shaping; libharfbuzz-bin for the render checks),
#   a virtualenv in .venv, and the package with its dependencies.
# Usage: bash scripts/setup.sh [--dev]     (--dev adds the test and lint tools, and chromium with
#   fonts-noto-core for the status page test in a browser, tests/hub/test_status_page.py)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
packages=(libfribidi0 libharfbuzz-bin)
browser=()
if [ "${1:-}" = "--dev" ]; then
  extras="[dev]"
  browser=(chromium fonts-noto-core)
fi

missing() {  # prints the packages among "$@" that are not installed
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
if command -v dpkg-query >/dev/null 2>&1; then
  mapfile -t need < <(missing "${packages[@]}")
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=("python3-venv")
  mapfile -t extra < <(missing "${browser[@]}")
  if [ "${#need[@]}" -gt 0 ] || [ "${#extra[@]}" -gt 0 ]; then
    $SUDO apt-get update -qq
  fi
  if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ "${#extra[@]}" -gt 0 ]; then
    # Debian's chromium for the status page test; Ubuntu ships it only as a snap, so a failure
    # here is a warning (the test then says what is missing) rather than a broken setup.
    echo "setup: installing ${extra[*]} (about 300 MB, for the browser test of the status page)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${extra[@]}" >/dev/null \
      || echo "setup: warning: could not install ${extra[*]}; the status page test will not run" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
echo "setup: ready (.venv/bin/signage)"
