"""``signage demo`` as a new user runs it where there is no display: a real hub, a real board
process, the sample programme, an alert that expires, and the board's screen saved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image


def _red_share(path: Path) -> float:
    with Image.open(path) as image:
        small = image.convert("RGB").resize((64, 36))
        raw = small.tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    red = sum(1 for r, g, b in pixels if r > 150 and g < 60 and b < 80)
    return red / len(pixels)


def test_demo_runs_headless_and_shows_programme_then_alert_then_programme(
    tmp_path: Path,
) -> None:
    shot = tmp_path / "demo.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "signage",
            "demo",
            "--port",
            "0",
            "--screenshot",
            str(shot),
            "--exit-after",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**env, "SDL_AUDIODRIVER": "dummy"},
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "no display here" in output  # it chose headless by itself
    assert output.count(": applied") == 2, output  # the programme and the alert
    assert "status page: http://127.0.0.1:" in output
    programme, alert, after = (tmp_path / f"demo{s}.png" for s in ("", "-alert", "-after"))
    for png in (programme, alert, after):
        with Image.open(png) as image:
            assert image.size == (1280, 720)
    # The emergency template is a red screen; the programme's slides are not.
    assert _red_share(alert) > 0.5
    assert _red_share(programme) < 0.3
    assert _red_share(after) < 0.3
