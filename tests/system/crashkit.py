"""Crash consistency end to end: a real hub on 127.0.0.1 and one real board player
(``signage play --headless``) while a publisher pushes bundles with fresh image assets again and
again. The board is SIGKILLed at random moments (seeded) and started again; its data dir is
inspected from outside after every kill, what it says it shows after every restart, and at the
end its play log is compared with what the hub stored.

    .venv/bin/python -m tests.system.crashkit --kills 200 [--seed N] [--keep DIR]

The default test run does 20 kills (tests/system/test_crash.py; SIGNAGE_CRASH_KILLS=N for more).

The hub (signage.hub.server.Hub) and the publisher (PublisherClient.push_bundle) run on an
asyncio loop in a background thread of the test process; the board is ``python -m signage play``
with a board.toml that dials that hub. Every bundle version has three 1 s slides and one or two
new noise PNGs of 0.5-1.5 MB, so assets really travel. Each kill's moment is drawn with the
seeded RNG from MOMENTS: mostly a uniform delay after the run started, sometimes a delay inside
start-up, and sometimes a point of the hub's work (0-30 ms after an asset chunk, or an asset's
last chunk, went out; a report batch stored but its ack not sent; a report batch dropped as if
cut off by the kill), where the hub's thread waits until the board is dead.

Meanwhile a second publisher task sends signed alerts (15-40 s long, of three severities),
Cancels of live ones and blank commands, each followed by unblank at the next turn (again until
the board has it: commands are not queued for a board that is down), and notes which ones the
hub said the board acknowledged.

What is checked, and where:

- after every kill (the board is dead, its files are as the kill left them): the committed
  version (``current.json``) is one that was pushed and never older than before; the committed
  bundle's envelope verifies and every asset it names is in ``store/assets`` with its size and
  sha256; every asset file hashes to its name; every staged envelope verifies; downloads in
  ``store/partial`` are prefixes of their asset; the store's scratch files (``.NAME.PID.part``)
  of earlier runs were swept by the run that opened the store; the play log passes SQLite's
  integrity check, keeps every row it had, and a closed row never changes; every stored alert
  verifies and was sent, every alert the board acknowledged is still stored unless a Cancel of
  it went out or it is about to expire, none whose Cancel it acknowledged is, the last blank or
  unblank it acknowledged is in force, and its last seq never goes back;
- after every restart (the status.json that run wrote, at its start and at the kill): the
  programme it plays is the version committed when it started or a newer one it committed
  since, never older and never one that was not pushed, with all its items;
- in the play log, across all runs (item ids carry their version): the version on screen never
  goes backwards, the idle slide never comes back once content was committed, and every slide
  of a run comes from a version that was committed during that run;
- at the end (the board ran until it held the last version and its outbox was empty, then was
  killed): every closed play is at the hub exactly once, matched by item and start, or still
  waits in the outbox; the hub holds no play the board did not log; once unblanked, the board
  holds exactly the alerts in force at the hub (the catch-up at hello); ``signage diag`` (which
  hashes the stored files itself) finds the content sound.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

from PIL import Image

from signage.errors import ErrorCode, HubError, SignageError
from signage.hub.channel import BoardChannel
from signage.hub.client import PublisherClient
from signage.hub.publish import alert_document, build_bundle, cancel_document, command_document
from signage.hub.server import Hub, HubConfig
from signage.layout import LayoutLibrary
from signage.protocol import Chunk, PrivateKey, Trust, accept_alert, accept_bundle
from signage.resources import data_dir
from signage.store import ContentStore

REPO = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BOARD_ID = "crash-01"
AREA = "62/23456"
PUBLISHER = "tinh-62"
PUBLISHER_AREA = "62"
SIZE = "320x180"
HEX64 = re.compile(r"[0-9a-f]{64}")
SCRATCH = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.part")
SOURCE = re.compile(rf"{PUBLISHER}@(?P<version>\d+)")
ITEM = re.compile(rf"{PUBLISHER}/v(?P<version>\d+)-[a-z]+")
ALERT_ITEM = re.compile(r"alert:(?P<identifier>crash-a\d+)")
# How a kill's moment is chosen: a uniform delay after the run started; a uniform delay from
# the spawn (often inside start-up); a few milliseconds after the hub sent an asset chunk, or
# the last chunk of an asset (the board then writes, checks, moves it and maybe commits); just
# after the hub stored a report batch, before its ack left; as a report batch reached the hub,
# which then drops it.
MOMENTS = ("delay", "start-up", "chunk", "last", "report", "lost")
WEIGHTS = (0.4, 0.15, 0.125, 0.1, 0.1, 0.125)
START_TIMEOUT_S = 90.0  # generous: two cores shared with the hub, the publisher and pytest
FINAL_TIMEOUT_S = 120.0
T = TypeVar("T")


class InvariantError(AssertionError):
    """An invariant did not hold; the message names the seed and the kill."""


# -- the publisher's side ------------------------------------------------------------------------


def noise_png(rng: random.Random, size: int) -> bytes:
    """Return a PNG of random pixels of about ``size`` bytes (noise does not compress)."""
    width = rng.randint(400, 900)
    height = max(16, size // (3 * width))
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Pushed:
    """A bundle version the publisher started to push, and its assets (sha256 -> size)."""

    version: int
    assets: Mapping[str, int]


@dataclass(slots=True)
class Notice:
    """An alert the publisher sent, and what the hub said the board did with it."""

    identifier: str
    seq: int
    expires: float  # Unix seconds
    applied: bool = False  # the board acknowledged it (publish outcome "applied")
    cancel_sent: bool = False  # a Cancel of it went out (whether or not it arrived)
    cancel_applied: bool = False  # the board acknowledged that Cancel


@dataclass(slots=True)
class Switch:
    """A blank or unblank command the publisher sent, and its outcome at the hub."""

    seq: int
    blank: bool
    outcome: str | None = None  # None while the publish is in flight


class Publisher:
    """Builds, signs and pushes bundle after bundle: every version has a new photo, and most
    have a second new image too (the rest reuse the previous one, which the board already has).
    """

    def __init__(self, root: Path, key: PrivateKey, seed: int) -> None:
        self.root = root
        self.key = key
        self.rng = random.Random(f"{seed}:publisher")
        self.library = LayoutLibrary.load(data_dir("layouts"))
        self.bundles = root / "bundles"
        self.assets = self.bundles / "assets"  # where build_bundle puts them
        self.lock = threading.Lock()
        self.pushed: dict[int, Pushed] = {}
        self.published = 0  # pushes the hub acknowledged
        self.asset_bytes = 0
        self._second: bytes | None = None
        self.seq = 0  # alerts and commands share it
        self.notices: dict[str, Notice] = {}
        self.switches: list[Switch] = []
        self.unblank_due = False
        self.emergency_rng = random.Random(f"{seed}:emergency")

    def versions(self) -> set[int]:
        """Return every version pushed so far (from the moment its push began)."""
        with self.lock:
            return set(self.pushed)

    def asset(self, sha256: str) -> bytes | None:
        """Return the bytes of a pushed asset, or None when no bundle had it."""
        path = self.assets / sha256
        return path.read_bytes() if HEX64.fullmatch(sha256) and path.is_file() else None

    def make(self, version: int) -> tuple[bytes, Pushed]:
        """Return the signed envelope of ``version`` and what it holds."""
        folder = self.root / "content" / f"v{version}"
        folder.mkdir(parents=True)
        photo = noise_png(self.rng, self.rng.randint(500_000, 1_500_000))
        if self._second is None or self.rng.random() < 0.7:
            self._second = noise_png(self.rng, self.rng.randint(500_000, 1_000_000))
        (folder / "anh.png").write_bytes(photo)
        (folder / "tin.png").write_bytes(self._second)
        items = [
            {"id": f"v{version}-anh", "template": "fullscreen-image", "duration_s": 1,
             "fields": {"image": "anh.png"}},
            {"id": f"v{version}-tin", "template": "news-photo", "duration_s": 1, "fields": {
                "title": f"Bản tin số {version}", "image": "tin.png",
                "caption": "Toàn xã gieo cấy 420 héc-ta lúa nước.",
            }},
            {"id": f"v{version}-tb", "template": "announcement", "duration_s": 1, "fields": {
                "title": f"Thông báo số {version}",
                "body": "Trạm Y tế xã tổ chức tiêm chủng cho trẻ dưới 5 tuổi vào sáng thứ Bảy.",
            }},
        ]  # fmt: skip
        (folder / "items.json").write_text(json.dumps(items, ensure_ascii=False), "utf-8")
        built = self.bundles / f"bundle-{version}.json"
        build_bundle(
            folder,
            built,
            publisher=PUBLISHER,
            version=version,
            area=AREA,
            issued=datetime.now(TZ),
            library=self.library,
            tz=TZ,
        )
        shutil.rmtree(folder)
        raw = built.read_bytes()
        manifest = json.loads(raw)["assets"]
        assets = {entry["sha256"]: entry["size"] for entry in manifest.values()}
        self.asset_bytes += sum(assets.values())
        return self.key.sign(raw), Pushed(version, assets)

    async def run(self, url: str, token: str, stop: asyncio.Event, pace_s: float) -> None:
        """Push versions 1, 2, 3 ... through the hub at ``url``, waiting about ``pace_s``
        between them, until ``stop`` is set. Raises SignageError when the hub refuses one."""
        loop = asyncio.get_running_loop()
        version = 0
        async with PublisherClient(url, token) as client:
            while not stop.is_set():
                version += 1
                envelope, pushed = await loop.run_in_executor(None, self.make, version)
                with self.lock:
                    self.pushed[version] = pushed
                await client.push_bundle(envelope, self.assets, wait_s=0)
                self.published += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.rng.uniform(0.3, 1.7) * pace_s)

    async def run_emergency(self, url: str, token: str, stop: asyncio.Event, pace_s: float) -> None:
        """Meanwhile, send signed alerts (15-40 s long), Cancels of live ones, and blank or
        unblank commands, one every 1.5-4 ``pace_s``, each waiting up to 3 s for the board's
        answer, until ``stop`` is set. Raises SignageError when the hub refuses one."""
        rng = self.emergency_rng
        async with PublisherClient(url, token) as client:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), rng.uniform(1.5, 4.0) * pace_s)
                if stop.is_set():
                    break
                now = time.time()
                with self.lock:
                    live = [
                        n for n in self.notices.values() if not n.cancel_sent and n.expires > now
                    ]
                action = rng.choices(("alert", "cancel", "blank"), (0.5, 0.3, 0.2))[0]
                if self.unblank_due:
                    # A blank went out: unblank at the next turn, and again until the board
                    # has it (commands are not queued while it is down), so that the screen
                    # is dark for a few seconds at a time, not for the rest of the run.
                    if await self.switch(client, False) == "applied":
                        self.unblank_due = False
                elif action == "cancel" and live:
                    await self._cancel(client, rng.choice(live))
                elif action == "blank":
                    self.unblank_due = True
                    await self.switch(client, True)
                else:
                    await self._alert(client, rng)

    def _next_seq(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    async def _alert(self, client: PublisherClient, rng: random.Random) -> None:
        seq = self._next_seq()
        sent = datetime.now(TZ).replace(microsecond=0)
        expires = sent + timedelta(seconds=rng.randint(15, 40))
        notice = Notice(f"crash-a{seq}", seq, expires.timestamp())
        document = alert_document(
            publisher=PUBLISHER, seq=seq, identifier=notice.identifier,
            headline=f"Cảnh báo thử số {seq}", description="Nước lũ dâng nhanh ở bản Đăk Xú.",
            severity=rng.choice(("Extreme", "Severe", "Moderate")), expires=expires, sent=sent,
            area=AREA,
        )  # fmt: skip
        with self.lock:
            self.notices[notice.identifier] = notice
        result = await client.publish("alert", self.key.sign(document), wait_s=3)
        with self.lock:
            notice.applied = _outcome(result) == "applied"

    async def _cancel(self, client: PublisherClient, notice: Notice) -> None:
        seq = self._next_seq()
        document = cancel_document(
            publisher=PUBLISHER, seq=seq, identifier=f"crash-c{seq}",
            references=[notice.identifier], sent=datetime.now(TZ).replace(microsecond=0),
            area=AREA,
        )  # fmt: skip
        with self.lock:
            notice.cancel_sent = True
        result = await client.publish("alert", self.key.sign(document), wait_s=3)
        with self.lock:
            notice.cancel_applied = _outcome(result) == "applied"

    async def switch(self, client: PublisherClient, blank: bool) -> str:
        """Send blank (or unblank); return the outcome for the board."""
        seq = self._next_seq()
        document = command_document(
            publisher=PUBLISHER, seq=seq, name="blank" if blank else "unblank", area=AREA,
            issued=datetime.now(TZ),
        )  # fmt: skip
        switch = Switch(seq, blank)
        with self.lock:
            self.switches.append(switch)
        result = await client.publish("command", self.key.sign(document), wait_s=3)
        outcome = _outcome(result)
        with self.lock:
            switch.outcome = outcome
        return outcome


def _outcome(result: Mapping[str, Any]) -> str:
    (row,) = [row for row in result["boards"] if row["board"] == BOARD_ID]
    return str(row["outcome"])


class Trap:
    """A moment in the hub's work at which the board is to be killed: ``chunk`` (an asset chunk
    just went out), ``report`` (a report batch was stored, its ack not sent yet) or ``lost`` (a
    report batch arrived; the hub then drops it, as if the kill had cut it off on the way). The
    hub's thread waits in :meth:`spring` until the test has killed the board, so the moment is
    exact."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kind: str | None = None
        self.skip = 0
        self.sprung = threading.Event()
        self.release = threading.Event()

    def arm(self, kind: str, skip: int) -> None:
        """Spring at the ``skip``-th next moment of ``kind`` (0: the next one)."""
        with self.lock:
            self.sprung.clear()
            self.release.clear()
            self.kind, self.skip = kind, skip

    def disarm(self) -> None:
        """Let the hub go on (the board is dead, or the trap was not needed)."""
        with self.lock:
            self.kind = None
        self.release.set()

    def spring(self, kind: str) -> bool:
        """Called on the hub's thread at a moment of ``kind``; return True when the board was
        killed there."""
        with self.lock:
            if self.kind != kind:
                return False
            if self.skip > 0:
                self.skip -= 1
                return False
            self.kind = None
        self.sprung.set()
        self.release.wait(10)
        return True


class HubThread:
    """A real Hub on 127.0.0.1 (port chosen by the system) and the publisher, on an asyncio
    loop in a background thread; the board process dials in."""

    def __init__(self, root: Path, seed: int, pace_s: float) -> None:
        self.root = root
        self.seed = seed
        self.pace_s = pace_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="crash-hub", daemon=True)
        self.hub: Hub | None = None
        self.key = PrivateKey.generate(PUBLISHER, PUBLISHER_AREA)
        self.publisher = Publisher(root / "publisher", self.key, seed)
        self.board_token = ""
        self.publisher_token = ""
        self._stop = asyncio.Event()
        self._pushing: concurrent.futures.Future[None] | None = None
        self._emergency: concurrent.futures.Future[None] | None = None
        self.trap = Trap()
        self._send_chunk: Any = None

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``work`` on the hub's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def start(self) -> None:
        """Start the loop and the hub, register the board and the publisher, and set the
        trap's hooks (undone by :meth:`close`)."""
        self.thread.start()
        self.call(self._start())
        assert self.hub is not None
        registry, trap = self.hub.registry, self.trap
        add_reports = registry.add_reports

        def stored(board: str, entries: Any, now: float) -> int:
            if trap.spring("lost"):
                raise HubError(ErrorCode.LINK_FAILED, "lost on the way (the board was killed)")
            added = add_reports(board, entries, now)
            trap.spring("report")  # stored; the ack goes out when this returns
            return added

        registry.add_reports = stored  # type: ignore[method-assign, assignment]
        self._send_chunk = send_chunk = BoardChannel.send_chunk

        async def sent(channel: BoardChannel, chunk: Chunk) -> None:
            await send_chunk(channel, chunk)
            if not trap.spring("chunk") and chunk.offset + len(chunk.data) == chunk.total:
                trap.spring("last")

        BoardChannel.send_chunk = sent  # type: ignore[method-assign, assignment]

    async def _start(self) -> None:
        config = HubConfig(
            host="127.0.0.1",
            port=0,
            data_dir=self.root / "hub",
            heartbeat_s=5,
            screenshot_every_s=0,
        )
        self.hub = Hub(config)
        now = time.time()
        self.board_token = self.hub.registry.add_board(BOARD_ID, "Bảng thử sập nguồn", AREA, now)
        self.publisher_token = self.hub.registry.add_publisher(
            self.key.public(), PUBLISHER_AREA, now
        )
        await self.hub.start()

    @property
    def url(self) -> str:
        assert self.hub is not None
        return self.hub.url

    def start_publishing(self) -> None:
        """Start pushing bundles in the background."""
        work = self.publisher.run(self.url, self.publisher_token, self._stop, self.pace_s)
        self._pushing = asyncio.run_coroutine_threadsafe(work, self.loop)
        emergency = self.publisher.run_emergency(
            self.url, self.publisher_token, self._stop, self.pace_s
        )
        self._emergency = asyncio.run_coroutine_threadsafe(emergency, self.loop)

    def check_publishing(self) -> None:
        """Raise what ended the publisher early, if anything did."""
        for work in (self._pushing, self._emergency):
            if work is not None and work.done():
                work.result()
                raise InvariantError("the publisher stopped on its own")

    def stop_publishing(self) -> None:
        """Stop pushing once the push in progress is done."""
        if self._pushing is None:
            return
        self.loop.call_soon_threadsafe(self._stop.set)
        pushing, self._pushing = self._pushing, None
        emergency, self._emergency = self._emergency, None
        pushing.result(FINAL_TIMEOUT_S)
        if emergency is not None:
            emergency.result(FINAL_TIMEOUT_S)

    def unblank(self) -> str:
        """Send unblank now (the board is connected); return the outcome."""

        async def send() -> str:
            async with PublisherClient(self.url, self.publisher_token) as client:
                return await self.publisher.switch(client, False)

        return self.call(send())

    def counters(self) -> dict[str, int]:
        """Return the hub's counters."""
        assert self.hub is not None
        hub = self.hub

        async def read() -> dict[str, int]:
            return dict(hub.counters)

        return self.call(read())

    def close(self) -> None:
        """Stop the publisher, the hub and the loop; undo the hooks."""
        self.trap.disarm()
        if self._send_chunk is not None:
            BoardChannel.send_chunk = self._send_chunk  # type: ignore[method-assign]
            self._send_chunk = None
        with contextlib.suppress(Exception):
            self.stop_publishing()
        if self.hub is not None and self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(self.hub.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


# -- the board -----------------------------------------------------------------------------------


class BoardProcess:
    """The real player in a subprocess, started again and again on the same data dir."""

    def __init__(self, workdir: Path, url: str, token: str, trust_json: str) -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.config = workdir / "board.toml"
        (workdir / "board.token").write_text(token + "\n", encoding="utf-8")
        (workdir / f"{PUBLISHER}.pub").write_text(trust_json, encoding="utf-8")
        self.config.write_text(
            "[board]\n"
            f'id = "{BOARD_ID}"\n'
            f'area = "{AREA}"\n'
            "[display]\n"
            'transition = "fade"\n'
            "transition_ms = 200\n"
            "fps = 30\n"
            "[data]\n"
            f'dir = "{self.data}"\n'
            "cache_mb = 64\n"  # the smallest quota: old assets are evicted as bundles arrive
            "[hub]\n"
            f'url = "{url}/board"\n'
            'token_file = "board.token"\n'
            "report_hold_s = 2\n"  # the hold path, without slowing the final comparison
            f'trusted_keys = ["{PUBLISHER}.pub"]\n'
            "[log]\n"
            'level = "info"\n',
            encoding="utf-8",
        )
        self.output = workdir / "player-output.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned = 0.0  # wall clock, for status.json
        self.runs = 0

    def env(self) -> dict[str, str]:
        """Return the environment the board's processes run in (no systemd, no screen)."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "DISPLAY", "WAYLAND_DISPLAY")
        }
        env.update(
            SDL_AUDIODRIVER="dummy",
            SDL_FRAMEBUFFER_ACCELERATION="0",
            PYGAME_HIDE_SUPPORT_PROMPT="1",
        )
        return env

    def spawn(self) -> None:
        """Start the player."""
        env = self.env()
        command = [
            sys.executable, "-m", "signage", "play", "--config", str(self.config),
            "--headless", "--size", SIZE,
        ]  # fmt: skip
        self.runs += 1
        with open(self.output, "ab") as out:
            out.write(f"\n===== run {self.runs} =====\n".encode())
            out.flush()
            self.spawned = time.time()
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def claimed(self) -> bool:
        """Return True when this run wrote its pid file (it opened its store before that)."""
        try:
            return int((self.data / "player.pid").read_text().strip()) == self.pid
        except (OSError, ValueError):
            return False

    def status(self) -> dict[str, Any] | None:
        """Return the status snapshot this run wrote, or None before its first."""
        try:
            data = json.loads((self.data / "status.json").read_text(encoding="utf-8"))
            written = float(data["written"])
            status = dict(data["status"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if written < self.spawned or not self.claimed():
            return None
        return status

    def exited(self) -> int | None:
        """Return the exit code if the player ended by itself."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL the player and reap it."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        """Return the end of the player's output, for failure messages."""
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# -- reading the board's files from outside --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayRow:
    """One row of the board's play log."""

    row: int
    item: str
    started: float
    ended: float | None
    seconds: float | None
    interrupted: bool


@dataclass(slots=True)
class PlayLogView:
    """The board's play log as SQLite has it on disk."""

    integrity: str
    rows: list[PlayRow]
    pending: list[dict[str, Any]]  # outbox entries of kind play (their data)
    outbox: list[tuple[int, str]]  # every outbox entry: (seq, at as the report says it)


def read_playlog(path: Path) -> PlayLogView:
    """Return the play log in ``path`` of a board that is not running (read-only; empty when
    the file is not there yet)."""
    if not path.exists():
        return PlayLogView("ok", [], [], [])
    try:
        return _read_playlog(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30))
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "unable to open" not in str(exc):
            raise
    # A WAL left by a kill that a read-only connection may not recover: recover it as the
    # board's next start would.
    return _read_playlog(sqlite3.connect(path, timeout=30))


def _read_playlog(db: sqlite3.Connection) -> PlayLogView:
    try:
        integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
        rows = [
            PlayRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
            for r in db.execute(
                "SELECT id, item_id, started, ended, seconds, interrupted FROM plays ORDER BY id"
            )
        ]
        pending = [
            json.loads(r[0]) for r in db.execute("SELECT data FROM outbox WHERE kind = 'play'")
        ]
        outbox = [
            (r[0], datetime.fromtimestamp(r[1], TZ).isoformat())
            for r in db.execute("SELECT seq, at FROM outbox")
        ]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # killed while the schema was being made
            return PlayLogView("ok", [], [], [])
        raise
    finally:
        db.close()
    return PlayLogView(integrity, rows, pending, outbox)


def outbox_count(path: Path) -> int | None:
    """Return how many outbox entries wait for the hub (None when it cannot be read now)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


def hub_reports(registry: Path) -> list[tuple[int, str, str, dict[str, Any]]]:
    """Return the board's reports the hub stored: (seq, at, kind, data)."""
    db = sqlite3.connect(f"file:{registry}?mode=ro", uri=True, timeout=30)
    try:
        return [
            (r[0], r[1], r[2], json.loads(r[3]))
            for r in db.execute(
                "SELECT seq, at, kind, data FROM reports WHERE board = ? ORDER BY seq", (BOARD_ID,)
            )
        ]
    finally:
        db.close()


def source_version(source: object) -> int:
    """Return the version in a programme source (``tinh-62@12``); 0 for no programme."""
    if source == "(none)":
        return 0
    match = SOURCE.fullmatch(str(source))
    if match is None:
        raise InvariantError(f"status names an unknown programme source {source!r}")
    return int(match["version"])


def item_version(item: str) -> int | None:
    """Return the bundle version of a played item id (0 for the idle slide, None for an
    alert)."""
    if item == "idle":
        return 0
    if ALERT_ITEM.fullmatch(item):
        return None
    match = ITEM.fullmatch(item)
    if match is None:
        raise InvariantError(f"the play log names an unknown item {item!r}")
    return int(match["version"])


# -- the run ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class CrashResult:
    """What a crash run did and saw."""

    seed: int
    kills_asked: int
    kills: int = 0
    early_kills: int = 0  # before the run had written its first status (start-up)
    restarts: int = 0
    status_checks: int = 0
    pushed: int = 0
    published: int = 0
    applied: int = 0  # distinct versions the board committed (seen at kills, or reported)
    applied_events: int = 0  # bundle_applied reports at the hub
    last_version: int = 0
    asset_mb_pushed: float = 0.0
    assets_received: int = 0
    plays: int = 0
    interrupted_plays: int = 0
    hub_play_reports: int = 0
    hub_reports: int = 0
    hub_duplicates: int = 0  # report entries the hub received again and skipped
    pending_at_end: int = 0
    kills_mid_download: int = 0  # a download of an asset was in progress
    kills_download_whole: int = 0  # a download had all its bytes, not yet moved into the store
    kills_staged_ahead: int = 0  # a bundle newer than the committed one was staged
    kills_unacked_reports: int = 0  # reports the hub had stored were still in the outbox
    alerts_sent: int = 0
    alerts_applied: int = 0  # acknowledged by the board within 3 s
    cancels_sent: int = 0
    cancels_applied: int = 0
    commands_sent: int = 0  # blank and unblank
    commands_applied: int = 0
    alert_plays: int = 0  # plays of alert slides
    kills_with_alerts: int = 0  # alerts in force in the store at the kill
    kills_blanked: int = 0  # the store said blank at the kill
    partial_files_max: int = 0
    partial_files_end: int = 0
    store_mb_max: float = 0.0
    seconds: float = 0.0
    moments: dict[str, int] = field(default_factory=dict)  # kills by how the moment was chosen
    kill_delays: list[float] = field(default_factory=list)  # from the spawn
    startup_s: list[float] = field(default_factory=list)  # from the spawn to the first status

    def to_json(self) -> dict[str, object]:
        """Return the figures as JSON-ready data."""
        return asdict(self)


def describe(result: CrashResult) -> str:
    """Return the figures as a few lines."""
    delays = sorted(result.kill_delays) or [0.0]
    startups = sorted(result.startup_s) or [0.0]
    moments = ", ".join(f"{n} {kind}" for kind, n in sorted(result.moments.items()))
    return "\n".join(
        [
            f"crash: seed {result.seed}, {result.kills} kills ({result.early_kills} during"
            f" start-up), {result.restarts} restarts, {result.seconds:.1f} s; start-up takes"
            f" {startups[len(startups) // 2]:.2f} s (median), {startups[-1]:.2f} s at most",
            f"  kill moments: {moments}; from the spawn min {delays[0]:.2f} s, median"
            f" {delays[len(delays) // 2]:.2f} s, max {delays[-1]:.2f} s; status checks"
            f" {result.status_checks}",
            f"  bundles: {result.pushed} pushed ({result.asset_mb_pushed:.0f} MB of images),"
            f" {result.applied} committed, {result.applied_events} applied reports at the"
            f" hub; converged on version {result.last_version}",
            f"  plays: {result.plays} logged ({result.interrupted_plays} closed by recovery"
            f" after a kill); hub: {result.hub_play_reports} play reports of"
            f" {result.hub_reports} reports, {result.hub_duplicates} resent entries skipped,"
            f" {result.pending_at_end} still in the outbox at the end",
            f"  kills with a download in progress {result.kills_mid_download} (all bytes in,"
            f" not yet checked: {result.kills_download_whole}), with a newer"
            f" bundle staged {result.kills_staged_ahead}, with reports stored at the hub but not"
            f" yet acknowledged {result.kills_unacked_reports}",
            f"  store: up to {result.store_mb_max:.0f} MB, up to {result.partial_files_max}"
            f" downloads in progress ({result.partial_files_end} at the end)",
            f"  alerts: {result.alerts_sent} sent ({result.alerts_applied} acknowledged within"
            f" 3 s), {result.cancels_sent} cancels ({result.cancels_applied}),"
            f" {result.alert_plays} alert slides played; blank/unblank: {result.commands_sent}"
            f" sent ({result.commands_applied} acknowledged); kills with alerts in force"
            f" {result.kills_with_alerts}, while blanked {result.kills_blanked}",
        ]
    )


class CrashRun:
    """Kills and restarts the board while the publisher pushes, checking after each step."""

    def __init__(
        self,
        workdir: Path,
        kills: int,
        seed: int,
        *,
        pace_s: float = 1.0,
        max_life_s: float = 2.5,
        weights: tuple[float, ...] = WEIGHTS,
        say: Callable[[str], None] = print,
    ) -> None:
        self.workdir = workdir
        self.seed = seed
        self.rng = random.Random(seed)
        self.pace_s = pace_s
        self.max_life_s = max_life_s
        self.weights = weights  # of MOMENTS
        self.say = say
        self.result = CrashResult(seed, kills)
        self.hub = HubThread(workdir, seed, pace_s)
        self.board: BoardProcess | None = None
        self.trust = Trust([self.hub.key.public()])
        self.committed = 0  # what the store held at the last look
        self.seen_committed: set[int] = set()
        self.applied_events: set[int] = set()
        self.closed: dict[int, PlayRow] = {}
        self.known_rows = 0  # the highest play-log row seen at the last kill
        self.top_version = 0  # of the plays so far
        self.verified: set[tuple[str, int, int, int]] = set()
        self.kill_index = 0
        self.seq_seen = 0  # the board's last seq of the publisher at the last look

    # -- running ------------------------------------------------------------------------------

    def run(self) -> CrashResult:
        """Do the kills and the final comparison; return the figures. Raises InvariantError."""
        started = time.monotonic()
        self.say(f"crash: seed {self.seed}, {self.result.kills_asked} kills in {self.workdir}")
        self.hub.start()
        try:
            self.board = BoardProcess(
                self.workdir, self.hub.url, self.hub.board_token, self.hub.key.public().to_json()
            )
            self.hub.start_publishing()
            for index in range(1, self.result.kills_asked + 1):
                self.kill_index = index
                self._one_life()
            self.kill_index = 0
            self._finish()
        finally:
            if self.board is not None:
                self.board.kill()
            self.hub.close()
        self.result.seconds = time.monotonic() - started
        return self.result

    def _one_life(self) -> None:
        board = self.board
        assert board is not None
        before = self.committed
        board.spawn()
        if self.result.kills:
            self.result.restarts += 1
        moment = self.rng.choices(MOMENTS, weights=self.weights)[0]
        spawned = time.monotonic()
        if moment == "start-up":
            # Imports, the play log's recovery, the store's sweep, the first slide, the first
            # connection: a uniform delay over how long start-ups have taken so far.
            self._sleep_alive(self.rng.uniform(0.0, 1.2 * self._startup_s()))
        else:
            self._wait_started()
            self._check_status(before)
            if moment == "delay":
                self._sleep_alive(self.rng.uniform(0.0, self.max_life_s))
            else:
                # At a chosen point of the hub's work, or after a random delay if it does not
                # come in time (no bundle in flight, no report due).
                self.hub.trap.arm(moment, self.rng.randrange(4 if moment == "chunk" else 2))
                lag = self.rng.uniform(0.0, 0.03) if moment in ("chunk", "last") else 0.0
                limit = time.monotonic() + self.rng.uniform(1.0, 2.0) * self.max_life_s
                while not self.hub.trap.sprung.wait(0.02) and time.monotonic() < limit:
                    if board.exited() is not None:
                        self._fail(f"the player exited by itself:\n{board.tail()}")
                if self.hub.trap.sprung.is_set():
                    time.sleep(lag)  # the board goes on with what it has received
                else:
                    moment = "delay"
        written = board.status()
        board.kill()
        self.hub.trap.disarm()
        self.result.kills += 1
        self.result.moments[moment] = self.result.moments.get(moment, 0) + 1
        self.result.kill_delays.append(round(time.monotonic() - spawned, 3))
        if written is None:
            self.result.early_kills += 1
        self._check_after_kill(before, written)
        self.hub.check_publishing()

    def _sleep_alive(self, seconds: float) -> None:
        board = self.board
        assert board is not None
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
            code = board.exited()
            if code is not None:
                self._fail(f"the player exited by itself with {code}:\n{board.tail()}")

    def _startup_s(self) -> float:
        times = sorted(self.result.startup_s)
        return times[len(times) // 2] if times else 1.5

    def _wait_started(self) -> dict[str, Any]:
        board = self.board
        assert board is not None
        spawned = time.monotonic()
        deadline = spawned + START_TIMEOUT_S
        while (status := board.status()) is None:
            code = board.exited()
            if code is not None:
                self._fail(f"the player exited by itself with {code}:\n{board.tail()}")
            if time.monotonic() > deadline:
                self._fail(f"the player did not start in {START_TIMEOUT_S:.0f} s:\n{board.tail()}")
            time.sleep(0.02)
        self.result.startup_s.append(round(time.monotonic() - spawned, 3))
        return status

    # -- checks -------------------------------------------------------------------------------

    def _fail(self, message: str) -> NoReturn:
        where = f"kill {self.kill_index}" if self.kill_index else "the end"
        raise InvariantError(f"seed {self.seed}, {where}: {message}")

    def _expect(self, condition: bool, message: str) -> None:
        if not condition:
            self._fail(message)

    def _check_status(self, before: int, after: int | None = None, status: Any = None) -> None:
        """What a run says it plays: the version committed when it started, or a newer one
        committed since (``after``: what the store holds now, read after the status)."""
        board = self.board
        assert board is not None
        status = status if status is not None else board.status()
        assert status is not None
        if after is None:
            after = self._committed_now()
        content = status["content"]
        shown = source_version(content["source"])
        held = int(content["versions"].get(PUBLISHER, 0))
        pushed = self.hub.publisher.versions() | {0}
        self._expect(
            before <= shown <= held <= after,
            f"status says it plays version {shown} with {held} committed; the store held"
            f" {before} when the run started and {after} now",
        )
        self._expect(shown in pushed, f"it plays version {shown}, which was never pushed")
        self._expect(
            content["items"] == (3 if shown else 0),
            f"version {shown} has 3 items, the player plays {content['items']}",
        )
        self.result.status_checks += 1

    def _committed_now(self) -> int:
        board = self.board
        assert board is not None
        return ContentStore(board.data / "store", readonly=True).versions().get(PUBLISHER, 0)

    def _check_after_kill(self, before: int, status: dict[str, Any] | None) -> None:
        board = self.board
        assert board is not None
        committed = self._check_store(board.pid, board.claimed())
        if status is not None:
            self._check_status(before, committed, status)
        self._check_playlog(before, committed)
        self._check_emergency(final=False)
        self.committed = committed

    def _check_store(self, pid: int, opened: bool) -> int:
        """Check the store as the kill left it; return the committed version."""
        board = self.board
        assert board is not None
        root = board.data / "store"
        if not root.exists():
            return 0
        store = ContentStore(root, readonly=True)
        try:
            versions = store.versions()
        except SignageError as exc:
            self._fail(f"current.json is unreadable: {exc}")
        self._expect(set(versions) <= {PUBLISHER}, f"unknown publishers committed: {versions}")
        committed = versions.get(PUBLISHER, 0)
        pushed = self.hub.publisher.versions()
        self._expect(
            committed >= self.committed,
            f"the committed version went back from {self.committed} to {committed}",
        )
        if committed:
            self._expect(committed in pushed, f"version {committed} was never pushed")
            self.seen_committed.add(committed)
            bundle = self._verified_bundle(store, committed, "committed")
            for name, ref in bundle.assets.items():
                path = store.asset_path(ref.sha256)
                self._expect(
                    path.is_file(), f"asset {name} of committed version {committed} is missing"
                )
                self._expect(
                    self._asset_ok(path, ref.size),
                    f"asset {name} of committed version {committed} is damaged",
                )
        staged = 0
        for folder in store.bundles.iterdir() if store.bundles.is_dir() else []:
            for path in folder.iterdir():
                if path.name.isdigit():
                    self._verified_bundle(store, int(path.name), "staged")
                    staged = max(staged, int(path.name))
        self.result.kills_staged_ahead += staged > committed
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        self.result.store_mb_max = max(self.result.store_mb_max, size / 2**20)
        for path in store.assets.iterdir() if store.assets.is_dir() else []:
            if HEX64.fullmatch(path.name):
                self._expect(
                    self._asset_ok(path, None), f"asset file {path.name} does not match its name"
                )
            else:
                self._expect(
                    SCRATCH.fullmatch(path.name) is not None,
                    f"unexpected file in the assets folder: {path.name}",
                )
        partials = list(store.partial.iterdir()) if store.partial.is_dir() else []
        self.result.partial_files_max = max(self.result.partial_files_max, len(partials))
        self.result.partial_files_end = len(partials)
        self.result.kills_mid_download += any(p.stat().st_size for p in partials)
        for path in partials:
            whole = self.hub.publisher.asset(path.name)
            self._expect(whole is not None, f"a download of an asset never pushed: {path.name}")
            assert whole is not None
            held = path.read_bytes()
            self._expect(
                whole.startswith(held),
                f"download {path.name} holds {len(held)} bytes that are not a prefix of the asset",
            )
            self.result.kills_download_whole += len(held) == len(whole)
        folders = [root, store.assets, *(store.bundles.iterdir() if store.bundles.is_dir() else [])]
        for folder in folders:
            for path in folder.glob(".*.part") if folder.is_dir() else []:
                match = SCRATCH.fullmatch(path.name)
                self._expect(match is not None, f"odd scratch file {path}")
                assert match is not None
                self._expect(
                    not opened or int(match["pid"]) == pid,
                    f"{path.relative_to(root)} of an earlier run was not swept when the store"
                    " was opened",
                )
        return committed

    def _verified_bundle(self, store: ContentStore, version: int, what: str) -> Any:
        try:
            bundle = accept_bundle(store.envelope(PUBLISHER, version), self.trust, {}, TZ, AREA)
        except SignageError as exc:
            self._fail(f"{what} version {version} does not verify: {exc}")
        self._expect(bundle.version == version, f"{what} file {version} holds {bundle.version}")
        return bundle

    def _asset_ok(self, path: Path, size: int | None) -> bool:
        info = path.stat()
        key = (path.name, info.st_ino, info.st_size, info.st_mtime_ns)
        if size is not None and info.st_size != size:
            return False
        if key in self.verified:
            return True
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            while block := source.read(2**20):
                digest.update(block)
        if digest.hexdigest() != path.name:
            return False
        self.verified.add(key)
        return True

    def _check_playlog(self, before: int, after: int) -> None:
        """The play log as the kill left it: sound, nothing lost or changed, and every slide
        of this run from a version committed during it."""
        board = self.board
        assert board is not None
        view = read_playlog(board.data / "plays.sqlite")
        self._expect(view.integrity == "ok", f"play log integrity: {view.integrity}")
        rows = {row.row: row for row in view.rows}
        for number, old in self.closed.items():
            self._expect(number in rows, f"play-log row {number} ({old.item}) disappeared")
            self._expect(rows[number] == old, f"closed play {old} changed to {rows[number]}")
        for row in view.rows:
            if row.ended is not None:
                self.closed[row.row] = row
            if row.row <= self.known_rows:
                continue
            version = item_version(row.item)
            if version is None:
                match = ALERT_ITEM.fullmatch(row.item)
                assert match is not None
                with self.hub.publisher.lock:
                    self._expect(
                        match["identifier"] in self.hub.publisher.notices,
                        f"row {row.row} shows alert {match['identifier']}, never sent",
                    )
            elif version == 0:
                self._expect(
                    self.top_version == 0,
                    f"the idle slide came back at row {row.row} after version"
                    f" {self.top_version} was shown",
                )
            else:
                self._expect(
                    before <= version <= after,
                    f"row {row.row} shows version {version} in a run that started with"
                    f" {before} committed and ended with {after}",
                )
                self._expect(
                    version >= self.top_version,
                    f"row {row.row} shows version {version} after version {self.top_version}",
                )
                self.top_version = version
        self.known_rows = max([self.known_rows, *rows])
        stored = {(seq, at) for seq, at, _, _ in hub_reports(self._registry())}
        self.result.kills_unacked_reports += any(entry in stored for entry in view.outbox)

    def _check_emergency(self, final: bool) -> None:
        """Alerts and blank as the kill left them: every stored alert verifies and was sent;
        one the board acknowledged is still there unless a Cancel of it went out or it
        expires within seconds; one whose Cancel it acknowledged is gone; the last blank or
        unblank it acknowledged is in force; its last seq never goes back. ``final``: the
        board is in step with the hub, so it holds exactly the live alerts."""
        board = self.board
        assert board is not None
        root = board.data / "store"
        if not root.exists():
            return
        store = ContentStore(root, readonly=True)
        try:
            raw = store.read_doc("alerts").get("alerts", [])
            state = store.read_doc("state")
        except SignageError as exc:
            self._fail(f"alerts.json or state.json is unreadable: {exc}")
        held: set[str] = set()
        for text in raw if isinstance(raw, list) else []:
            try:
                alert = accept_alert(str(text).encode("ascii"), self.trust, {}, AREA)
            except (SignageError, UnicodeEncodeError) as exc:
                self._fail(f"a stored alert does not verify: {exc}")
            held.add(alert.identifier)
        publisher = self.hub.publisher
        now = time.time()
        with publisher.lock:
            notices = dict(publisher.notices)
            switches = list(publisher.switches)
            top_seq = publisher.seq
        unknown = held - set(notices)
        self._expect(not unknown, f"the store holds alerts never sent: {unknown}")
        for notice in notices.values():
            lasting = notice.expires > now + 3.0
            if notice.applied and not notice.cancel_sent and lasting:
                self._expect(
                    notice.identifier in held,
                    f"alert {notice.identifier}, acknowledged by the board, is not in its store",
                )
            if notice.cancel_applied:
                self._expect(
                    notice.identifier not in held,
                    f"alert {notice.identifier} is still stored after its Cancel was applied",
                )
            if final and lasting and not notice.cancel_sent:
                self._expect(
                    notice.identifier in held,
                    f"alert {notice.identifier} is in force at the hub but not at the board",
                )
            if final and notice.cancel_sent and lasting:
                self._expect(
                    notice.identifier not in held,
                    f"alert {notice.identifier} was cancelled but the board still holds it",
                )
        self.result.kills_with_alerts += bool(held) and not final
        seqs = state.get("seq", {})
        seq = int(seqs.get(PUBLISHER, 0)) if isinstance(seqs, dict) else 0
        self._expect(
            self.seq_seen <= seq <= top_seq,
            f"the board's last seq went from {self.seq_seen} to {seq} ({top_seq} sent)",
        )
        self.seq_seen = seq
        blank = bool(state.get("blank", False))
        self.result.kills_blanked += blank and not final
        if switches and switches[-1].outcome == "applied":
            wanted = switches[-1].blank
            self._expect(
                blank == wanted,
                f"the board acknowledged {'blank' if wanted else 'unblank'} (seq"
                f" {switches[-1].seq}) but its store says blank={blank}",
            )

    def _registry(self) -> Path:
        return self.hub.root / "hub" / "registry.sqlite"

    # -- the end ------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Stop pushing, let the board converge and empty its outbox, kill it, compare."""
        board = self.board
        assert board is not None
        self.hub.stop_publishing()
        last = max(self.hub.publisher.versions(), default=0)
        before = self.committed
        board.spawn()
        self.result.restarts += 1
        self._wait_started()
        self._check_status(before)
        deadline = time.monotonic() + FINAL_TIMEOUT_S
        plays = board.data / "plays.sqlite"
        while self._committed_now() != last or outbox_count(plays) != 0:
            if board.exited() is not None:
                self._fail(f"the player exited by itself:\n{board.tail()}")
            if time.monotonic() > deadline:
                self._fail(
                    f"in {FINAL_TIMEOUT_S:.0f} s the board did not converge on version {last}"
                    f" ({self._committed_now()}) with an empty outbox ({outbox_count(plays)})"
                )
            time.sleep(0.02)
        self._settle_emergency()
        board.kill()
        committed = self._check_store(board.pid, True)
        self._check_playlog(before, committed)
        self._check_emergency(final=True)
        self._expect(committed == last, f"the board ended on {committed}, not {last}")
        self._compare_with_hub()
        self._check_diagnosis(last)
        figures = self.result
        figures.pushed = len(self.hub.publisher.versions())
        figures.published = self.hub.publisher.published
        figures.applied = len(self.seen_committed | self.applied_events)
        figures.last_version = committed
        figures.asset_mb_pushed = self.hub.publisher.asset_bytes / 2**20
        figures.hub_duplicates = self.hub.counters().get("report_duplicates", 0)

    def _settle_emergency(self) -> None:
        """With the board connected again: unblank it (commands are not queued for boards
        that were offline), and let the alerts and Cancels the hub holds reach it."""
        board = self.board
        assert board is not None
        deadline = time.monotonic() + FINAL_TIMEOUT_S
        while (status := board.status()) is None or status["link"]["state"] != "ready":
            if time.monotonic() > deadline:
                self._fail("the board did not reconnect to the hub at the end")
            time.sleep(0.05)
        outcome = self.hub.unblank()
        self._expect(outcome == "applied", f"the final unblank was {outcome}")
        store = ContentStore(board.data / "store", readonly=True)
        publisher = self.hub.publisher
        while True:  # the hub's catch-up at hello: every live alert held, every Cancel done
            now = time.time()
            with publisher.lock:
                lasting = [n for n in publisher.notices.values() if n.expires > now + 3.0]
            live = {n.identifier for n in lasting if not n.cancel_sent}
            cancelled = {n.identifier for n in lasting if n.cancel_sent}
            raw = store.read_doc("alerts").get("alerts", [])
            held = {
                accept_alert(str(t).encode("ascii"), self.trust, {}, AREA).identifier
                for t in (raw if isinstance(raw, list) else [])
            }
            if live <= held and not held & cancelled:
                break
            if time.monotonic() > deadline:
                self._fail(f"the board holds alerts {sorted(held)}, the hub {sorted(live)}")
            time.sleep(0.05)
        figures = self.result
        with publisher.lock:
            figures.alerts_sent = len(publisher.notices)
            figures.alerts_applied = sum(n.applied for n in publisher.notices.values())
            figures.cancels_sent = sum(n.cancel_sent for n in publisher.notices.values())
            figures.cancels_applied = sum(n.cancel_applied for n in publisher.notices.values())
            figures.commands_sent = len(publisher.switches)
            figures.commands_applied = sum(s.outcome == "applied" for s in publisher.switches)

    def _check_diagnosis(self, last: int) -> None:
        """The product's own look at the data dir (``signage diag``, which hashes every
        asset): the committed bundle and the stored files are sound."""
        board = self.board
        assert board is not None
        command = [
            sys.executable, "-m", "signage", "diag", "--json", "--no-network",
            "--config", str(board.config),
        ]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, env=board.env(), cwd=REPO, timeout=120, check=False
        )
        try:
            content = json.loads(done.stdout)["sections"]["content"]
        except (ValueError, KeyError) as exc:
            self._fail(f"signage diag gave no content section ({exc}): {done.stderr[-2000:]!r}")
        bad = {
            key: entry
            for key, entry in content.items()
            # warn: alerts in force are worth a look, not damage; nor is the last refusal
            if entry["level"] == "fail"
            or (entry["level"] == "warn" and key not in ("last_error", "alerts"))
        }
        self._expect(not bad, f"signage diag finds the content damaged: {bad}")
        bundle = content.get(f"bundle:{PUBLISHER}", {})
        self._expect(
            str(last) in str(bundle.get("value")), f"signage diag sees {bundle}, not {last}"
        )

    def _compare_with_hub(self) -> None:
        board = self.board
        assert board is not None
        view = read_playlog(board.data / "plays.sqlite")
        reports = hub_reports(self._registry())
        closed = [row for row in view.rows if row.ended is not None]
        at_hub: dict[str, list[tuple[float, int]]] = {}
        for seq, _, kind, data in reports:
            if kind == "play":
                at_hub.setdefault(str(data["item"]), []).append((float(data["started"]), seq))
        waiting = Counter((str(d["item"]), round(float(d["started"]), 3)) for d in view.pending)
        matched: set[int] = set()  # hub seqs matched to a board play
        for row in closed:
            found = [
                seq
                for started, seq in at_hub.get(row.item, [])
                if abs(started - row.started) < 1e-3
            ]
            self._expect(
                len(found) <= 1,
                f"play {row.item} started {row.started} is at the hub {len(found)} times"
                f" (seq {found})",
            )
            if not found:
                self._expect(
                    waiting[(row.item, round(row.started, 3))] > 0,
                    f"play {row.item} started {row.started} (row {row.row}) is lost: not at the"
                    " hub and not in the outbox",
                )
            matched.update(found)
        extra = [
            (seq, data) for seq, _, kind, data in reports if kind == "play" and seq not in matched
        ]
        self._expect(not extra, f"the hub holds plays the board never logged: {extra[:5]}")
        figures = self.result
        figures.plays = len(closed)
        figures.interrupted_plays = sum(row.interrupted for row in closed)
        figures.hub_play_reports = sum(len(v) for v in at_hub.values())
        figures.alert_plays = sum(ALERT_ITEM.fullmatch(row.item) is not None for row in closed)
        figures.hub_reports = len(reports)
        self.applied_events = {
            int(data["version"]) for _, _, kind, data in reports if kind == "bundle_applied"
        }
        figures.applied_events = sum(kind == "bundle_applied" for _, _, kind, _ in reports)
        figures.pending_at_end = len(view.pending)


def run_crash(
    workdir: Path, kills: int, seed: int, say: Callable[[str], None] = print, **options: Any
) -> CrashResult:
    """Run ``kills`` kills in ``workdir`` with ``seed``; return the figures. Raises
    InvariantError naming the seed when an invariant fails."""
    return CrashRun(workdir, kills, seed, say=say, **options).run()


def main() -> int:
    parser = argparse.ArgumentParser(description="kill the board again and again")
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crash-")))
        result = run_crash(workdir, args.kills, seed)
    print(describe(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
