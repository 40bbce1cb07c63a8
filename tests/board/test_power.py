"""The power schedule blanks and wakes the screen and runs the configured commands."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from signage.board.agent import Conductor
from signage.board.config import parse_config
from signage.board.display import Blank, Message
from signage.compose import Composer
from signage.layout import Size
from signage.store import PlayLog

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class _Screen:
    """Stands in for the display: records what the conductor posts."""

    def __init__(self) -> None:
        self.posted: list[Message] = []

    def post(self, message: Message) -> None:
        self.posted.append(message)


def _span(start: datetime, hours: int) -> str:
    end = start + timedelta(hours=hours)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.parametrize("on_now", [True, False])
def test_power_schedule_blanks_and_runs_commands(
    composer: Composer, tmp_path: Path, on_now: bool
) -> None:
    now = datetime.now(TZ)
    start = now - timedelta(minutes=30) if on_now else now + timedelta(hours=2)
    if not on_now and start.date() != now.date():
        start = now + timedelta(minutes=5)  # stay clear of midnight wrap-arounds
    span = _span(start, 1)
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    marker = tmp_path / ("on" if on_now else "off")
    config = parse_config(
        {
            "power": {
                **{day: span for day in days},
                "command_on": ["touch", str(tmp_path / "on")],
                "command_off": ["touch", str(tmp_path / "off")],
            },
            "data": {"dir": str(tmp_path / "data")},
        }
    )
    loop = asyncio.new_event_loop()
    screen = _Screen()
    playlog = PlayLog(tmp_path / "plays.sqlite", TZ)
    conductor = Conductor(
        config,
        composer,
        screen,
        playlog,
        None,
        loop,
        Size(320, 180),  # type: ignore[arg-type]
    )
    try:
        conductor._power()
        assert screen.posted == [Blank(not on_now)]
        deadline = time.monotonic() + 5
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the power command did not run"
        job = conductor.jobs._scheduler.get_job("power")
        assert job is not None  # the next change is scheduled, not polled
    finally:
        conductor.pool.shutdown()
        playlog.close()
        loop.close()
