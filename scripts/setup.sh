#!/usr/bin/env bash
# Set up everything the board software needs on Debian/Ubuntu, idempotently:
#   system packages (libfribidi0 for Pillow's text shaping; libharfbuzz-bin for the render checks),
#   a virtualenv in .venv, and the package with its dependencies.
# Usage: bash scripts/setup.sh [--dev]     (--dev adds the test and lint tools, chromium with
#   fonts-noto-core for the status page test in a browser, tests/hub/test_status_page.py, and
#   fuse3 for the power-cut tests, tests/system/test_powercut.py)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
packages=(libfribidi0 libharfbuzz-bin)
# Optional for the tests, each group installed on its own so that one missing does not cost the
# other: Debian's chromium for the status page test (Ubuntu ships it only as a snap), fuse3 for
# the power-cut tests. A failure is a warning; those tests then say what is missing and skip.
optional=()
if [ "${1:-}" = "--dev" ]; then
  extras="[dev]"
  optional=("chromium fonts-noto-core|the browser test of the status page"
            "fuse3 libfuse3-3|the power-cut tests")
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
  wanted=()
  for group in "${optional[@]}"; do
    read -r -a names <<< "${group%%|*}"
    mapfile -t lacking < <(missing "${names[@]}")
    [ "${#lacking[@]}" -gt 0 ] && wanted+=("${lacking[*]}|${group#*|}")
  done
  if [ "${#need[@]}" -gt 0 ] || [ "${#wanted[@]}" -gt 0 ]; then
    $SUDO apt-get update -qq
  fi
  if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  for group in "${wanted[@]}"; do
    read -r -a names <<< "${group%%|*}"
    echo "setup: installing ${names[*]} for ${group#*|}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${names[@]}" >/dev/null \
      || echo "setup: warning: could not install ${names[*]}; ${group#*|} will not run" >&2
  done
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
echo "setup: ready (.venv/bin/signage)"
