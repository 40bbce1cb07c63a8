"""``signage demo``: the whole product on one machine.

A hub on 127.0.0.1 with a temporary data dir, a demo publisher key (made now, thrown away
after), one board in a window (or headless), the shipped Vietnamese sample programme pushed to
it, then an emergency alert that expires while you watch. The status page's address is printed.
Everything runs through the real commands and protocol: the board is ``signage play`` in its
own process, dialling the hub with its token and checking every signature itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from signage.errors import ErrorCode, HubError, SignageError
from signage.hub.client import PublisherClient
from signage.hub.publish import alert_document, build_bundle, write_keypair
from signage.hub.server import Hub, HubConfig
from signage.layout import LayoutLibrary
from signage.model import board_timezone
from signage.protocol import PrivateKey
from signage.resources import data_dir

BOARD_ID = "demo-xa-sa-thay"
BOARD_NAME = "UBND xã Sa Thầy"
AREA = "62/23456"
PUBLISHER = "demo-tinh-62"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How to run the demo. ``exit_after`` None runs until the window is closed or Ctrl-C."""

    headless: bool = False
    fullscreen: bool = False
    exit_after: float | None = None
    screenshot: Path | None = None
    port: int = 8765
    keep: bool = False
    size: str = "1280x720"


@dataclass(frozen=True, slots=True)
class Timeline:
    """Seconds between the demo's steps."""

    programme_s: float  # the programme plays alone this long before the alert
    alert_s: float  # the alert stays in force this long
    after_s: float  # the programme again, after the alert expired

    @classmethod
    def for_options(cls, options: DemoOptions) -> Timeline:
        """Return a short timeline for headless runs and a comfortable one to watch."""
        if options.headless:
            return cls(programme_s=8.0, alert_s=12.0, after_s=4.0)
        return cls(programme_s=30.0, alert_s=45.0, after_s=10.0)


def has_display() -> bool:
    """Return True when a window can be opened (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo; return 0 when every step worked. Raises SignageError when a step fails."""
    root = Path(tempfile.mkdtemp(prefix="signage-demo-"))
    try:
        return asyncio.run(_Demo(options, root, out).run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nsignage demo: stopped", file=out)
        return 0
    finally:
        if options.keep:
            print(f"signage demo: kept its files in {root}", file=out)
        else:
            shutil.rmtree(root, ignore_errors=True)


class _Demo:
    def __init__(self, options: DemoOptions, root: Path, out: TextIO) -> None:
        self.options = options
        self.root = root
        self.out = out
        self.timeline = Timeline.for_options(options)
        self.tz = board_timezone(None)
        self.board: subprocess.Popen[bytes] | None = None
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", file=self.out, flush=True)

    async def run(self) -> int:
        task = asyncio.current_task()
        if task is not None:  # `kill` stops the demo as Ctrl-C does: board and hub included
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        key = PrivateKey.generate(PUBLISHER, "62")
        write_keypair(key, self.root / "keys")
        hub = Hub(
            HubConfig(
                host="127.0.0.1",
                port=_free_port(self.options.port),
                data_dir=self.root / "hub",
                heartbeat_s=5,
                screenshot_every_s=15,
            )
        )
        now = time.time()
        operator = hub.registry.add_operator("demo", now)
        publisher_token = hub.registry.add_publisher(key.public(), "62", now)
        board_token = hub.registry.add_board(BOARD_ID, BOARD_NAME, AREA, now)
        await hub.start()
        try:
            return await self._steps(hub, key, operator, publisher_token, board_token)
        except _TimeUp:
            self.say("--exit-after reached: stopping")
            return 0
        except _BoardGone:
            assert self.board is not None
            if self.board.returncode == 0:
                self.say("the board was closed: stopping")
                return 0
            self.say(f"the board stopped with code {self.board.returncode}:\n{self._board_log()}")
            return 1
        finally:
            self._stop_board()
            await hub.stop()

    async def _steps(
        self, hub: Hub, key: PrivateKey, operator: str, publisher_token: str, board_token: str
    ) -> int:
        page = f"http://127.0.0.1:{hub.port}/login?token={operator}"
        self.say(f"hub on {hub.url} (data in {self.root / 'hub'})")
        self.say(f"status page: {page}")
        self._start_board(hub.port, board_token)
        await self._wait_online(hub)
        async with PublisherClient(hub.url, publisher_token) as client:
            await self._push_programme(client, key)
            await self._pause(self.timeline.programme_s)
            await self._shoot(hub, "")
            expires = await self._send_alert(client, key)
        await self._pause(3.0)
        await self._shoot(hub, "-alert")
        await self._pause(max(0.0, expires - time.time()) + 1.0)
        self.say("the alert expired: the board went back to its programme by itself")
        await self._pause(self.timeline.after_s)
        await self._shoot(hub, "-after")
        self._summary(hub)
        self.say(f"status page: {page}")
        if self.options.exit_after is None:
            self.say("the board keeps playing: close its window or press Ctrl-C to stop")
            await self._until_board_exits()
        else:
            await self._pause(float("inf"))
        return 0

    # -- steps ----------------------------------------------------------------------------------

    def _start_board(self, port: int, token: str) -> None:
        (self.root / "board").mkdir()
        token_file = self.root / "board" / "token"
        token_file.write_text(token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        size = "auto" if self.options.fullscreen else self.options.size
        config = self.root / "board" / "board.toml"
        config.write_text(
            "\n".join(
                [
                    "[board]",
                    f'id = "{BOARD_ID}"',
                    f'name = "{BOARD_NAME}"',
                    f'area = "{AREA}"',
                    "[display]",
                    f'size = "{size}"',
                    f"fullscreen = {'true' if self.options.fullscreen else 'false'}",
                    'transition = "fade"',
                    "[data]",
                    f'dir = "{self.root / "board" / "data"}"',
                    "[hub]",
                    f'url = "ws://127.0.0.1:{port}/board"',
                    f'token_file = "{token_file}"',
                    f'trusted_keys = ["{self.root / "keys" / f"{PUBLISHER}.pub"}"]',
                    "",
                ]
            ),
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "signage", "play", "--config", str(config)]
        if self.options.headless:
            command.append("--headless")
        elif not self.options.fullscreen:
            command.append("--windowed")
        if self.options.exit_after is not None:
            # A safety net: the board ends by itself even if this process is killed.
            command += ["--exit-after", str(self.options.exit_after + 30)]
        log = open(self.root / "board" / "board.log", "wb")  # noqa: SIM115 - the child keeps it
        env = {**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1", "SDL_AUDIODRIVER": "dummy"}
        self.board = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        mode = "headless" if self.options.headless else "in a window"
        self.say(f"board {BOARD_ID} ({BOARD_NAME}, area {AREA}) starting {mode}")

    async def _wait_online(self, hub: Hub) -> None:
        deadline = time.monotonic() + 60
        while not (BOARD_ID in hub.channels and hub.channels[BOARD_ID].ready.is_set()):
            if self.board is not None and self.board.poll() is not None:
                raise HubError(
                    ErrorCode.LINK_FAILED, f"the board stopped at start:\n{self._board_log()}"
                )
            if time.monotonic() > deadline:
                raise HubError(
                    ErrorCode.LINK_FAILED,
                    f"the board did not connect within 60 s:\n{self._board_log()}",
                )
            await asyncio.sleep(0.1)
        self.say("board connected to the hub")

    async def _push_programme(self, client: PublisherClient, key: PrivateKey) -> None:
        publish = self.root / "publish"
        built = build_bundle(
            data_dir("examples") / "xa-sa-thay",
            publish / "bundle.json",
            publisher=key.key_id,
            version=int(time.time() * 1000),
            area=AREA,
            issued=datetime.now(self.tz),
            library=LayoutLibrary.load(data_dir("layouts")),
            tz=self.tz,
        )
        envelope = key.sign(built.path.read_bytes())
        self.say(
            f"pushing the sample programme: {built.items} items (notices, news with a photo,"
            f" slogan, clock) and a ticker, {built.assets} photo"
        )
        result = await client.push_bundle(envelope, publish / "assets", wait_s=60)
        self._outcomes(result)

    async def _send_alert(self, client: PublisherClient, key: PrivateKey) -> float:
        sent = datetime.now(self.tz).replace(microsecond=0)
        expires = sent + timedelta(seconds=self.timeline.alert_s)
        document = alert_document(
            publisher=key.key_id,
            seq=int(time.time() * 1000),
            identifier=f"demo-bao-{int(time.time())}",
            headline="Cảnh báo bão số 9: gió mạnh cấp 10, giật cấp 12",
            description=(
                "Bão số 9 đang tiến vào đất liền, dự kiến ảnh hưởng trực tiếp đến xã Sa Thầy"
                " từ chiều nay. Mưa to đến rất to, nguy cơ lũ quét và sạt lở đất."
            ),
            instruction=(
                "Không ra sông, suối; gia cố nhà cửa; di chuyển người và tài sản khỏi vùng"
                " nguy hiểm theo hướng dẫn của chính quyền."
            ),
            severity="Extreme",
            sent=sent,
            expires=expires,
            area=AREA,
            area_desc="Xã Sa Thầy",
        )
        self.say(f"sending an emergency alert that expires at {expires:%H:%M:%S}")
        result = await client.publish("alert", key.sign(document), wait_s=30)
        self._outcomes(result)
        return expires.timestamp()

    async def _shoot(self, hub: Hub, suffix: str) -> None:
        target = self.options.screenshot
        if target is None:
            return
        path = target.with_name(f"{target.stem}{suffix}{target.suffix or '.png'}")
        try:
            png = await hub.screenshot(BOARD_ID)
        except SignageError as exc:
            self.say(f"screenshot failed: {exc}")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        self.say(f"screenshot of the board: {path}")

    def _outcomes(self, result: object) -> None:
        boards = result.get("boards", []) if isinstance(result, dict) else []
        for entry in boards:
            error = entry.get("error") or {}
            reason = f" ({error.get('code')}: {error.get('message')})" if error else ""
            self.say(f"  {entry['board']}: {entry['outcome']}{reason}")
            if entry["outcome"] == "refused":
                raise HubError(ErrorCode.COMMAND_FAILED, f"the board refused: {reason}")

    def _summary(self, hub: Hub) -> None:
        plays = hub.counters.get("report_entries", 0)
        self.say(
            f"hub figures: {hub.counters.get('heartbeats', 0)} heartbeats,"
            f" {plays} report entries, {hub.counters.get('acks_ok', 0)} documents applied"
        )

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, but never past ``exit_after``; stop when the board process ends."""
        end = time.monotonic() + seconds
        if self.options.exit_after is not None:
            end = min(end, self.started + self.options.exit_after)
        while time.monotonic() < end:
            if self.board is not None and self.board.poll() is not None:
                raise _BoardGone
            await asyncio.sleep(min(0.2, end - time.monotonic()))
        if self.options.exit_after is not None and time.monotonic() >= (
            self.started + self.options.exit_after
        ):
            raise _TimeUp

    async def _until_board_exits(self) -> None:
        while self.board is not None and self.board.poll() is None:
            await asyncio.sleep(0.2)

    def _stop_board(self) -> None:
        if self.board is None or self.board.poll() is not None:
            return
        self.board.send_signal(signal.SIGTERM)
        try:
            self.board.wait(15)
        except subprocess.TimeoutExpired:
            self.board.kill()
            self.board.wait()

    def _board_log(self) -> str:
        with contextlib.suppress(OSError):
            lines = (self.root / "board" / "board.log").read_text(errors="replace").splitlines()
            return "\n".join(lines[-20:])
        return "(no board log)"


class _BoardGone(Exception):  # noqa: N818 - a signal between the demo's steps, not an error
    """The board process ended (its window was closed)."""


class _TimeUp(Exception):  # noqa: N818
    """``--exit-after`` was reached."""


def _free_port(preferred: int) -> int:
    """Return ``preferred`` when it is free on 127.0.0.1, else a free port the kernel picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise HubError(ErrorCode.LINK_FAILED, "no free port on 127.0.0.1")
