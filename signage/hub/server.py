"""The reference hub (``signage hub serve``): one port for boards, publishers and operators.

- ``/board``: boards dial in with their token and speak docs/protocol.md (a BoardChannel each).
- ``/publish``: publisher tools push signed bundles, alerts and commands, upload assets, list
  boards and ask for screenshots (docs/protocol.md §17).
- ``GET /``, ``/api/boards``, ``/metrics``, ``/api/reports/plays``, ``/screenshots/ID.png``:
  the operator's status page and its data; they need the operator token (header, or the cookie
  set by ``/login?token=…``). ``/healthz`` answers without one.

The hub checks every signature and scope before it stores or relays a document, but boards do
not trust it: they check again. What the hub learns from heartbeats is kept in memory and
written to the registry every few seconds in one transaction, so thousands of boards cost one
write, not thousands.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import resource
import signal
import ssl
import time
import tomllib
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from signage import __version__
from signage.board.config import ConfigReader, check_sections
from signage.errors import ConfigError, ErrorCode, HubError, ProtocolError, SignageError
from signage.hub.channel import BoardChannel
from signage.hub.registry import (
    BoardSeen,
    Principal,
    Registry,
    SqliteRegistry,
    StoredAlert,
    StoredBundle,
)
from signage.hub.status import (
    board_rows,
    login_page,
    metrics_text,
    plays_csv,
    status_page,
)
from signage.model import DEFAULT_TIMEZONE
from signage.protocol import (
    MAX_FROM_BOARD_BYTES,
    MAX_TEXT_BYTES,
    PUBLISHER_SCHEMAS,
    Acked,
    Chunk,
    Fault,
    PublicKey,
    TokenBucket,
    Trust,
    accept_alert,
    accept_bundle,
    accept_command,
    ack_fields,
    area_within,
    canonical_envelope,
    decode_chunk,
    decode_text,
    encode_chunk,
    encode_message,
    iter_chunks,
    ref_of,
)
from signage.store import fsync_dir, write_atomically

log = logging.getLogger("signage.hub")

COOKIE = "signage_operator"
GROUP_COMMIT_S = 0.05  # report batches arriving within this share one fsync of the registry
_HUB_KEYS: dict[str, set[str]] = {
    "hub": {"listen", "data_dir", "heartbeat_s", "screenshot_every_s", "compression", "timezone"},
    "tls": {"cert", "key"},
    "reports": {"retention_days"},
    "log": {"level"},
}


@dataclass(frozen=True, slots=True)
class HubConfig:
    """``hub.toml`` (see docs/configuration.md)."""

    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: Path = Path("hub-data")
    heartbeat_s: int = 30
    screenshot_every_s: int = 900  # 0: only when asked
    compression: bool = True
    timezone: str = DEFAULT_TIMEZONE
    tls_cert: Path | None = None
    tls_key: Path | None = None
    retention_days: int = 90
    log_level: str = "info"


def load_hub_config(path: Path) -> HubConfig:
    """Return the hub config in ``path``; raise ConfigError naming the bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, f"cannot read config: {exc}", path=str(path)
        ) from exc
    check_sections(data, _HUB_KEYS)
    r = ConfigReader(data, path.parent)
    listen = r.text("hub.listen", "127.0.0.1:8765")
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise r.fail("hub.listen", "expected HOST:PORT, e.g. 0.0.0.0:8765")
    cert, key = r.path("tls.cert"), r.path("tls.key")
    if (cert is None) != (key is None):
        raise r.fail("tls.cert", "give both tls.cert and tls.key, or neither")
    return HubConfig(
        host=host.strip("[]"),
        port=int(port_text),
        data_dir=r.path("hub.data_dir") or path.parent / "hub-data",
        heartbeat_s=r.integer("hub.heartbeat_s", 30, 5, 60),
        screenshot_every_s=r.integer("hub.screenshot_every_s", 900, 0, 86_400),
        compression=r.boolean("hub.compression", True),
        timezone=r.text("hub.timezone", DEFAULT_TIMEZONE),
        tls_cert=cert,
        tls_key=key,
        retention_days=r.integer("reports.retention_days", 90, 1, 3650),
        log_level=r.text("log.level", "info").lower(),
    )


@dataclass(slots=True)
class LiveBoard:
    """What the hub knows of a board beyond the registry: its connection and last status."""

    connected_since: float | None = None
    last_seen: float | None = None
    last_heartbeat: float | None = None
    status: Mapping[str, Any] | None = None
    versions: dict[str, int] = field(default_factory=dict)
    screenshot_at: float | None = None
    disconnects: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a document for one target board."""

    board: str
    outcome: str  # applied | refused | pending | offline
    error: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as it goes into a publish ack."""
        data: dict[str, Any] = {"board": self.board, "outcome": self.outcome}
        if self.error is not None:
            data["error"] = dict(self.error)
        return data


class Hub:
    """The reference hub. ``await hub.start()`` opens the port; ``await hub.stop()`` closes."""

    def __init__(
        self,
        config: HubConfig,
        registry: Registry | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.registry: Registry = registry or SqliteRegistry(config.data_dir / "registry.sqlite")
        self.clock = clock
        self.tz = ZoneInfo(config.timezone)
        self.assets_dir = config.data_dir / "assets"
        self.screens_dir = config.data_dir / "screenshots"
        self.assets_dir.mkdir(parents=True, exist_ok=True)
        self.screens_dir.mkdir(parents=True, exist_ok=True)
        self.channels: dict[str, BoardChannel] = {}
        self.live: dict[str, LiveBoard] = {}
        self.counters: Counter[str] = Counter()
        self.started = clock()
        self._area: dict[str, str] = {}  # board id -> area, for connected boards
        # Who each admitted connection is, from the handshake until its handler runs.
        self._principals: weakref.WeakKeyDictionary[ServerConnection, Principal] = (
            weakref.WeakKeyDictionary()
        )
        self._dirty: set[str] = set()
        self._bundles: list[StoredBundle] = []
        self._alerts: list[StoredAlert] = []
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._shooting: set[str] = set()
        self._shots: set[asyncio.Task[None]] = set()  # screenshots and closes in flight
        self._unseated: set[BoardChannel] = set()  # connected, hello not accepted yet
        self._next_sync: asyncio.Future[None] | None = None  # the group commit not begun yet
        self._syncing = asyncio.Lock()
        self._reload_catalog()

    # -- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the port and start the background work."""
        _raise_file_limit()
        tls = None
        if self.config.tls_cert is not None and self.config.tls_key is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        self._server = await serve(
            self._connection,
            self.config.host,
            self.config.port,
            process_request=self._request,
            compression="deflate" if self.config.compression else None,
            max_size=MAX_TEXT_BYTES,
            # Boards ping every 20 s and the session's silence timeout ends dead links: the
            # hub does not need thousands of pings of its own.
            ping_interval=None,
            open_timeout=20,
            server_header=f"signage-hub/{__version__}",
            ssl=tls,
        )
        self._tasks = [
            asyncio.create_task(self._every(1.0, self._check_sessions)),
            asyncio.create_task(self._every(5.0, self._flush)),
            asyncio.create_task(self._every(3600.0, self._prune)),
            # `signage hub publisher remove` runs in another process: pick up what it changed.
            asyncio.create_task(self._every(30.0, self._refresh)),
            asyncio.create_task(self._every(5.0, self._screenshots)),
        ]
        log.info("hub listening url=%s data=%s", self.url, self.config.data_dir)

    @property
    def port(self) -> int:
        """The port the hub listens on (useful when the config said 0)."""
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        """The hub's base URL, ``ws://host:port`` (``wss`` with TLS)."""
        scheme = "wss" if self.config.tls_cert else "ws"
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        """Close every connection and the port; write what is pending."""
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._flush()
        self.registry.close()

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    async def _every(self, period: float, work: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await work()
            except Exception:  # a failing chore must not stop the hub
                log.exception("hub chore failed chore=%s", getattr(work, "__name__", work))

    # -- HTTP and the handshake ---------------------------------------------------------------

    def _request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path, query = url.path, parse_qs(url.query)
        if path == "/board":
            return self._admit(connection, request, ("board",))
        if path == "/publish":
            return self._admit(connection, request, ("publisher", "operator"))
        if path == "/healthz":
            return _response(HTTPStatus.OK, "ok\n", "text/plain; charset=utf-8")
        if path == "/login":
            token = query.get("token", [""])[0]
            principal = self.registry.authenticate(token)
            if principal is None or principal.kind != "operator":
                self.counters["auth_failures"] += 1
                return _response(HTTPStatus.UNAUTHORIZED, login_page(True), "text/html")
            response = _response(HTTPStatus.SEE_OTHER, "", "text/plain")
            response.headers["Location"] = "/"
            secure = "; Secure" if self.config.tls_cert is not None else ""
            response.headers["Set-Cookie"] = (
                f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000{secure}"
            )
            return response
        if path not in ("/", "/api/boards", "/metrics", "/api/reports/plays") and not (
            path.startswith("/screenshots/") and path.endswith(".png")
        ):
            return _response(HTTPStatus.NOT_FOUND, "not found\n", "text/plain; charset=utf-8")
        if not self._operator(request):
            self.counters["auth_failures"] += 1
            if path == "/":
                return _response(HTTPStatus.UNAUTHORIZED, login_page(False), "text/html")
            return _response(
                HTTPStatus.UNAUTHORIZED, "operator token needed\n", "text/plain; charset=utf-8"
            )
        try:
            return self._page(path, query)
        except SignageError as exc:
            return _response(HTTPStatus.BAD_REQUEST, f"{exc}\n", "text/plain; charset=utf-8")

    def _admit(
        self, connection: ServerConnection, request: Request, kinds: tuple[str, ...]
    ) -> Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        principal = self.registry.authenticate(token) if token else None
        if principal is None or principal.kind not in kinds:
            self.counters["auth_failures"] += 1
            log.warning("refused connection path=%s peer=%s", request.path, _peer(connection))
            return _response(HTTPStatus.UNAUTHORIZED, "bad token\n", "text/plain")
        self._principals[connection] = principal
        return None

    def _operator(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token:
            for part in request.headers.get("Cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == COOKIE:
                    token = value
        principal = self.registry.authenticate(token) if token else None
        return principal is not None and principal.kind == "operator"

    def _page(self, path: str, query: Mapping[str, list[str]]) -> Response:
        now = self.clock()
        if path == "/":
            return _response(HTTPStatus.OK, status_page(self.snapshot(), now, self.tz), "text/html")
        if path == "/api/boards":
            body = json.dumps(self.snapshot(), ensure_ascii=False, indent=1)
            return _response(HTTPStatus.OK, body, "application/json")
        if path == "/metrics":
            return _response(
                HTTPStatus.OK,
                metrics_text(self.metrics()),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        if path == "/api/reports/plays":
            today = datetime.fromtimestamp(now, self.tz).date()
            first = _day(query, "from", (today - timedelta(days=6)).isoformat())
            last = _day(query, "to", today.isoformat())
            area = query.get("area", [""])[0].strip("/")
            body = plays_csv(self.registry.plays(first, last, area))
            response = _response(HTTPStatus.OK, body, "text/csv")
            response.headers["Content-Disposition"] = (
                f'attachment; filename="plays-{first}-{last}.csv"'
            )
            return response
        board = path.removeprefix("/screenshots/").removesuffix(".png")
        shot = self.screens_dir / f"{board}.png"
        if board not in self.live or not shot.is_file():
            return _response(HTTPStatus.NOT_FOUND, "no screenshot yet\n", "text/plain")
        response = _response(HTTPStatus.OK, shot.read_bytes(), "image/png")
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- what the page and the API show -------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return the state of every board and the alerts in force, as /api/boards gives it."""
        now = self.clock()
        records = self.registry.boards()
        return {
            "hub": {"software": __version__, "time": now, "started": self.started},
            "boards": board_rows(records, self.live, set(self.channels), now),
            "alerts": [
                {
                    "identifier": a.identifier,
                    "publisher": a.publisher,
                    "msgType": a.msg_type,
                    "area": a.area,
                    "expires": a.expires,
                    "headline": _headline(a.envelope),
                }
                for a in self._alerts
                if a.expires > now and a.msg_type != "Cancel" and not self._superseded(a)
            ],
        }

    def metrics(self) -> dict[str, Any]:
        """Return the figures /metrics exposes."""
        return {
            "boards_registered": len(self.registry.areas()),
            "boards_online": len(self.channels),
            "counters": dict(self.counters),
            "messages": self.counters["messages_closed"]
            + sum(c.stats.messages_in for c in self.channels.values()),
            "uptime_s": self.clock() - self.started,
        }

    # -- connections --------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection) -> None:
        principal = self._principals.pop(ws, None)
        if principal is None:  # process_request admitted it; this cannot happen
            await ws.close(1008, "no principal")
            return
        if principal.kind == "board":
            await self._board(ws, principal.id)
        else:
            await _PublisherConnection(self, ws, principal).run()

    async def _board(self, ws: ServerConnection, board_id: str) -> None:
        record = self.registry.board(board_id)
        if record is None:
            await ws.close(1008, "board removed")
            return
        # serve() admits publishers' bundle-sized frames on every path; a board never sends
        # more than a control message or a screenshot chunk, so hold its connection to that.
        ws.protocol.max_message_size = MAX_FROM_BOARD_BYTES
        self.counters["board_connections"] += 1
        channel = BoardChannel(
            ws,
            _BoardCatalog(self, record.area),
            heartbeat_s=self.config.heartbeat_s,
            listener=_Listener(self),
            own_ticker=False,
            board_id=board_id,
        )
        # Seated in self.channels only once its hello is accepted (see _seat): a board that
        # says the wrong id with this token must not push the right one off.
        self._unseated.add(channel)
        self._area[board_id] = record.area
        log.info("board connected board=%s peer=%s", board_id, _peer(ws))
        try:
            await channel.run()
        finally:
            self._unseated.discard(channel)
            self.counters["messages_closed"] += channel.stats.messages_in
            if self.channels.get(board_id) is channel:
                del self.channels[board_id]
                live = self.live.setdefault(board_id, LiveBoard())
                live.connected_since = None
                live.disconnects += 1
                live.last_seen = self.clock()
                self._dirty.add(board_id)
                log.info("board disconnected board=%s", board_id)

    def _seat(self, channel: BoardChannel, board_id: str) -> None:
        """Make ``channel`` the board's connection once its hello is accepted."""
        self._unseated.discard(channel)
        old = self.channels.get(board_id)
        if old is not None and old is not channel:
            # The newest connection wins: the old one is usually a link that died unnoticed.
            log.warning("board connected twice, closing the older connection board=%s", board_id)
            self.counters["replaced_connections"] += 1
            task = asyncio.create_task(old.ws.close(1008, "replaced by a newer connection"))
            self._shots.add(task)
            task.add_done_callback(self._shots.discard)
        self.channels[board_id] = channel
        live = self.live.setdefault(board_id, LiveBoard())
        if old is not None and old is not channel:
            live.disconnects += 1
        live.connected_since = live.last_seen = self.clock()
        self._dirty.add(board_id)

    async def _check_sessions(self) -> None:
        now = time.monotonic()
        for channel in [*self.channels.values(), *self._unseated]:
            await channel.check(now)

    async def durable(self) -> None:
        """Return once every registry write made so far survives a power cut.

        Group commit: the callers of the next GROUP_COMMIT_S share one fsync, run on a worker
        thread, so thousands of boards' report batches cost the loop no disk waits. A caller
        that comes while a sync is running waits for the next one, which starts after it.
        Raises StoreError when the disk refuses."""
        if self._next_sync is None:
            self._next_sync = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._group_commit(self._next_sync))
            self._shots.add(task)
            task.add_done_callback(self._shots.discard)
        await asyncio.shield(self._next_sync)

    async def _group_commit(self, done: asyncio.Future[None]) -> None:
        await asyncio.sleep(GROUP_COMMIT_S)
        async with self._syncing:
            if self._next_sync is done:
                self._next_sync = None  # writes from now on need the next sync
            try:
                await asyncio.to_thread(self.registry.sync)
            except Exception as exc:  # handed to every waiter
                done.set_exception(exc)
                done.exception()  # retrieved here too: no waiter may be left
            else:
                done.set_result(None)

    async def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        seen = []
        for board_id in dirty:
            live = self.live.get(board_id)
            if live is None or live.last_seen is None:
                continue
            seen.append(
                BoardSeen(board_id, live.last_seen, live.last_heartbeat, live.status, live.versions)
            )
        self.registry.save_seen(seen)

    async def _refresh(self) -> None:
        self._reload_catalog()

    async def _prune(self) -> None:
        kept = set(self.registry.prune(self.clock(), self.config.retention_days * 86_400.0))
        self._reload_catalog()
        for path in self.assets_dir.iterdir():
            if path.is_file() and path.name not in kept and len(path.name) == 64:
                path.unlink(missing_ok=True)

    async def _screenshots(self) -> None:
        every = self.config.screenshot_every_s
        if every <= 0:
            return
        now = self.clock()
        for board_id, channel in list(self.channels.items()):
            live = self.live.get(board_id)
            if (
                live is None
                or board_id in self._shooting
                or len(self._shooting) >= 4
                or not channel.ready.is_set()
                or (live.screenshot_at is not None and now - live.screenshot_at < every)
            ):
                continue
            self._shooting.add(board_id)
            task = asyncio.create_task(self._shoot(board_id, channel))
            self._shots.add(task)
            task.add_done_callback(self._shots.discard)

    async def _shoot(self, board_id: str, channel: BoardChannel) -> None:
        try:
            await self.screenshot(board_id, channel)
        except Exception as exc:  # logged; the next round tries again
            log.info("screenshot failed board=%s error=%s", board_id, exc)
            live = self.live.get(board_id)
            if live is not None:
                live.screenshot_at = self.clock()
        finally:
            self._shooting.discard(board_id)

    async def screenshot(self, board_id: str, channel: BoardChannel | None = None) -> bytes:
        """Ask a connected board for a screenshot, keep it as the board's latest and return it.
        Raises HubError (board.offline, command.failed)."""
        channel = channel or self.channels.get(board_id)
        if channel is None:
            raise HubError(ErrorCode.BOARD_OFFLINE, f"board {board_id!r} is not connected")
        try:
            ack, png = await asyncio.wait_for(channel.screenshot(), 60)
        except (TimeoutError, ConnectionError, asyncio.CancelledError) as exc:
            raise HubError(ErrorCode.COMMAND_FAILED, f"no screenshot: {exc!r}") from None
        if png is None:
            message = ack.error.get("message", "refused") if ack.error else "refused"
            raise HubError(ErrorCode.COMMAND_FAILED, f"board refused: {message}")
        write_atomically(self.screens_dir / f"{board_id}.png", png)
        self.live.setdefault(board_id, LiveBoard()).screenshot_at = self.clock()
        return png

    # -- the catalog --------------------------------------------------------------------------

    def _reload_catalog(self) -> None:
        self._bundles = self.registry.bundles()
        self._alerts = self.registry.alerts(self.clock())

    def _superseded(self, alert: StoredAlert) -> bool:
        return any(
            alert.identifier in other.references and other.publisher == alert.publisher
            for other in self._alerts
            if other.seq > alert.seq
        )

    def sync_for(self, area: str, hello: Mapping[str, Any]) -> list[tuple[str, str, bytes]]:
        """Return what a board in ``area`` that said ``hello`` lacks (see Catalog.sync)."""
        held: Mapping[str, int] = hello["held"]
        seqs: Mapping[str, int] = hello.get("seq", {})
        holding = set(hello.get("alerts", []))
        out = [
            ("bundle", f"{b.publisher}@{b.version}", b.envelope)
            for b in self._bundles
            if area_within(area, b.area) and held.get(b.publisher, 0) < b.version
        ]
        now = self.clock()
        for alert in self._alerts:
            if (
                alert.expires <= now
                or not area_within(area, alert.area)
                or alert.identifier in holding
                or alert.seq <= seqs.get(alert.publisher, 0)
            ):
                continue
            if self._superseded(alert):
                continue  # a later Update or Cancel replaces it and is sent instead
            if alert.msg_type == "Cancel" and not holding.intersection(alert.references):
                continue  # withdraws nothing this board holds
            out.append(("alert", alert.identifier, alert.envelope))
        return out

    def asset_path(self, sha256: str) -> Path | None:
        """Return the file of a stored asset, or None."""
        path = self.assets_dir / sha256
        return path if path.is_file() else None

    def asset_for(self, area: str, sha256: str) -> Path | None:
        """Return the file of asset ``sha256`` if a bundle a board in ``area`` receives names
        it, else None: a board token cannot fetch another area's (or an unpublished) asset."""
        if not any(sha256 in b.assets and area_within(area, b.area) for b in self._bundles):
            return None
        return self.asset_path(sha256)

    # -- publishing ---------------------------------------------------------------------------

    def targets(self, area: str) -> list[str]:
        """Return the ids of registered boards inside ``area``."""
        return sorted(b for b, a in self.registry.areas().items() if area_within(a, area))

    def trust_for(self, publisher_id: str) -> Trust:
        """Return a Trust holding only ``publisher_id``'s key, limited to its hub scope.
        Raises HubError (publisher.unknown)."""
        record = self.registry.publisher(publisher_id)
        if record is None:
            raise HubError(ErrorCode.PUBLISHER_UNKNOWN, f"no publisher {publisher_id!r}")
        return Trust([PublicKey(record.id, record.area, record.key.key)])

    async def publish(
        self, principal: Principal, kind: str, envelope: bytes, wait_s: float
    ) -> dict[str, Any]:
        """Check, store and fan out a signed document; return the publish ack's result.
        Raises SignageError with the reason."""
        if principal.kind != "publisher":
            raise HubError(ErrorCode.AUTH_FORBIDDEN, "only a publisher's token may publish")
        trust = self.trust_for(principal.id)
        record = self.registry.publisher(principal.id)
        assert record is not None
        now = self.clock()
        self.counters[f"published_{kind}"] += 1
        if kind == "bundle":
            newest = {b.publisher: b.version for b in self._bundles}
            bundle = accept_bundle(envelope, trust, newest, self.tz)
            for name, ref in bundle.assets.items():
                path = self.asset_path(ref.sha256)
                if path is None or path.stat().st_size != ref.size:
                    raise HubError(
                        ErrorCode.ASSET_MISSING, f"asset {name} ({ref.sha256}) not uploaded"
                    )
            self.registry.put_bundle(
                StoredBundle(
                    bundle.publisher,
                    bundle.version,
                    bundle.area,
                    tuple(sorted({r.sha256 for r in bundle.assets.values()})),
                    envelope,
                    now,
                )
            )
            self._reload_catalog()
            key = f"{bundle.publisher}@{bundle.version}"
            log.info("bundle published key=%s area=%s", key, bundle.area)
            outcomes = await self._fan_out(bundle.area, wait_s, "bundle", key, envelope)
            head = {"publisher": bundle.publisher, "version": bundle.version}
        elif kind == "alert":
            alert = accept_alert(envelope, trust, {record.id: record.last_seq})
            if alert.expires.timestamp() <= now:
                raise HubError(
                    ErrorCode.ALERT_EXPIRED,
                    f"alert {alert.identifier!r} expired at {alert.expires.isoformat()}",
                )
            if any(a.identifier == alert.identifier for a in self.registry.alerts(0.0)):
                raise HubError(
                    ErrorCode.ALERT_INVALID, f"identifier {alert.identifier!r} was used before"
                )
            self.registry.put_alert(
                StoredAlert(
                    alert.identifier,
                    alert.publisher,
                    alert.seq,
                    alert.msg_type,
                    alert.references,
                    alert.area,
                    alert.expires.timestamp(),
                    envelope,
                    now,
                )
            )
            self._reload_catalog()
            log.info("alert published identifier=%s type=%s", alert.identifier, alert.msg_type)
            outcomes = await self._fan_out(alert.area, wait_s, "alert", alert.identifier, envelope)
            head = {"identifier": alert.identifier, "msgType": alert.msg_type}
        else:
            command = accept_command(envelope, trust, {record.id: record.last_seq})
            self.registry.note_seq(record.id, command.seq)
            log.info("command published name=%s area=%s", command.name, command.area)
            fields = {"name": command.name, "signed": json.loads(envelope)}
            outcomes = await self._fan_out(command.area, wait_s, "command", "", envelope, fields)
            head = {"name": command.name}
        summary = Counter(o.outcome for o in outcomes)
        return {**head, "summary": dict(summary), "boards": [o.as_dict() for o in outcomes]}

    async def _fan_out(
        self,
        area: str,
        wait_s: float,
        kind: str,
        key: str,
        envelope: bytes,
        fields: Mapping[str, Any] | None = None,
    ) -> list[Outcome]:
        targets = self.targets(area)
        tasks: dict[str, asyncio.Task[Acked]] = {}
        offline: list[str] = []
        for board_id in targets:
            channel = self.channels.get(board_id)
            if channel is None:
                offline.append(board_id)
                continue
            self.counters["pushes"] += 1
            if fields is not None:
                work = channel.push(kind, fields)
            else:
                work = channel.deliver(kind, key, envelope)
            task = asyncio.create_task(work)
            task.add_done_callback(_retrieved)
            tasks[board_id] = task
        if tasks and wait_s > 0:
            await asyncio.wait(tasks.values(), timeout=wait_s)
        outcomes = [Outcome(b, "offline") for b in offline]
        for board_id, task in tasks.items():
            if not task.done():
                outcomes.append(Outcome(board_id, "pending"))
            elif task.cancelled() or task.exception() is not None:
                outcomes.append(Outcome(board_id, "offline"))
            else:
                ack = task.result()
                outcomes.append(Outcome(board_id, "applied" if ack.ok else "refused", ack.error))
        return sorted(outcomes, key=lambda o: o.board)

    def boards_for(self, principal: Principal) -> list[dict[str, Any]]:
        """Return the board rows a principal may see: an operator all, a publisher those in
        its scope."""
        rows: list[dict[str, Any]] = self.snapshot()["boards"]
        if principal.kind == "operator":
            return rows
        record = self.registry.publisher(principal.id)
        scope = record.area if record is not None else "\0"
        return [row for row in rows if area_within(row["area"], scope)]


class _BoardCatalog:
    """The hub's catalog as one board in ``area`` sees it."""

    def __init__(self, hub: Hub, area: str) -> None:
        self.hub = hub
        self.area = area

    def sync(self, hello: Mapping[str, Any]) -> list[tuple[str, str, bytes]]:
        return self.hub.sync_for(self.area, hello)

    def asset(self, sha256: str) -> Path | None:
        return self.hub.asset_for(self.area, sha256)


class _Listener:
    """Turns what boards say into the hub's live state, registry rows and counters."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def hello(self, channel: BoardChannel, fields: Mapping[str, Any]) -> dict[str, str] | None:
        board_id = channel.board_id
        if fields["board"] != board_id:
            self.hub.counters["hello_refused"] += 1
            return {
                "code": ErrorCode.AUTH_FORBIDDEN.value,
                "message": f"this token belongs to board {board_id!r}, not {fields['board']!r}",
            }
        board = str(fields["board"])
        self.hub._seat(channel, board)
        self.hub.live[board].versions = dict(fields["held"])
        return None

    def heartbeat(self, channel: BoardChannel, status: Mapping[str, Any]) -> None:
        board_id = channel.board_id or ""
        live = self.hub.live.setdefault(board_id, LiveBoard())
        live.last_seen = live.last_heartbeat = self.hub.clock()
        live.status = status
        content = status.get("content")
        if isinstance(content, Mapping) and isinstance(content.get("versions"), Mapping):
            live.versions = {
                str(k): v for k, v in content["versions"].items() if isinstance(v, int)
            }
        self.hub.counters["heartbeats"] += 1
        self.hub._dirty.add(board_id)

    async def reports(self, channel: BoardChannel, entries: list[Mapping[str, Any]]) -> None:
        board_id = channel.board_id or ""
        added = self.hub.registry.add_reports(board_id, entries, self.hub.clock())
        self.hub.counters["report_entries"] += added
        self.hub.counters["report_duplicates"] += len(entries) - added
        await self.hub.durable()  # the board deletes its copy on the ack

    def acked(self, channel: BoardChannel, kind: str, key: str, ack: Acked) -> None:
        board_id = channel.board_id or ""
        self.hub.counters["acks_ok" if ack.ok else "acks_refused"] += 1
        live = self.hub.live.setdefault(board_id, LiveBoard())
        if not ack.ok and ack.error is not None:
            live.last_error = f"{ack.error.get('code')}: {ack.error.get('message')}"
            log.info("board refused board=%s %s=%s error=%s", board_id, kind, key, live.last_error)
        elif kind == "bundle" and ack.result is not None:
            publisher, version = ack.result.get("publisher"), ack.result.get("version")
            if isinstance(publisher, str) and isinstance(version, int):
                live.versions[publisher] = version
                self.hub._dirty.add(board_id)

    def fault(self, channel: BoardChannel, fault: Fault) -> None:
        self.hub.counters["faults"] += 1
        self.hub.counters[f"fault:{fault.code}"] += 1


class _PublisherConnection:
    """One publisher tool's connection: requests answered by acks (docs/protocol.md §17)."""

    def __init__(self, hub: Hub, ws: ServerConnection, principal: Principal) -> None:
        self.hub = hub
        self.ws = ws
        self.principal = principal
        self.bucket = TokenBucket(20.0, 100.0, 100.0, time.monotonic())
        self.faults = 0
        self.counter = 0
        self.expected: set[str] = set()  # assets this publisher said it would upload
        self.tasks: set[asyncio.Task[None]] = set()
        self.send_lock = asyncio.Lock()

    async def run(self) -> None:
        self.hub.counters["publisher_connections"] += 1
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self._upload(frame)
                    continue
                if not self.bucket.take(time.monotonic()):
                    await self._fault(ref_of(frame), ErrorCode.MESSAGE_RATE_LIMITED, "too fast")
                    continue
                try:
                    message = decode_text(frame, PUBLISHER_SCHEMAS)
                except ProtocolError as exc:
                    await self._fault(ref_of(frame), exc.code, str(exc))
                    continue
                if message.type == "ack":
                    continue
                task = asyncio.create_task(self._answer(message.type, message.id, message.fields))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        except ConnectionClosed:
            pass
        finally:
            for task in self.tasks:
                task.cancel()

    async def _fault(self, ref: str | None, code: ErrorCode, message: str) -> None:
        self.faults += 1
        self.hub.counters["faults"] += 1
        if ref is not None:
            await self._ack(ref, False, {"code": code.value, "message": message[:4000]})
        if self.faults > 100:
            await self.ws.close(1008, "too many faults")

    async def _ack(
        self,
        ref: str,
        ok: bool,
        error: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        self.counter += 1
        fields = ack_fields(ref, ok, error, result)
        frame = encode_message("ack", f"h{self.counter}", fields, PUBLISHER_SCHEMAS)
        async with self.send_lock:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(frame)

    async def _answer(self, kind: str, ident: str, fields: Mapping[str, Any]) -> None:
        try:
            result = await self._do(kind, fields)
        except SignageError as exc:
            await self._ack(ident, False, exc.as_dict())
            return
        png = result.pop("_png", None)
        await self._ack(ident, True, result=result)
        if isinstance(png, bytes):
            async with self.send_lock:
                for chunk in iter_chunks(result["sha256"], png):
                    await self.ws.send(encode_chunk(chunk))

    async def _do(self, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        if kind == "publish":
            env = fields["signed"]
            envelope = canonical_envelope(env["key"], env["payload"], env["sig"])
            if env["key"] != self.principal.id:
                raise HubError(
                    ErrorCode.AUTH_FORBIDDEN,
                    f"signed by {env['key']!r}; this token publishes for {self.principal.id!r}",
                )
            return await self.hub.publish(
                self.principal, fields["kind"], envelope, float(fields.get("wait_s", 0))
            )
        if kind == "missing":
            missing = [sha for sha in fields["sha256"] if self.hub.asset_path(sha) is None]
            self.expected.update(missing)
            return {"missing": missing}
        if kind == "boards":
            return {"boards": self.hub.boards_for(self.principal)}
        board_id = fields["board"]
        if board_id not in {row["id"] for row in self.hub.boards_for(self.principal)}:
            raise HubError(ErrorCode.BOARD_UNKNOWN, f"no board {board_id!r} in your area")
        png = await self.hub.screenshot(board_id)
        sha = hashlib.sha256(png).hexdigest()
        return {"sha256": sha, "size": len(png), "media_type": "image/png", "_png": png}

    def _upload(self, frame: bytes) -> None:
        try:
            chunk = decode_chunk(frame)
        except ProtocolError as exc:
            log.info("publisher upload refused publisher=%s error=%s", self.principal.id, exc)
            return
        if chunk.sha256 not in self.expected:
            return
        partial = self.hub.assets_dir / f".upload-{chunk.sha256}"
        have = partial.stat().st_size if partial.exists() else 0
        if chunk.offset != have:
            partial.unlink(missing_ok=True)
            if chunk.offset != 0:
                return
        with open(partial, "ab") as out:
            out.write(chunk.data)
            if _is_last(chunk):
                # A bundle naming this asset may be accepted the moment it is in place: its
                # bytes must be on disk before its name is, or a power cut leaves a file that
                # every board refuses by hash.
                out.flush()
                os.fsync(out.fileno())
        if not _is_last(chunk):
            return
        digest = hashlib.sha256()
        with open(partial, "rb") as done:
            while block := done.read(2**20):
                digest.update(block)
        if digest.hexdigest() != chunk.sha256:
            log.warning("upload hash mismatch publisher=%s sha=%s", self.principal.id, chunk.sha256)
            partial.unlink(missing_ok=True)
            return
        os.replace(partial, self.hub.assets_dir / chunk.sha256)
        fsync_dir(self.hub.assets_dir)
        self.expected.discard(chunk.sha256)


def _retrieved(task: asyncio.Task[Acked]) -> None:
    # A delivery outlives the publish request when wait_s is short; its failure (the board
    # went away) is already what "pending"/"offline" told the publisher.
    if not task.cancelled():
        task.exception()


def _is_last(chunk: Chunk) -> bool:
    return chunk.offset + len(chunk.data) == chunk.total


def _response(status: HTTPStatus, body: str | bytes, content_type: str) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    headers = Headers()
    if content_type in ("text/html", "application/json", "text/csv"):
        content_type += "; charset=utf-8"
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(data))
    headers["Cache-Control"] = "no-store"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'"
    )
    headers["Connection"] = "close"
    return Response(status.value, status.phrase, headers, data)


def _day(query: Mapping[str, list[str]], name: str, default: str) -> str:
    text = query.get(name, [default])[0]
    try:
        return datetime.strptime(text, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise HubError(ErrorCode.USAGE, f"{name}: expected a date as YYYY-MM-DD") from None


def _headline(envelope: bytes) -> str:
    try:
        payload = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
        return str(payload.get("headline", ""))
    except (ValueError, KeyError, TypeError):
        return ""


def _peer(ws: ServerConnection) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except (TypeError, ValueError):
        return "?"


def _raise_file_limit() -> None:
    # One socket per board: the default soft limit of 1024 would cap the hub at ~1000 boards.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve_hub(config: HubConfig) -> int:
    """Run a hub until SIGINT or SIGTERM; return the exit code."""

    async def main() -> None:
        hub = Hub(config)
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, task.cancel)
        await hub.serve_forever()

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())
    log.info("hub stopped")
    return 0
