"""A real hub (signage.hub.server.Hub) on 127.0.0.1 with a registry in a temporary folder, its
boards, publishers and operator, and real boards (Link + ContentSync, no display) dialling in."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from signage.hub.client import PublisherClient
from signage.hub.server import Hub, HubConfig
from signage.protocol import PrivateKey, Trust
from tests.board.linkkit import Board, make_board

NOW = 1_764_150_000.0


@dataclass
class Rig:
    """A running hub and what was registered on it."""

    hub: Hub
    root: Path
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # board or publisher id -> token
    areas: dict[str, str] = field(default_factory=dict)  # board id -> area
    operator: str = ""
    boards: dict[str, Board] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.hub.url

    def trust(self) -> Trust:
        return Trust([k.public() for k in self.keys.values()])

    def add_publisher(self, key_id: str, area: str) -> PrivateKey:
        key = PrivateKey.generate(key_id, area)
        self.keys[key_id] = key
        self.tokens[key_id] = self.hub.registry.add_publisher(key.public(), area, NOW)
        return key

    def add_board(self, board_id: str, area: str) -> str:
        self.tokens[board_id] = self.hub.registry.add_board(board_id, f"Bảng {board_id}", area, NOW)
        self.areas[board_id] = area
        return self.tokens[board_id]

    async def start_board(self, board_id: str, token: str | None = None) -> Board:
        board = make_board(
            self.root / "boards" / board_id,
            f"{self.url}/board",
            self.trust(),
            area=self.areas[board_id],
            token=token or self.tokens[board_id],
            board_id=board_id,
        )
        await board.start()
        self.boards[board_id] = board
        return board

    async def stop_board(self, board_id: str) -> None:
        await self.boards.pop(board_id).stop()

    def publisher(self, publisher_id: str) -> PublisherClient:
        return PublisherClient(self.url, self.tokens[publisher_id])

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET an operator page (blocking: call through asyncio.to_thread)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.hub.port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()


@contextlib.asynccontextmanager
async def running_hub(root: Path, **config: object) -> AsyncIterator[Rig]:
    settings = {"host": "127.0.0.1", "port": 0, "data_dir": root / "hub", **config}
    hub = Hub(HubConfig(**settings))  # type: ignore[arg-type]
    rig = Rig(hub, root)
    rig.operator = hub.registry.add_operator("van-hanh", NOW)
    await hub.start()
    try:
        yield rig
    finally:
        for board_id in list(rig.boards):
            await rig.stop_board(board_id)
        await hub.stop()


async def wait_online(rig: Rig, *board_ids: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not all(b in rig.hub.channels and rig.hub.channels[b].ready.is_set() for b in board_ids):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"boards not online: {board_ids}")
        await asyncio.sleep(0.02)
