"""Clock faults, end to end: the real player (headless) with a wall clock the test moves
(tests/system/fakeclock.py) and its play log read afterwards.

- booting at 1970 (no clock battery, no network yet), then an NTP step to the real time;
- a jump of a day forward, and of a day back;
- weekly windows across midnight.

The four players run at the same time (about 20 s in all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from signage.store import PlayLog
from tests.conftest import REPO

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SHIM = REPO / "tests" / "system" / "fakeclock.py"
REAL_NOW = datetime.now(TZ).replace(microsecond=0)
DAY = 86_400.0


def _item(ident: str, **extra: Any) -> dict[str, Any]:
    body = {"body": f"Tin {ident}: kiểm tra đồng hồ của bảng tin."}
    return {"id": ident, "template": "text-only", "duration_s": 2, "fields": body, **extra}


@dataclass
class Player:
    """One headless player under a fake wall clock."""

    name: str
    root: Path
    process: subprocess.Popen[bytes] | None = None
    marks: dict[str, float] | None = None  # what the test did when (real Unix time)

    @property
    def offset_file(self) -> Path:
        return self.root / "offset"

    def set_offset(self, seconds: float) -> None:
        scratch = self.offset_file.with_suffix(".tmp")
        scratch.write_text(f"{seconds}\n")
        scratch.replace(self.offset_file)

    def start(self, items: list[dict[str, Any]], offset: float, seconds: float) -> None:
        content = self.root / "content"
        content.mkdir(parents=True)
        (content / "items.json").write_text(json.dumps(items, ensure_ascii=False))
        self.set_offset(offset)
        command = [
            sys.executable, str(SHIM), str(self.offset_file), "--", "play", "--content",
            str(content), "--headless", "--size", "320x180", "--exit-after", str(seconds),
            "--data-dir", str(self.root / "data"),
        ]  # fmt: skip
        env = {**os.environ, "SDL_AUDIODRIVER": "dummy", "PYTHONPATH": str(REPO)}
        log = open(self.root / "player.log", "wb")  # noqa: SIM115 - closed by the child's end
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
        )

    def wait(self) -> None:
        assert self.process is not None
        code = self.process.wait(timeout=120)
        assert code == 0, (self.root / "player.log").read_text(errors="replace")[-3000:]

    def plays(self) -> list[tuple[str, float, float, float]]:
        """(item, started, ended, seconds) of every closed play, by the board's clock."""
        journal = PlayLog(self.root / "data" / "plays.sqlite", TZ)
        try:
            return [
                (p.item_id, p.started.timestamp(), p.ended.timestamp(), p.seconds or 0.0)
                for p in journal.plays()
                if p.ended is not None
            ]
        finally:
            journal.close()

    def log(self) -> str:
        return (self.root / "player.log").read_text(errors="replace")


def _local(hour: int, minute: int, second: int) -> float:
    """Return the offset that makes the board's local time read hour:minute:second now."""
    target = datetime.now(TZ).replace(hour=hour, minute=minute, second=second, microsecond=0)
    return target.timestamp() - time.time()


@pytest.fixture(scope="module")
def players(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Player]]:
    root = tmp_path_factory.mktemp("clock")
    recent = (REAL_NOW - timedelta(hours=2)).isoformat()
    soon = (REAL_NOW + timedelta(hours=2)).isoformat()
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    setups = {
        # Booting at 1970: only what has no validity date plays; "moi" became valid 2 h ago.
        "boot1970": ([_item("moi", valid_from=recent), _item("luon")], -(time.time() - 3600)),
        # "hom-nay" is valid for 2 more hours: a day forward, it is over.
        "forward": ([_item("hom-nay", valid_until=soon), _item("luon")], 0.0),
        # "moi" became valid 2 h ago: a day back, it is not valid yet.
        "backward": ([_item("moi", valid_from=recent), _item("luon")], 0.0),
        # 23:59:50 local: "dem" runs 23:00-01:00 across midnight, "toi" ends at midnight.
        "midnight": (
            [
                _item("dem", windows=[{"days": every_day, "from": "23:00", "to": "01:00"}]),
                _item("toi", windows=[{"days": every_day, "from": "22:00", "to": "24:00"}]),
            ],
            _local(23, 59, 50),
        ),
    }
    running = {name: Player(name, root / name, marks={}) for name in setups}
    for name, (items, offset) in setups.items():
        running[name].start(items, offset, seconds=22.0)
    time.sleep(8.0)
    stepped = time.time()
    running["boot1970"].set_offset(0.0)  # NTP arrives
    running["forward"].set_offset(DAY)
    running["backward"].set_offset(-DAY)
    for player in running.values():
        assert player.marks is not None
        player.marks["stepped"] = stepped
    for player in running.values():
        player.wait()
    yield running


def _after(plays: list[tuple[str, float, float, float]], moment: float) -> list[str]:
    """Items started within a minute after ``moment`` (by the board's clock)."""
    return [item for item, started, _, _ in plays if moment < started < moment + 60]


def test_booting_in_1970_then_ntp(players: dict[str, Player]) -> None:
    player = players["boot1970"]
    plays = player.plays()
    before = [item for item, started, _, _ in plays if started < 10 * 365 * DAY]
    after = [item for item, started, _, _ in plays if started > 10 * 365 * DAY]
    # At 1970 the item valid from 2 h ago (in 2026) is not shown; the rest plays.
    assert before and "moi" not in before and "luon" in before
    # NTP steps the clock: within seconds the board plays what is valid now.
    assert "moi" in after
    assert "clock jump" in player.log()
    # Proof of play never counts the 56-year step as seconds on screen.
    assert all(0 <= seconds < 10 for *_, seconds in plays), plays


def test_a_day_forward_ends_what_expired(players: dict[str, Player]) -> None:
    player = players["forward"]
    assert player.marks is not None
    stepped = player.marks["stepped"] + DAY
    plays = player.plays()
    assert "hom-nay" in [item for item, started, _, _ in plays if started < stepped - DAY + 60]
    later = _after(plays, stepped + 3)  # a moment for the replan
    assert later and "hom-nay" not in later
    assert all(0 <= seconds < 10 for *_, seconds in plays), plays


def test_a_day_back_keeps_rotating_and_hides_what_is_not_valid_yet(
    players: dict[str, Player],
) -> None:
    player = players["backward"]
    assert player.marks is not None
    stepped = player.marks["stepped"] - DAY
    plays = player.plays()
    later = _after(plays, stepped + 3)
    # Slides keep changing after the step back (timers set by the wall clock would otherwise
    # wait a whole day), and the item valid only from 2 h ago (real time) is not shown.
    assert len(later) >= 3 and "moi" not in later, plays
    assert all(0 <= seconds < 10 for *_, seconds in plays), plays


def test_windows_across_midnight(players: dict[str, Player]) -> None:
    plays = players["midnight"].plays()
    local = [(item, datetime.fromtimestamp(started, TZ)) for item, started, _, _ in plays]
    before = [item for item, moment in local if moment.hour == 23]
    after = [item for item, moment in local if moment.hour == 0]
    assert "dem" in before and "toi" in before
    assert after and set(after) == {"dem"}, local  # "toi" ends at 24:00, "dem" goes on
