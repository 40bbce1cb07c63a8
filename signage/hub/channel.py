"""The hub's side of one board connection: the Session of docs/protocol.md over websockets.

A :class:`BoardChannel` answers the board's hello, sends what the board lacks from a
:class:`Catalog` (newer bundles, alerts it does not hold), serves assets chunk by chunk from the
offset the board asks for, and collects heartbeats and reports. Pushes made while connected
return the board's ack. The reference hub (``signage hub serve``) builds on this; tests and
benchmarks run it against real boards on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hashlib
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

from signage import __version__
from signage.errors import ErrorCode, SignageError
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
HUB_SOFTWARE = f"signage-hub/{__version__}"


class Catalog(Protocol):
    """Where a channel finds what a board lacks when it says hello."""

    def sync(self, hello: Mapping[str, Any]) -> list[tuple[str, str, bytes]]:
        """Return what to send a board after its ``hello`` fields, in order: (``bundle`` or
        ``alert``, a key naming the document, signed envelope). A bundle's key is
        ``publisher@version``, an alert's its identifier."""

    def asset(self, sha256: str) -> Path | None:
        """Return the file of asset ``sha256``, or None when the hub does not have it."""


class Listener(Protocol):
    """What a channel tells its hub. The default, :class:`Recorder`, keeps it in ChannelStats."""

    def hello(self, channel: BoardChannel, fields: Mapping[str, Any]) -> dict[str, str] | None:
        """Return None to welcome the board, or the error {code, message} that refuses it."""

    def heartbeat(self, channel: BoardChannel, status: Mapping[str, Any]) -> None:
        """A heartbeat arrived."""

    async def reports(self, channel: BoardChannel, entries: list[Mapping[str, Any]]) -> None:
        """A report batch arrived; return once it is kept for good (the board then deletes
        its copy), or raise SignageError to refuse it (the board sends it again)."""

    def acked(self, channel: BoardChannel, kind: str, key: str, ack: Acked) -> None:
        """The board answered a delivered bundle or alert (``key`` as from :meth:`Catalog.sync`)."""

    def fault(self, channel: BoardChannel, fault: Fault) -> None:
        """The board sent something refused."""


@dataclass(slots=True)
class ChannelStats:
    """What one board connection delivered (kept by :class:`Recorder`, for tests and tools)."""

    board: str | None = None
    heartbeats: list[Mapping[str, Any]] = field(default_factory=list)
    reports: list[Mapping[str, Any]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # entries per report message
    faults: list[Fault] = field(default_factory=list)
    chunks_sent: int = 0
    messages_in: int = 0  # text frames received
    asked: list[tuple[str, int]] = field(default_factory=list)  # get_asset: (sha256, offset)
    blobs: dict[str, bytes] = field(default_factory=dict)  # screenshots from the board


class Recorder:
    """A listener that welcomes every board and records everything in the channel's stats."""

    def hello(self, channel: BoardChannel, fields: Mapping[str, Any]) -> dict[str, str] | None:
        return None

    def heartbeat(self, channel: BoardChannel, status: Mapping[str, Any]) -> None:
        channel.stats.heartbeats.append(status)

    async def reports(self, channel: BoardChannel, entries: list[Mapping[str, Any]]) -> None:
        channel.stats.reports.extend(entries)
        channel.stats.batches.append(len(entries))

    def acked(self, channel: BoardChannel, kind: str, key: str, ack: Acked) -> None:
        pass

    def fault(self, channel: BoardChannel, fault: Fault) -> None:
        channel.stats.faults.append(fault)


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
        listener: Listener | None = None,
        own_ticker: bool = True,
        board_id: str | None = None,
    ) -> None:
        self.ws = ws
        self.catalog = catalog
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.session = Session(Role.HUB, clock(), limits or Limits())
        self.session_id = session_id or secrets.token_hex(8)
        self.chunk_bytes = chunk_bytes
        self.listener: Listener = listener or Recorder()
        self.own_ticker = own_ticker
        self.board_id = board_id  # who the token says this is (None: not checked)
        self.stats = ChannelStats()
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self._answers: dict[str, asyncio.Future[Acked]] = {}
        self._delivered: dict[tuple[str, str], asyncio.Future[Acked]] = {}
        self._partial: dict[str, bytearray] = {}
        self._blob_waiters: dict[str, asyncio.Future[bytes]] = {}
        self._lock = asyncio.Lock()
        self._closing: asyncio.Task[None] | None = None

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes."""
        ticker = asyncio.create_task(self._tick()) if self.own_ticker else None
        try:
            async for frame in self.ws:
                now = self.clock()
                if isinstance(frame, str):
                    self.stats.messages_in += 1
                    self.session.receive_text(frame, now)
                else:
                    self.session.receive_bytes(frame, now)
                await self._handle()
                await self._flush()
                if self.session.state == "closed":
                    # Read on until the socket closes (the closed session drops what comes):
                    # the peer's close frame may be queued behind frames it already sent.
                    self._hang_up("protocol violation")
        except ConnectionClosed:
            pass
        finally:
            if ticker is not None:
                ticker.cancel()
            self.closed.set()
            self.ready.clear()
            waiting: list[asyncio.Future[Any]] = [*self._answers.values()]
            for future in [*waiting, *self._blob_waiters.values()]:
                if not future.done():
                    future.cancel()

    async def check(self, now: float) -> None:
        """Apply the session's timeouts at ``now`` (a hub with many boards calls this from one
        ticker instead of giving each channel its own)."""
        self.session.check(now)
        await self._handle()
        if self.session.state == "closed" and not self.closed.is_set():
            self._hang_up("session timeout")

    def _hang_up(self, reason: str) -> None:
        # Not awaited: a peer that never answers the close frame holds it for websockets'
        # close_timeout, and the hub checks every board's session in one loop.
        if self._closing is None:
            self._closing = asyncio.create_task(self.ws.close(1008, reason))

    async def push(self, kind: str, fields: Mapping[str, Any]) -> Acked:
        """Send a bundle, alert or command and return the board's ack (waits for it)."""
        await self._wait_ready()
        future = self._send(kind, fields)
        await self._flush()
        return await future

    async def deliver(self, kind: str, key: str, envelope: bytes) -> Acked:
        """Send signed ``bundle`` or ``alert`` ``envelope`` named ``key`` (as Catalog.sync
        names it) and return the board's ack. A document already sent in this session is not
        sent again: the caller waits for the first sending's ack."""
        await self._wait_ready()
        future = self._deliver(kind, key, envelope)
        await self._flush()
        return await future

    async def screenshot(self) -> tuple[Acked, bytes | None]:
        """Ask the board for a screenshot; return its ack and the PNG bytes (None if refused)."""
        ack = await self.push("command", {"name": "screenshot"})
        if not ack.ok or ack.result is None:
            return ack, None
        sha256 = str(ack.result.get("sha256", ""))
        if sha256 in self.stats.blobs:
            return ack, self.stats.blobs.pop(sha256)
        waiter = self._blob_waiters.setdefault(sha256, asyncio.get_running_loop().create_future())
        try:
            return ack, await waiter
        finally:
            self._blob_waiters.pop(sha256, None)

    # -- inside -------------------------------------------------------------------------------

    async def _wait_ready(self) -> None:
        if self.closed.is_set():
            raise ConnectionError("the board is not connected")
        ready = asyncio.ensure_future(self.ready.wait())
        closed = asyncio.ensure_future(self.closed.wait())
        await asyncio.wait((ready, closed), return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        closed.cancel()
        if not self.ready.is_set():
            raise ConnectionError("the board went away")

    def _send(self, kind: str, fields: Mapping[str, Any]) -> asyncio.Future[Acked]:
        ident = self.session.send(kind, fields)
        future: asyncio.Future[Acked] = asyncio.get_running_loop().create_future()
        self._answers[ident] = future
        return future

    def _deliver(self, kind: str, key: str, envelope: bytes) -> asyncio.Future[Acked]:
        future = self._delivered.get((kind, key))
        if future is None:
            future = self._send(kind, {"signed": json.loads(envelope)})
            self._delivered[(kind, key)] = future
            future.add_done_callback(lambda done: self._answered(kind, key, done))
        return future

    def _answered(self, kind: str, key: str, future: asyncio.Future[Acked]) -> None:
        if not future.cancelled():
            self.listener.acked(self, kind, key, future.result())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self.check(self.clock())
            if self.session.state == "closed":
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
                self.listener.fault(self, event)
                log.warning("board fault board=%s code=%s", self.stats.board, event.code)

    async def _received(self, kind: str, ident: str, fields: Mapping[str, Any]) -> None:
        if kind == "hello":
            await self._hello(ident, fields)
        elif kind == "get_asset":
            self.stats.asked.append((fields["sha256"], fields["offset"]))
            await self._send_asset(ident, fields["sha256"], fields["offset"])
        elif kind == "heartbeat":
            self.listener.heartbeat(self, fields["status"])
            self.session.ack(ident)
        elif kind == "report":
            try:
                await self.listener.reports(self, fields["entries"])
            except SignageError as exc:
                self.session.ack(ident, False, {"code": exc.code.value, "message": exc.message})
            else:
                self.session.ack(ident)

    async def _hello(self, ident: str, fields: Mapping[str, Any]) -> None:
        self.stats.board = fields["board"]
        refusal = self.listener.hello(self, fields)
        if refusal is not None:
            self.session.ack(ident, False, refusal)
            await self._flush()
            await self.ws.close(1008, refusal["code"])
            return
        self.session.send(
            "welcome",
            {
                "session": self.session_id,
                "heartbeat_s": self.heartbeat_s,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "hub": HUB_SOFTWARE,
            },
        )
        for kind, key, envelope in self.catalog.sync(fields):
            self._deliver(kind, key, envelope)
        self.session.send("synced")
        self.ready.set()

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
            data = bytes(self._partial.pop(chunk.sha256))
            if hashlib.sha256(data).hexdigest() != chunk.sha256:
                log.warning("screenshot hash mismatch board=%s", self.stats.board)
                return
            waiter = self._blob_waiters.get(chunk.sha256)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
            else:
                self.stats.blobs[chunk.sha256] = data
