"""Run ``python -m signage ...`` with a wall clock a test can move, the monotonic clock untouched:
what a board sees when NTP steps its clock after a boot without a clock battery.

    python tests/system/fakeclock.py OFFSET_FILE -- play --content ...

OFFSET_FILE holds a number of seconds added to the real wall clock; the test rewrites it to
jump. ``time.time``/``time.time_ns`` and ``datetime.now``/``date.today`` follow it (installed
before signage is imported, so every module sees them); ``time.monotonic`` does not, as on a
real machine. (libfaketime cannot do this here: with the monotonic clock left alone it breaks
Python's sleep.)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import runpy
import sys
import time
from pathlib import Path

_real_time = time.time
_real_datetime = _dt.datetime
_real_date = _dt.date


class _Offset:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.value = 0.0
        self.read_at = -1.0

    def __call__(self) -> float:
        now = time.monotonic()
        if now - self.read_at > 0.05:  # re-read at most 20 times a second
            self.read_at = now
            with contextlib.suppress(OSError, ValueError):  # mid-rewrite: keep the last value
                self.value = float(self.path.read_text().strip() or 0)
        return self.value


def _install(offset: _Offset) -> None:
    def fake_time() -> float:
        return _real_time() + offset()

    def fake_time_ns() -> int:
        return int(fake_time() * 1e9)

    class FakeDatetime(_real_datetime):
        @classmethod
        def now(cls, tz: _dt.tzinfo | None = None) -> FakeDatetime:  # type: ignore[override]
            return cls.fromtimestamp(fake_time(), tz)

        @classmethod
        def today(cls) -> FakeDatetime:  # type: ignore[override]
            return cls.fromtimestamp(fake_time())

    class FakeDate(_real_date):
        @classmethod
        def today(cls) -> FakeDate:  # type: ignore[override]
            return cls.fromtimestamp(fake_time())

    time.time = fake_time
    time.time_ns = fake_time_ns
    _dt.datetime = FakeDatetime  # type: ignore[misc]
    _dt.date = FakeDate  # type: ignore[misc]


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        raise SystemExit("usage: fakeclock.py OFFSET_FILE -- SIGNAGE_ARGS...")
    _install(_Offset(Path(sys.argv[1])))
    sys.argv = ["signage", *sys.argv[3:]]
    runpy.run_module("signage", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
