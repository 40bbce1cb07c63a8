"""The hub's side of one board connection: the Session of docs/protocol.md over websockets.

A :class:`BoardChannel` answers the board's hello, sends what the board lacks from a
:class:`Catalog` (newer bundles, alerts it does not hold), serves assets chunk by chunk from the
offset the board asks for, and collects heartbeats and reports. Pushes made while connected
return the board's ack. The reference hub (``signage hub serve``) builds on this; tests and
benchmarks run it against real boards on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from signage.errors import ErrorCode
from signage.protocol import (
    CHUNK_BYTES,
    Acked,
    Chunk,
    ChunkReceived,
    Fault,
    Limits,
    Received,
    Role,
    Session,
)

log = logging.getLogger("signage.hub.channel")


class Catalog(Protocol):
    """Where a channel finds what to send a board."""

    def bundles(self) -> list[tuple[str, int, bytes]]:
        """Return (publisher, version, signed envelope) of the newest bundle of each publisher
        meant for this board."""

    def alerts(self) -> list[tuple[str, bytes]]:
        """Return (identifier, signed envelope) of the alerts in force for this board."""

    def asset(self, sha256: str) -> Path | None:
        """Return the file of asset ``sha256``, or None when the hub does not have it."""


@dataclass(slots=True)
class ChannelStats:
    """What one board connection delivered."""

    board: str | None = None
    heartbeats: list[Mapping[str, Any]] = field(default_factory=list)
    reports: list[Mapping[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    chunks_sent: int = 0
    asked: list[tuple[str, int]] = field(default_factory=list)  # get_asset: (sha256, offset)
    blobs: dict[str, bytes] = field(default_factory=dict)  # screenshots from the board


class BoardChannel:
    """Serves one connected board until it goes away."""

    def __init__(
        self,
        ws: ServerConnection,
        catalog: Catalog,
        *,
        heartbeat_s: int = 30,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        session_id: str | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.ws = ws
        self.catalog = catalog
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.session = Session(Role.HUB, clock(), limits or Limits())
        self.session_id = session_id or secrets.token_hex(8)
        self.chunk_bytes = chunk_bytes
        self.stats = ChannelStats()
        self.ready = asyncio.Event()
        self._answers: dict[str, asyncio.Future[Acked]] = {}
        self._partial: dict[str, bytearray] = {}
        self._lock = asyncio.Lock()

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes."""
        ticker = asyncio.create_task(self._tick())
        try:
            async for frame in self.ws:
                now = self.clock()
                if isinstance(frame, str):
                    self.session.receive_text(frame, now)
                else:
                    self.session.receive_bytes(frame, now)
                await self._handle()
                await self._flush()
                if self.session.state == "closed":
                    await self.ws.close(1008, "protocol violation")
                    break
        except ConnectionClosed:
            pass
        finally:
            ticker.cancel()
            for future in self._answers.values():
                if not future.done():
                    future.cancel()

    async def push(self, kind: str, fields: Mapping[str, Any]) -> Acked:
        """Send a bundle, alert or command and return the board's ack (waits for it)."""
        await self.ready.wait()
        ident = self.session.send(kind, fields)
        future: asyncio.Future[Acked] = asyncio.get_running_loop().create_future()
        self._answers[ident] = future
        await self._flush()
        return await future

    # -- inside -------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.session.check(self.clock())
            await self._handle()
            if self.session.state == "closed":
                await self.ws.close(1008, "session timeout")
                return

    async def _flush(self) -> None:
        async with self._lock:
            for frame in self.session.data_to_send():
                await self.ws.send(frame)

    async def _handle(self) -> None:
        for event in self.session.events():
            if isinstance(event, Received):
                await self._received(event.message.type, event.message.id, event.message.fields)
            elif isinstance(event, Acked):
                future = self._answers.pop(event.ref, None)
                if future is not None and not future.done():
                    future.set_result(event)
            elif isinstance(event, ChunkReceived):
                self._blob(event.chunk)
            elif isinstance(event, Fault):
                self.stats.faults.append(event)
                log.warning("board fault board=%s code=%s", self.stats.board, event.code)

    async def _received(self, kind: str, ident: str, fields: Mapping[str, Any]) -> None:
        if kind == "hello":
            await self._hello(fields)
        elif kind == "get_asset":
            self.stats.asked.append((fields["sha256"], fields["offset"]))
            await self._send_asset(ident, fields["sha256"], fields["offset"])
        elif kind == "heartbeat":
            self.stats.heartbeats.append(fields["status"])
            self.session.ack(ident)
        elif kind == "report":
            self.stats.reports.extend(fields["entries"])
            self.session.ack(ident)

    async def _hello(self, fields: Mapping[str, Any]) -> None:
        self.stats.board = fields["board"]
        self.session.send(
            "welcome",
            {
                "session": self.session_id,
                "heartbeat_s": self.heartbeat_s,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            },
        )
        held: Mapping[str, int] = fields["held"]
        for publisher, version, envelope in self.catalog.bundles():
            if held.get(publisher, 0) < version:
                self._send_signed("bundle", envelope)
        holding = set(fields.get("alerts", []))
        for identifier, envelope in self.catalog.alerts():
            if identifier not in holding:
                self._send_signed("alert", envelope)
        self.session.send("synced")
        self.ready.set()

    def _send_signed(self, kind: str, envelope: bytes) -> None:
        self.session.send(kind, {"signed": json.loads(envelope)})

    async def _send_asset(self, ident: str, sha256: str, offset: int) -> None:
        path = self.catalog.asset(sha256)
        if path is None:
            error = {"code": ErrorCode.ASSET_MISSING.value, "message": "the hub has no such asset"}
            self.session.ack(ident, False, error)
            return
        total = path.stat().st_size
        if offset >= total:
            error = {"code": ErrorCode.ASSET_OUT_OF_ORDER.value, "message": "offset past the end"}
            self.session.ack(ident, False, error)
            return
        self.session.ack(ident, True, result={"size": total})
        await self._flush()
        with open(path, "rb") as source:
            source.seek(offset)
            position = offset
            while block := source.read(self.chunk_bytes):
                await self.send_chunk(Chunk(sha256, position, total, block))
                position += len(block)

    async def send_chunk(self, chunk: Chunk) -> None:
        """Send one chunk of an asset (tests override this to cut the connection mid-way)."""
        self.session.send_chunk(chunk)
        self.stats.chunks_sent += 1
        await self._flush()

    def _blob(self, chunk: Chunk) -> None:
        buffer = self._partial.setdefault(chunk.sha256, bytearray())
        if chunk.offset != len(buffer):
            self._partial.pop(chunk.sha256, None)
            return
        buffer.extend(chunk.data)
        if chunk.last:
            self.stats.blobs[chunk.sha256] = bytes(self._partial.pop(chunk.sha256))
