"""`signage play` with a hub, end to end: a headless player dials a hub on 127.0.0.1, receives a
signed bundle with images, shows it, refuses a forged one while its screen keeps the content,
shows a signed alert at once, and after a restart with the hub gone plays the stored content."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signage.hub.channel import BoardChannel
from signage.protocol import PrivateKey
from tests.board.linkkit import TOKEN, FakeCatalog, TestHub, signed_example, signed_text_bundle


class HubThread:
    """A TestHub on its own event loop in a thread, driven from the test."""

    def __init__(self, catalog: FakeCatalog) -> None:
        self.hub = TestHub(catalog)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.done: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self.done = asyncio.Event()
        async with self.hub.running():
            self.ready.set()
            await self.done.wait()

    def call(self, coro: Any, timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def channel(self) -> BoardChannel:
        return self.hub.latest()

    def stop(self) -> None:
        assert self.done is not None
        self.loop.call_soon_threadsafe(self.done.set)
        self.thread.join(10)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubThread]:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    thread = HubThread(catalog)
    thread.thread.start()
    assert thread.ready.wait(10)
    yield thread
    thread.stop()


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _player(config: Path, shots: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signage",
            "play",
            "--config",
            str(config),
            "--headless",
            "--size",
            "640x360",
            "--exit-after",
            "90",
            "--screenshot-dir",
            str(shots),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _shots(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []


def test_player_applies_signed_content_from_a_hub_and_keeps_it_offline(
    tmp_path: Path, hub: HubThread
) -> None:
    key = PrivateKey.generate("tinh-62", "62")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "tinh-62.pub").write_text(key.public().to_json())
    (tmp_path / "token").write_text(TOKEN + "\n")
    hub.hub.catalog.put(signed_example(key, tmp_path / "hub", 100))
    config = tmp_path / "board.toml"
    config.write_text(
        '[board]\nid = "xa-sa-thay-01"\narea = "62/23456"\n'
        f'[data]\ndir = "{tmp_path / "data"}"\n'
        f'[hub]\nurl = "{hub.hub.url}"\ntoken_file = "token"\n'
        'trusted_keys = ["keys/tinh-62.pub"]\n'
        '[display]\ntransition = "cut"\n',
        encoding="utf-8",
    )
    shots = tmp_path / "shots"
    process = _player(config, shots)
    try:
        _wait(lambda: any("tinh-62_" in name for name in _shots(shots)), 40, "hub content shown")
        channel = hub.channel()
        _wait(
            lambda: any(h["content"]["versions"] for h in channel.stats.heartbeats),
            20,
            "a heartbeat after the apply",
        )
        status = channel.stats.heartbeats[-1]
        assert status["content"]["versions"] == {"tinh-62": 100}
        assert status["display"]["width"] == 640 and status["display"]["on"] is True
        assert "temperature_c" in status["system"]

        forger = PrivateKey.generate("tinh-62", "62")
        forged = json.loads(signed_text_bundle(forger, 900, "Nội dung giả mạo"))
        ack = hub.call(channel.push("bundle", {"signed": forged}))
        assert not ack.ok and ack.error["code"] == "signature.invalid"
        # The board hangs up to have the damaged document sent again, and dials back.
        _wait(lambda: hub.channel() is not channel, 20, "the board dialling again")
        channel = hub.channel()
        _wait(channel.ready.is_set, 20, "the new session")

        alert = {
            "alert": 1,
            "publisher": "tinh-62",
            "seq": 1,
            "identifier": "bao-9",
            "sent": "2026-11-26T17:00:00+07:00",
            "status": "Actual",
            "msgType": "Alert",
            "urgency": "Immediate",
            "severity": "Extreme",
            "certainty": "Observed",
            "expires": "2099-01-01T00:00:00+07:00",
            "headline": "BÃO SỐ 9 ĐỔ BỘ",
            "description": "Người dân ở trong nhà, không ra biển.",
            "area": "62",
        }
        signed = json.loads(key.sign(json.dumps(alert, ensure_ascii=False).encode()))
        assert hub.call(channel.push("alert", {"signed": signed})).ok
        _wait(lambda: any("alert_bao-9" in n for n in _shots(shots)), 20, "the alert on screen")
        shown = _shots(shots)
        assert not any("gi" in n and "m" in n and "900" in n for n in shown)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output

    # The hub goes away; the board starts again and plays what it stored, alert included.
    hub.stop()
    shots2 = tmp_path / "shots2"
    process = _player(config, shots2)
    try:
        _wait(lambda: any("alert_bao-9" in n for n in _shots(shots2)), 40, "stored alert shown")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Traceback" not in output
