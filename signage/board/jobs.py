"""Timed jobs of the board: the one place that imports APScheduler (3.x).

Planner deadlines and slide changes are one-shot jobs at a moment; folder watching, clock-jump
detection, the heartbeat and cache clean-up run at intervals. Everything runs on the worker
thread's asyncio loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger("signage.jobs")

Job = Callable[[], Awaitable[None] | None]
CLOCK_JUMP_S = 2.0  # wall clock and monotonic clock disagreeing by more than this is a jump


class Jobs:
    """Named jobs on an asyncio loop; scheduling a name again replaces the old job."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tz: ZoneInfo) -> None:
        self._scheduler = AsyncIOScheduler(event_loop=loop, timezone=tz)

    def start(self) -> None:
        """Start running jobs."""
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop running jobs (does not wait for running ones)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def at(self, name: str, when: datetime, job: Job) -> None:
        """Run ``job`` once at ``when`` (at once if that is past), replacing job ``name``."""
        self._scheduler.add_job(
            job,
            DateTrigger(run_date=when),
            id=name,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def every(self, name: str, seconds: float, job: Job) -> None:
        """Run ``job`` every ``seconds``, replacing job ``name``; a late run is not repeated."""
        self._scheduler.add_job(
            job,
            IntervalTrigger(seconds=seconds),
            id=name,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )

    def cancel(self, name: str) -> None:
        """Remove job ``name`` if it is scheduled."""
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)


class ClockWatch:
    """Detects jumps of the wall clock (NTP after a boot without RTC, a manual change).

    ``check`` compares how far the wall clock and the monotonic clock moved since the last
    check; the difference is the jump.
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        threshold: float = CLOCK_JUMP_S,
    ) -> None:
        self._wall, self._mono, self.threshold = wall, mono, threshold
        self._last = (wall(), mono())

    def check(self) -> float:
        """Return the jump in seconds since the last check (0.0 when below the threshold)."""
        wall, mono = self._wall(), self._mono()
        jump = (wall - self._last[0]) - (mono - self._last[1])
        self._last = (wall, mono)
        return jump if abs(jump) > self.threshold else 0.0
