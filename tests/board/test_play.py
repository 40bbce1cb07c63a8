"""`signage play` end to end, headless: folder mode, an invalid change refused, an emergency
taking over and handing back, screenshots and the play log."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _shots(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []


def test_play_folder_emergency_and_back(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(EXAMPLES / "xa-sa-thay", content)
    shots, data = tmp_path / "shots", tmp_path / "data"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signage",
            "play",
            "--content",
            str(content),
            "--headless",
            "--size",
            "640x360",
            "--exit-after",
            "60",
            "--screenshot-dir",
            str(shots),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(lambda: _shots(shots), 20, "the first slide")
        # A half-written, invalid programme is refused and the old one keeps playing.
        (content / "items.json").write_text('[{"id": "x", "template": "announ', encoding="utf-8")
        time.sleep(5)
        before = len(_shots(shots))
        # The province sends a storm warning: it takes over.
        shutil.copy(EXAMPLES / "canh-bao-bao" / "items.json", content / "items.json")
        _wait_for(lambda: any("canh-bao" in s for s in _shots(shots)), 15, "the emergency")
        # The warning is withdrawn: the programme resumes.
        shutil.copy(EXAMPLES / "xa-sa-thay" / "items.json", content / "items.json")
        _wait_for(
            lambda: "canh-bao" not in _shots(shots)[-1], 15, "the programme after the emergency"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "folder change refused" in output
    names = _shots(shots)
    assert before >= 1 and len(names) >= 3
    emergency = next(shots / n for n in names if "canh-bao" in n)
    red = Image.open(emergency).convert("RGB").getpixel((320, 200))
    assert red[0] > 150 and red[1] < 60  # the Extreme theme fills the screen red
    rows = (
        sqlite3.connect(data / "plays.sqlite")
        .execute("SELECT item_id, reason, seconds FROM plays ORDER BY id")
        .fetchall()
    )
    reasons = [r[1] for r in rows]
    assert "emergency" in reasons and reasons[-1] == "scheduled"
    assert all(r[2] is not None and r[2] >= 0 for r in rows), rows  # SIGTERM closed the last row
    assert json.loads((content / "items.json").read_text(encoding="utf-8"))


def test_play_without_content_shows_the_idle_clock(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "signage",
            "play",
            "--headless",
            "--size",
            "320x160",
            "--exit-after",
            "3",
            "--screenshot-dir",
            str(shots),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _shots(shots) == ["0001-idle.png"]
    image = Image.open(shots / "0001-idle.png").convert("RGB")
    assert image.size == (320, 160)
    pixels = [image.getpixel((x, y)) for x in range(0, 320, 2) for y in range(0, 160, 2)]
    yellow = [p for p in pixels if p[0] > 200 and p[1] > 150 and p[2] < 100]
    assert len(yellow) > 100  # the clock's yellow digits, never a black screen
