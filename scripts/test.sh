#!/usr/bin/env bash
# Set up (with the dev tools) and run the whole test suite: unit, golden-image, property,
# lint (ruff), types (mypy --strict) and layering (import-linter) tests.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || exit 1
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests: the suite is broken, failing the run" >&2
  exit 1
fi
exit "$status"
