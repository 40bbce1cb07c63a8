"""Shared pieces for link tests and benchmarks: a hub on 127.0.0.1 built on BoardChannel, signed
bundles from the examples, and a board (ContentSync + Link) without a display."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Request, Response, ServerConnection, serve

from signage.board.link import Link
from signage.board.sync import ContentSync
from signage.hub.channel import BoardChannel
from signage.hub.publish import build_bundle
from signage.layout import LayoutLibrary
from signage.model import bundle_to_json
from signage.protocol import PrivateKey, Trust
from signage.resources import data_dir
from signage.store import ContentStore, PlayLog

REPO = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TOKEN = "board-token-0123456789"
ISSUED = datetime.fromisoformat("2026-11-26T17:00:00+07:00")


def library() -> LayoutLibrary:
    return LayoutLibrary.load(data_dir("layouts"))


def signed_example(
    key: PrivateKey, out: Path, version: int, area: str = "62/23456", example: str = "xa-sa-thay"
) -> bytes:
    """Build and sign examples/EXAMPLE as ``version``; its assets land in out/assets."""
    built = out / f"bundle-{version}.json"
    build_bundle(
        REPO / "examples" / example,
        built,
        publisher=key.key_id,
        version=version,
        area=area,
        issued=ISSUED,
        library=library(),
        tz=TZ,
    )
    return key.sign(built.read_bytes())


def signed_text_bundle(key: PrivateKey, version: int, title: str, area: str = "62/23456") -> bytes:
    data = {
        "bundle": 1,
        "publisher": key.key_id,
        "version": version,
        "issued": ISSUED.isoformat(),
        "area": area,
        "items": [
            {
                "id": "tb-1",
                "template": "announcement",
                "fields": {"title": title, "body": "Nội dung thông báo của xã."},
            }
        ],
    }
    return key.sign(bundle_to_json(data))


@dataclass
class FakeCatalog:
    assets_dir: Path
    envelopes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    alert_envelopes: dict[str, bytes] = field(default_factory=dict)

    def put(self, envelope: bytes) -> None:
        payload = json.loads(__import__("base64").b64decode(json.loads(envelope)["payload"]))
        self.envelopes[payload["publisher"]] = (payload["version"], envelope)

    def sync(self, hello: Any) -> list[tuple[str, str, bytes]]:
        held, holding = hello["held"], set(hello.get("alerts", []))
        out = [
            ("bundle", f"{p}@{v}", e) for p, (v, e) in self.envelopes.items() if held.get(p, 0) < v
        ]
        out += [("alert", i, e) for i, e in self.alert_envelopes.items() if i not in holding]
        return out

    def asset(self, sha256: str) -> Path | None:
        path = self.assets_dir / sha256
        return path if path.is_file() else None


class TestHub:
    """A hub on 127.0.0.1: checks the bearer token, serves each board with a BoardChannel."""

    __test__ = False

    def __init__(self, catalog: FakeCatalog, channel: type[BoardChannel] = BoardChannel) -> None:
        self.catalog = catalog
        self.channel_class = channel
        self.channels: list[BoardChannel] = []
        self.refused = 0
        self.url = ""
        self.connected = asyncio.Event()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.refused += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        channel = self.channel_class(ws, self.catalog, heartbeat_s=5)
        self.channels.append(channel)
        self.connected.set()
        await channel.run()

    @contextlib.asynccontextmanager
    async def running(self, port: int = 0) -> AsyncIterator[TestHub]:
        async with serve(
            self._handler, "127.0.0.1", port, process_request=self._check, max_size=2**25
        ) as server:
            sock = next(iter(server.sockets))
            self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}/board"
            yield self

    def latest(self) -> BoardChannel:
        return self.channels[-1]


class Hooks:
    """The agent's side of the link, recorded instead of shown."""

    def __init__(self, sync: ContentSync) -> None:
        self.sync = sync
        self.changes = 0
        self.changed = asyncio.Event()
        self.alerts_seen = 0
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.applied_at: list[float] = []
        self.programme: Any = None

    def status(self) -> dict[str, Any]:
        return {"content": {"versions": dict(self.sync.store.versions())}}

    async def content_changed(self) -> None:
        self.programme = self.sync.programme()  # as the agent does: the programme to play
        self.changes += 1
        self.applied_at.append(time.perf_counter())
        self.changed.set()

    async def alerts_changed(self) -> None:
        self.alerts_seen += 1

    async def run_command(self, name: str, args: dict[str, Any]) -> None:
        self.commands.append((name, args))

    async def screenshot(self) -> bytes:
        return b"\x89PNG\r\n\x1a\n" + b"0" * 300_000


@dataclass
class Board:
    sync: ContentSync
    link: Link
    hooks: Hooks
    journal: PlayLog
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.link.run())

    async def stop(self) -> None:
        await self.link.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        self.journal.close()


def make_board(
    data: Path,
    url: str,
    trust: Trust,
    area: str = "62/23456",
    token: str = TOKEN,
    board_id: str = "xa-sa-thay-01",
    clock: Callable[[], float] = time.monotonic,
    report_hold_s: float = 0.0,
) -> Board:
    store = ContentStore(data / "store")
    sync = ContentSync(store, trust, library(), area, TZ, 40_000_000)
    journal = PlayLog(data / "plays.sqlite", TZ)
    hooks = Hooks(sync)
    link = Link(
        url,
        token,
        board_id,
        sync,
        journal,
        hooks,
        TZ,
        rng=random.Random(7),
        clock=clock,
        backoff_base_s=0.05,
        report_hold_s=report_hold_s,
    )
    return Board(sync, link, hooks, journal)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
