"""A TCP proxy on 127.0.0.1 that puts network faults between boards and a hub.

Boards dial the proxy instead of the hub; every connection they open is forwarded, byte for
byte, to the hub (the WebSocket handshake and frames pass through untouched) unless a fault hits
it:

- **drop**: cut every open connection now (:meth:`FaultProxy.drop_all`), or on a schedule every
  few seconds (:meth:`FaultProxy.drop_every`): both sockets are aborted, no close frame, as when
  a 3G/4G modem loses its carrier;
- **refuse**: new connections are accepted and at once reset, for a while
  (:meth:`FaultProxy.refuse_for`) or until lifted;
- **delay**: a one-way latency on every byte and a bandwidth cap per direction of each connection
  (:attr:`Faults.latency_s`, :attr:`Faults.bandwidth_bps`); the proxy holds only a little data in
  flight, so a slow link slows the sender down as a real one does;
- **truncate**: each direction of a connection is cut after K bytes, K drawn per connection
  (:attr:`Faults.truncate_bytes`), wherever that falls: in the HTTP handshake, in a frame header,
  in the middle of a chunk;
- **corrupt**: bits flip in bytes after the HTTP handshake (:attr:`Faults.corrupt_rate` per byte),
  so frames fail WebSocket parsing, decompression, UTF-8, JSON, the chunk codec, a signature or an
  asset's hash, depending on where the flip lands.

Every random choice comes from ``seed``: the connection number and the byte offset in its stream
decide what happens to a byte, so a run can be repeated. :attr:`FaultProxy.counters` counts what
was done and :attr:`FaultProxy.records` keeps one row per connection (when it opened and closed
on ``time.monotonic()``, why it ended, its bytes).

    async with FaultProxy("127.0.0.1", hub_port, seed=7) as proxy:
        proxy.faults.bandwidth_bps = 200_000
        proxy.drop_every(3.0)
        ...  # boards use f"ws://127.0.0.1:{proxy.port}/board"
        proxy.clean()
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from types import TracebackType

HANDSHAKE_END = b"\r\n\r\n"
READ_BYTES = 64 * 1024
PIECE_BYTES = 8 * 1024  # what the proxy delivers at a time (a bandwidth cap paces pieces)
PIECES_IN_FLIGHT = 8  # per direction: what the "link" holds before the sender has to wait
SOCKET_BUFFER_BYTES = 64 * 1024


@dataclass(slots=True)
class Faults:
    """What the proxy does to traffic. Change the fields at any time: latency, bandwidth and
    corruption apply to the next bytes; truncation to connections opened from then on."""

    latency_s: float = 0.0  # one-way delay of every byte, each direction
    bandwidth_bps: float = 0.0  # bytes per second per direction of a connection; 0: no cap
    truncate_bytes: tuple[int, int] | None = None  # cut after K bytes, K uniform in [lo, hi]
    corrupt_rate: float = 0.0  # chance per byte after the HTTP handshake that one bit flips
    corrupt_rate_up: float | None = None  # board -> hub when it should differ (None: the same)


@dataclass(slots=True)
class Counters:
    """What the proxy did since it started."""

    accepted: int = 0  # connections forwarded to the upstream
    refused: int = 0  # reset at once while refusing
    upstream_failed: int = 0  # the upstream (hub) could not be reached: reset
    dropped: int = 0  # connections cut by drop_all or the schedule
    drop_rounds: int = 0  # drop_all calls (scheduled or not) that cut at least one
    truncated: int = 0  # connections cut after K bytes
    closed: int = 0  # ended by one of the end points (close, reset)
    bytes_up: int = 0  # delivered board -> hub
    bytes_down: int = 0  # delivered hub -> board
    bytes_corrupted: int = 0  # bytes with a flipped bit (one bit each)

    def to_json(self) -> dict[str, int]:
        """Return the counters as a dict."""
        return asdict(self)


@dataclass(slots=True)
class ConnectionRecord:
    """One connection a board opened to the proxy (refused ones too)."""

    number: int
    opened: float  # time.monotonic()
    closed: float | None = None
    reason: str = ""  # refused, upstream_failed, dropped, truncated, closed, reset, stopped
    up: int = 0
    down: int = 0
    corrupted: int = 0

    @property
    def lasted(self) -> float:
        """Return how long the connection was open (until now if it still is)."""
        return (self.closed if self.closed is not None else time.monotonic()) - self.opened


_EOF = object()
_CUT = object()


class _Direction:
    """One direction of a proxied connection: reads the source, alters, delays, delivers."""

    def __init__(
        self,
        conn: _Connection,
        name: str,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        rng: random.Random,
        limit: int | None,
    ) -> None:
        self.conn = conn
        self.name = name  # "up" (board -> hub) or "down"
        self.source = source
        self.sink = sink
        self.rng = rng
        self.limit = limit  # truncate after this many bytes; None: never
        self.queue: asyncio.Queue[object] = asyncio.Queue(PIECES_IN_FLIGHT)
        self.seen = 0  # bytes read from the source
        self.body_from: int | None = None  # stream offset where the HTTP handshake ended
        self.tail = b""
        self.flip_rate = 0.0
        self.next_flip: int | None = None
        self.free_at = 0.0  # when the capped link has sent what it holds

    async def read(self) -> None:
        while True:
            data = await self.source.read(READ_BYTES)
            if not data:
                await self.queue.put(_EOF)
                return
            cut = False
            if self.limit is not None and self.seen + len(data) >= self.limit:
                data = data[: max(0, self.limit - self.seen)]
                cut = True
            data = self._corrupt(data)
            self.seen += len(data)
            now = time.monotonic()
            for start in range(0, len(data), PIECE_BYTES):
                await self.queue.put((now, data[start : start + PIECE_BYTES]))
            if cut:
                await self.queue.put(_CUT)
                return

    async def write(self) -> None:
        while True:
            item = await self.queue.get()
            if item is _EOF:
                with contextlib.suppress(OSError, RuntimeError):
                    if self.sink.can_write_eof():
                        self.sink.write_eof()
                return
            if item is _CUT:
                self.conn.end("truncated")
                return
            arrived, piece = item  # type: ignore[misc]
            faults = self.conn.proxy.faults  # read each time: clean() replaces it
            due = arrived + faults.latency_s
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            if faults.bandwidth_bps > 0:
                start = max(time.monotonic(), self.free_at)
                self.free_at = start + len(piece) / faults.bandwidth_bps
                await asyncio.sleep(max(0.0, self.free_at - time.monotonic()))
            self.sink.write(piece)
            await self.sink.drain()
            self.conn.delivered(self.name, len(piece))

    def _corrupt(self, data: bytes) -> bytes:
        start = self.seen
        if self.body_from is None:
            joined = self.tail + data
            found = joined.find(HANDSHAKE_END)
            if found < 0:
                self.tail = joined[-(len(HANDSHAKE_END) - 1) :]
                return data
            self.body_from = start - len(self.tail) + found + len(HANDSHAKE_END)
        faults = self.conn.proxy.faults
        rate = faults.corrupt_rate
        if self.name == "up" and faults.corrupt_rate_up is not None:
            rate = faults.corrupt_rate_up
        if rate != self.flip_rate:
            self.flip_rate = rate
            base = max(start, self.body_from)
            self.next_flip = base + self._gap() - 1 if rate > 0 else None
        end = start + len(data)
        if self.next_flip is None or self.next_flip >= end:
            return data
        altered = bytearray(data)
        while self.next_flip is not None and self.next_flip < end:
            altered[self.next_flip - start] ^= 1 << self.rng.randrange(8)
            self.conn.corrupted()
            self.next_flip += self._gap()
        return bytes(altered)

    def _gap(self) -> int:
        """Return the distance to the next flipped byte: geometric with ``flip_rate``."""
        if self.flip_rate >= 1.0:
            return 1
        return int(math.log(1.0 - self.rng.random()) / math.log(1.0 - self.flip_rate)) + 1


class _Connection:
    """A board's connection and its twin to the upstream."""

    def __init__(
        self,
        proxy: FaultProxy,
        record: ConnectionRecord,
        board: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        hub: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.record = record
        self.writers = (board[1], hub[1])
        seed = proxy.seed
        truncate = proxy.faults.truncate_bytes
        limits: list[int | None] = [None, None]
        pick = random.Random(f"{seed}/{record.number}/truncate")
        if truncate is not None:
            limits = [pick.randint(*truncate), pick.randint(*truncate)]
        self.directions = (
            _Direction(
                self, "up", board[0], hub[1], random.Random(f"{seed}/{record.number}/up"), limits[0]
            ),
            _Direction(
                self,
                "down",
                hub[0],
                board[1],
                random.Random(f"{seed}/{record.number}/down"),
                limits[1],
            ),
        )
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        for direction in self.directions:
            self.tasks.append(asyncio.create_task(self._guard(direction.read)))
            self.tasks.append(asyncio.create_task(self._guard(direction.write)))
        writers = self.tasks[1::2]
        await asyncio.wait(writers)  # both directions delivered their end (or the link was cut)
        self.end("closed")

    async def _guard(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            self.end("reset")

    def end(self, reason: str) -> None:
        """Cut both sockets (idempotent) and record why."""
        if self.record.closed is not None:
            return
        self.record.closed = time.monotonic()
        self.record.reason = reason
        counters = self.proxy.counters
        if reason == "dropped":
            counters.dropped += 1
        elif reason == "truncated":
            counters.truncated += 1
        elif reason in ("closed", "reset"):
            counters.closed += 1
        for writer in self.writers:
            writer.transport.abort()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.proxy.live.discard(self)

    def delivered(self, direction: str, count: int) -> None:
        if direction == "up":
            self.record.up += count
            self.proxy.counters.bytes_up += count
        else:
            self.record.down += count
            self.proxy.counters.bytes_down += count

    def corrupted(self) -> None:
        self.record.corrupted += 1
        self.proxy.counters.bytes_corrupted += 1

    def lift_truncation(self) -> None:
        for direction in self.directions:
            direction.limit = None


class FaultProxy:
    """Listens on ``host`` (an ephemeral port unless ``port``) and forwards every connection to
    ``upstream_host:upstream_port``, with the faults in :attr:`faults`."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.seed = seed
        self.host = host
        self.listen_port = port
        self.faults = Faults()
        self.counters = Counters()
        self.records: list[ConnectionRecord] = []
        self.live: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._refuse_until = 0.0
        self._schedule: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # -- running ------------------------------------------------------------------------------

    async def start(self) -> FaultProxy:
        """Open the listening port; return the proxy."""
        self._server = await asyncio.start_server(self._accept, self.host, self.listen_port)
        return self

    async def stop(self) -> None:
        """Stop the schedule, cut every connection and close the port."""
        self.stop_schedule()
        for conn in list(self.live):
            conn.end("stopped")
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for task in list(self._handlers):
            task.cancel()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port boards dial."""
        assert self._server is not None, "start the proxy first"
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/board") -> str:
        """Return the ws:// URL of ``path`` through the proxy."""
        return f"ws://{self.host}:{self.port}{path}"

    # -- faults -------------------------------------------------------------------------------

    def drop_all(self) -> int:
        """Cut every open connection now; return how many were cut."""
        cut = list(self.live)
        for conn in cut:
            conn.end("dropped")
        if cut:
            self.counters.drop_rounds += 1
        return len(cut)

    def drop_every(self, period_s: float, jitter: float = 0.0) -> None:
        """Cut every open connection every ``period_s`` seconds (times ``1 ± jitter``, drawn
        from the seed) until :meth:`stop_schedule` or :meth:`clean`."""
        self.stop_schedule()
        rng = random.Random(f"{self.seed}/schedule")

        async def schedule() -> None:
            while True:
                await asyncio.sleep(period_s * (1.0 + jitter * (2.0 * rng.random() - 1.0)))
                self.drop_all()

        self._schedule = asyncio.create_task(schedule())

    def stop_schedule(self) -> None:
        """Stop scheduled drops."""
        if self._schedule is not None:
            self._schedule.cancel()
            self._schedule = None

    def refuse_for(self, seconds: float) -> None:
        """Reset new connections for ``seconds`` (``math.inf``: until :meth:`accept_again`)."""
        self._refuse_until = time.monotonic() + seconds

    def accept_again(self) -> None:
        """Stop refusing new connections."""
        self._refuse_until = 0.0

    @property
    def refusing(self) -> bool:
        """True while new connections are refused."""
        return time.monotonic() < self._refuse_until

    def clean(self) -> None:
        """End every fault: no delay, truncation, corruption, scheduled drops or refusals, also
        for connections already open."""
        self.faults = Faults()
        self.stop_schedule()
        self.accept_again()
        for conn in self.live:
            conn.lift_truncation()

    # -- inside -------------------------------------------------------------------------------

    async def _dial(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # Small socket buffers towards the upstream: what the hub has sent is then mostly what
        # the board got or is about to get, as on a slow link, not megabytes parked in the
        # kernel of a loopback connection.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(
                sock, (self.upstream_host, self.upstream_port)
            )
        except OSError:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = ConnectionRecord(len(self.records) + 1, time.monotonic())
        self.records.append(record)
        if self.refusing:
            self.counters.refused += 1
            record.closed, record.reason = time.monotonic(), "refused"
            writer.transport.abort()
            return
        try:
            upstream = await self._dial()
        except OSError:
            self.counters.upstream_failed += 1
            record.closed, record.reason = time.monotonic(), "upstream_failed"
            writer.transport.abort()
            return
        self.counters.accepted += 1
        conn = _Connection(self, record, (reader, writer), upstream)
        self.live.add(conn)
        try:
            await conn.run()
        finally:
            conn.end("closed")
