"""Timed jobs of the board: the one place that imports APScheduler (3.x).

Planner deadlines and slide changes are one-shot jobs at a moment of the wall clock
(APScheduler date triggers). Folder watching, clock-jump detection, the heartbeat and the like
run at intervals of the monotonic clock (asyncio timers), so a step of the wall clock cannot
stop them: APScheduler's interval trigger would try to catch up every missed interval after
an NTP step from 1970 (billions of them) and hang the loop. Everything runs on the worker
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

log = logging.getLogger("signage.jobs")

Job = Callable[[], Awaitable[None] | None]
CLOCK_JUMP_S = 2.0  # wall clock and monotonic clock disagreeing by more than this is a jump


class Jobs:
    """Named jobs on an asyncio loop; scheduling a name again replaces the old job."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tz: ZoneInfo) -> None:
        self._loop = loop
        self._scheduler = AsyncIOScheduler(event_loop=loop, timezone=tz)
        self._intervals: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Start running jobs."""
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop running jobs (does not wait for running ones)."""
        for task in self._intervals.values():
            task.cancel()
        self._intervals.clear()
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
        """Run ``job`` every ``seconds`` of the monotonic clock, replacing job ``name``; one run
        at a time, and a run that fails is logged and the next one comes as planned."""
        old = self._intervals.pop(name, None)
        if old is not None:
            old.cancel()
        self._intervals[name] = self._loop.create_task(self._repeat(name, seconds, job))

    async def _repeat(self, name: str, seconds: float, job: Job) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = job()
                if result is not None:
                    await result
            except Exception:
                log.exception("job failed name=%s", name)

    def cancel(self, name: str) -> None:
        """Remove job ``name`` if it is scheduled."""
        interval = self._intervals.pop(name, None)
        if interval is not None:
            interval.cancel()
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
