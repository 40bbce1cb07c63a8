"""The board's link to its source system: a websockets client around the sans-I/O Session.

The board dials out to ``hub.url`` with its bearer token, says hello with what it holds, and
then receives signed bundles, alerts and commands; it fetches missing assets chunk by chunk
(resuming after a reconnect), acks every message with ok or an error code, sends a heartbeat
and its outbox of reports. When the connection fails it waits with exponential backoff and full
jitter (1 s doubling up to 5 min; back to 1 s after a connection that lasted a minute).

Nothing the network says reaches the screen unverified: bundles, alerts and screen-changing
commands go through :class:`ContentSync`, which checks signatures, scope and versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from signage.board.health import software
from signage.board.sync import ContentSync, Settled
from signage.errors import ConfigError, ErrorCode, SignageError
from signage.model import Command
from signage.protocol import (
    MAX_REPORT_ENTRIES,
    MAX_TEXT_BYTES,
    Acked,
    ChunkReceived,
    Closed,
    Fault,
    Message,
    Received,
    Role,
    Session,
    iter_chunks,
)
from signage.store import PlayLog

log = logging.getLogger("signage.link")

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
CREDIT_S = 10.0  # every this many seconds a connection stayed up take one doubling off the backoff
STALL_S = 120.0  # a requested asset with no chunk for this long: the connection is dialled again
HEARTBEAT_S = 30.0  # until the hub's welcome says otherwise
TICK_S = 1.0
PING_S = 20.0
REPORT_BATCH_BYTES = 512 * 1024  # well inside a control message
REPORT_HOLD_S = 30.0  # a play report waits up to this long for others to travel with it
REPORT_EAGER_ENTRIES = 20  # this many waiting go at once


class LinkHooks(Protocol):
    """What the link asks of the rest of the board (the agent implements it)."""

    def status(self) -> dict[str, Any]:
        """Return the content, display and system parts of the heartbeat."""

    async def content_changed(self) -> None:
        """A bundle was committed: rebuild the programme."""

    async def alerts_changed(self) -> None:
        """The alerts in force changed."""

    async def run_command(self, name: str, args: dict[str, Any]) -> None:
        """Carry out a verified command (blank, unblank, power, restart, reload)."""

    async def screenshot(self) -> bytes:
        """Return a PNG of what is on screen now."""


def _quiet(task: asyncio.Task[None]) -> None:
    # The tick task ends with its connection; its error (a closed socket) is the reader's too.
    if not task.cancelled() and task.exception() is not None:
        log.debug("link tick ended reason=%s", task.exception())


# What a hub that checked what it sent cannot have meant: the bytes changed on the way.
_TRANSIT_ERRORS = frozenset(
    {
        ErrorCode.MESSAGE_MALFORMED,
        ErrorCode.SIGNATURE_INVALID,
        ErrorCode.BUNDLE_MALFORMED,
        ErrorCode.ASSET_HASH_MISMATCH,
        ErrorCode.ASSET_SIZE_MISMATCH,
    }
)


class Backoff:
    """Exponential backoff with full jitter: wait a random time in [0, min(cap, base * 2^n)]."""

    def __init__(
        self,
        rng: random.Random,
        base: float = BACKOFF_BASE_S,
        cap: float = BACKOFF_CAP_S,
    ) -> None:
        self.rng = rng
        self.base = base
        self.cap = cap
        self.attempt = 0

    def ceiling(self) -> float:
        """Return the longest the next wait may be."""
        return min(self.cap, self.base * 2.0 ** min(self.attempt, 32))

    def next(self) -> float:
        """Return the next wait in seconds and count the attempt."""
        delay = self.rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``base``."""
        self.attempt = 0

    def credit(self, seconds_up: float) -> None:
        """Take one doubling off for every CREDIT_S seconds a connection stayed up.

        A link that drops every 45 s (a flapping 3G cell, a NAT that forgets) keeps its waits
        short, while a hub that fails right after every hello still sees the waits grow."""
        self.attempt = max(0, self.attempt - int(max(0.0, seconds_up) // CREDIT_S))


@dataclass(slots=True)
class LinkStats:
    """What the heartbeat and diagnostics say about the link."""

    state: str = "offline"
    connects: int = 0
    reconnects: int = 0
    connected_since: float | None = None
    last_disconnect: float | None = None
    last_disconnect_reason: str | None = None
    last_error: str | None = None
    rtt_ms: float | None = None
    bytes_received: int = 0
    assets_received: int = 0
    faults: int = 0  # frames and documents from the hub refused as unreadable or corrupt
    resyncs: int = 0  # connections ended by the board to have those sent again

    def to_json(self) -> dict[str, Any]:
        """Return the statistics for the heartbeat (times as Unix seconds)."""
        return {
            "state": self.state,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "connected_since": self.connected_since,
            "last_disconnect": self.last_disconnect,
            "last_disconnect_reason": self.last_disconnect_reason,
            "last_error": self.last_error,
            "rtt_ms": self.rtt_ms,
            "bytes_received": self.bytes_received,
            "assets_received": self.assets_received,
            "faults": self.faults,
            "resyncs": self.resyncs,
        }


def check_url(url: str, allow_insecure: bool) -> None:
    """Refuse a hub URL the board must not use. Raises ConfigError (config.invalid): not ws or
    wss, no host, or plain ws to anything but loopback without ``hub.allow_insecure``."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, "expected wss://host[:port]/path", path="hub.url"
        )
    if parts.scheme == "ws" and not allow_insecure and not _loopback(parts.hostname):
        raise ConfigError(
            ErrorCode.CONFIG_INVALID,
            "plain ws:// is allowed only to this machine; use wss:// (or set"
            " hub.allow_insecure = true on a closed network)",
            path="hub.url",
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ssl_context(url: str, ca_file: Path | None) -> ssl.SSLContext | None:
    """Return the TLS context for a wss URL: the system CAs, or only ``ca_file`` when given."""
    if urlsplit(url).scheme != "wss":
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, f"cannot load CA file: {exc}", path="hub.ca_file"
        ) from exc


def read_token(path: Path | None) -> str:
    """Return the bearer token in ``path``. Raises ConfigError when missing or empty."""
    if path is None:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, "a hub needs a token file", path="hub.token_file"
        )
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, f"cannot read: {exc}", path="hub.token_file"
        ) from exc
    if not token or any(c.isspace() for c in token) or len(token) > 512:
        raise ConfigError(ErrorCode.CONFIG_INVALID, "expected one token", path="hub.token_file")
    return token


class Link:
    """Keeps the board connected to its hub until :meth:`stop`."""

    def __init__(
        self,
        url: str,
        token: str,
        board_id: str,
        sync: ContentSync,
        journal: PlayLog,
        hooks: LinkHooks,
        tz: ZoneInfo,
        *,
        ca_file: Path | None = None,
        allow_insecure: bool = False,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff_base_s: float = BACKOFF_BASE_S,
        report_hold_s: float = REPORT_HOLD_S,
    ) -> None:
        check_url(url, allow_insecure)
        self.url = url
        self.token = token
        self.board_id = board_id
        self.sync = sync
        self.journal = journal
        self.hooks = hooks
        self.tz = tz
        self.ssl = ssl_context(url, ca_file)
        self.clock = clock
        self.backoff = Backoff(rng or random.Random(), base=backoff_base_s)
        self.stats = LinkStats()
        self.heartbeat_s = HEARTBEAT_S
        self._stop = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._session: Session | None = None
        self._send_lock = asyncio.Lock()
        self._reports: dict[str, list[int]] = {}  # report message id -> outbox seqs
        self._sent_at: dict[str, float] = {}  # heartbeat id -> when sent
        self._requested: dict[str, str] = {}  # asset sha256 -> get_asset message id
        self._progress_at = 0.0  # when a requested asset last moved (clock)
        self._up_at: float | None = None  # when this connection's welcome arrived (clock)
        self._resync: str | None = None  # why this connection must end and be dialled again
        self.report_hold_s = report_hold_s
        self._held_since: float | None = None  # when the reports now waiting began to wait
        self._eager = True  # the first batch of a connection goes at once (the backlog)

    @property
    def resyncing(self) -> bool:
        """True while this connection is being ended to have broken documents sent again."""
        return self._resync is not None

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve the session, reconnect with backoff; return after :meth:`stop`."""
        while not self._stop.is_set():
            connects = self.stats.connects
            reason = "closed"
            try:
                async with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    ssl=self.ssl,
                    max_size=MAX_TEXT_BYTES,
                    ping_interval=PING_S,
                    ping_timeout=PING_S,
                    open_timeout=20,
                    close_timeout=5,
                    user_agent_header=f"signage-board/{software()}",
                ) as ws:
                    await self._serve(ws)
            except InvalidStatus as exc:
                reason = f"hub refused the connection: HTTP {exc.response.status_code}"
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except SignageError as exc:
                reason = str(exc)
            except Exception as exc:
                # A bug must cost one connection, not the link: the board keeps dialling (the
                # content it stored plays on meanwhile).
                log.exception("link failed unexpectedly")
                reason = f"unexpected {type(exc).__name__}: {exc}"
            finally:
                up_s = 0.0 if self._up_at is None else self.clock() - self._up_at
                if self._resync is not None:
                    reason = f"resync: {self._resync}"
                self._disconnected()
            if self._stop.is_set():
                break
            self.backoff.credit(up_s)
            self._record_disconnect(reason, was_connected=self.stats.connects > connects)
            delay = self.backoff.next()
            log.info("link down reason=%s retry_in_s=%.1f", reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def stop(self) -> None:
        """Close the connection and end :meth:`run`."""
        self._stop.set()
        if self._ws is not None:
            await self._ws.close()

    # -- one connection -----------------------------------------------------------------------

    async def _serve(self, ws: ClientConnection) -> None:
        now = self.clock()
        self._ws = ws
        self._session = session = Session(Role.BOARD, now)
        self.stats.connects += 1
        if self.stats.connects > 1:
            self.stats.reconnects += 1
        self.stats.state = "hello"
        held = await asyncio.get_running_loop().run_in_executor(None, self.sync.held)
        session.send(
            "hello",
            {"board": self.board_id, "software": software(), **held},
        )
        await self._flush()
        ticker = asyncio.create_task(self._tick(session))
        ticker.add_done_callback(_quiet)
        try:
            async for frame in ws:
                received = self.clock()
                if isinstance(frame, str):
                    self.stats.bytes_received += len(frame)
                    session.receive_text(frame, received)
                else:
                    self.stats.bytes_received += len(frame)
                    session.receive_bytes(frame, received)
                await self._handle(session)
                await self._flush()
                if session.state == "closed" or self._resync is not None:
                    break
        finally:
            ticker.cancel()

    async def _tick(self, session: Session) -> None:
        last_heartbeat = -1e9
        while True:
            await asyncio.sleep(TICK_S)
            now = self.clock()
            session.check(now)
            if session.state in ("sync", "ready"):
                if now - last_heartbeat >= self.heartbeat_s:
                    last_heartbeat = now
                    self._heartbeat(session)
                self._send_reports(session)
                if self._requested and now - self._progress_at > STALL_S:
                    self._must_resync(f"no asset data for {STALL_S:.0f} s")
            await self._handle(session)
            await self._flush()
            if (session.state == "closed" or self._resync is not None) and self._ws is not None:
                await self._ws.close()
                return

    async def _flush(self) -> None:
        session, ws = self._session, self._ws
        if session is None or ws is None:
            return
        async with self._send_lock:
            for frame in session.data_to_send():
                await ws.send(frame)

    async def _handle(self, session: Session) -> None:
        for event in session.events():
            if isinstance(event, Received):
                await self._message(session, event.message)
            elif isinstance(event, ChunkReceived):
                await self._chunk(session, event)
            elif isinstance(event, Acked):
                await self._acked(session, event)
            elif isinstance(event, Fault):
                self.stats.last_error = f"{event.code}: {event.message}"
                self.stats.faults += 1
                log.warning(
                    "link fault code=%s fatal=%s message=%s", event.code, event.fatal, event.message
                )
                if event.code in _TRANSIT_ERRORS:
                    self._must_resync(
                        f"unreadable frame from the hub ({event.code}: {event.message[:200]})"
                    )
            elif isinstance(event, Closed):
                log.info("session closed reason=%s", event.reason)

    # -- messages from the hub ------------------------------------------------------------------

    async def _message(self, session: Session, message: Message) -> None:
        kind = message.type
        if kind == "welcome":
            self.heartbeat_s = float(message.fields["heartbeat_s"])
            self.stats.state = "sync"
            self.stats.connected_since = time.time()
            self._up_at = self.clock()
            self._eager = True
            self._event(
                "connected", reconnects=self.stats.reconnects, session=message.fields["session"]
            )
            log.info("link up url=%s session=%s", self.url, message.fields["session"])
            self._heartbeat(session)
        elif kind == "synced":
            self.stats.state = "ready"
            log.info("link synced")
        elif kind == "bundle":
            await self._bundle(session, message)
        elif kind == "alert":
            await self._alert(session, message)
        elif kind == "command":
            await self._command(session, message)

    async def _bundle(self, session: Session, message: Message) -> None:
        loop = asyncio.get_running_loop()
        try:
            missing = await loop.run_in_executor(
                None, self.sync.offer_bundle, message.signed(), message.id
            )
        except SignageError as exc:
            self._refuse(session, message, exc)
            return
        for ref in missing:
            if ref.sha256 not in self._requested:
                self._request(session, ref.sha256)
        await self._settle(session)

    def _request(self, session: Session, sha256: str) -> None:
        offset = self.sync.store.partial_size(sha256)
        ref = self.sync.wanted().get(sha256)
        if ref is not None and offset >= ref.size:
            # A crash after the last write: the download is whole, or wrong; check it here.
            try:
                self.sync.store.finish_partial(ref)
                return
            except SignageError:
                offset = 0
        self._requested[sha256] = session.send("get_asset", {"sha256": sha256, "offset": offset})
        self._progress_at = self.clock()

    async def _chunk(self, session: Session, event: ChunkReceived) -> None:
        chunk = event.chunk
        try:
            done = self.sync.chunk(chunk)
        except SignageError as exc:
            if exc.code == ErrorCode.ASSET_OUT_OF_ORDER:
                return  # a stale chunk from before a re-request; the download resumes as asked
            log.warning("asset refused sha256=%s reason=%s", chunk.sha256, exc)
            if chunk.sha256 in self._requested:
                self.sync.fail_asset(chunk.sha256, exc)
                self._transit(exc)
            self._requested.pop(chunk.sha256, None)
            await self._settle(session)
            return
        self._progress_at = self.clock()
        if done:
            self.stats.assets_received += 1
            self._requested.pop(chunk.sha256, None)
            await self._settle(session)

    async def _settle(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        settled: list[Settled] = await loop.run_in_executor(None, self.sync.settle)
        changed = False
        for outcome in settled:
            bundle = outcome.bundle
            if outcome.error is None:
                changed = True
                session.ack(
                    outcome.ref,
                    True,
                    result={"publisher": bundle.publisher, "version": bundle.version},
                )
                self._event("bundle_applied", publisher=bundle.publisher, version=bundle.version)
            else:
                session.ack(outcome.ref, False, outcome.error.as_dict())
                self._event(
                    "bundle_refused",
                    publisher=bundle.publisher,
                    version=bundle.version,
                    error=outcome.error.as_dict(),
                )
        if changed:
            await self.hooks.content_changed()

    def _refuse(self, session: Session, message: Message, exc: SignageError) -> None:
        """Answer a refused bundle or alert with its error; the screen stays as it was."""
        log.warning("%s refused reason=%s", message.type, exc)
        self.sync.last_error = exc
        self._event(f"{message.type}_refused", error=exc.as_dict())
        session.ack(message.id, False, exc.as_dict())
        self._transit(exc)

    def _transit(self, exc: SignageError) -> None:
        """A document or asset the hub had checked arrived broken: count it, and end this
        connection so that the next hello has it sent again (plain ws:// has no integrity of
        its own; over wss:// TLS turns such damage into a reset)."""
        if exc.code in _TRANSIT_ERRORS:
            self.stats.faults += 1
            self._must_resync(f"{exc.code.value} from the hub")

    def _must_resync(self, why: str) -> None:
        if self._resync is None:
            self._resync = why
            log.warning("link resync: %s; dialling again", why)

    async def _alert(self, session: Session, message: Message) -> None:
        try:
            alert = self.sync.offer_alert(message.signed())
        except SignageError as exc:
            self._refuse(session, message, exc)
            return
        session.ack(message.id, True, result={"identifier": alert.identifier})
        self._event("alert_applied", identifier=alert.identifier, msgType=alert.msg_type)
        await self.hooks.alerts_changed()

    async def _command(self, session: Session, message: Message) -> None:
        name = str(message.fields["name"])
        try:
            if name == "screenshot":
                png = await self.hooks.screenshot()
                digest = hashlib.sha256(png).hexdigest()
                session.ack(
                    message.id,
                    True,
                    result={"sha256": digest, "size": len(png), "media_type": "image/png"},
                )
                for chunk in iter_chunks(digest, png):
                    session.send_chunk(chunk)
                return
            args: dict[str, Any] = {}
            if "signed" in message.fields:
                command: Command = self.sync.peek_command(message.signed())
                if command.name != name:
                    raise SignageError(
                        ErrorCode.COMMAND_INVALID,
                        f"message says {name!r} but the signed command is {command.name!r}",
                    )
                command = self.sync.offer_command(message.signed())
                args = dict(command.args)
            await self.hooks.run_command(name, args)
        except SignageError as exc:
            log.warning("command refused name=%s reason=%s", name, exc)
            self._event("command_refused", name=name, error=exc.as_dict())
            session.ack(message.id, False, exc.as_dict())
            return
        except Exception as exc:  # a command must never take the link down
            log.error("command failed name=%s", name, exc_info=True)
            error = {
                "code": ErrorCode.COMMAND_FAILED.value,
                "message": str(exc) or type(exc).__name__,
            }
            session.ack(message.id, False, error)
            return
        self._event("command", name=name)
        session.ack(message.id, True)

    async def _acked(self, session: Session, event: Acked) -> None:
        if event.kind == "report":
            seqs = self._reports.pop(event.ref, [])
            if event.ok:
                self.journal.acknowledge(seqs)
        elif event.kind == "heartbeat":
            sent = self._sent_at.pop(event.ref, None)
            if sent is not None:
                self.stats.rtt_ms = round((self.clock() - sent) * 1000, 1)
        elif event.kind == "get_asset" and not event.ok:
            sha = next((s for s, i in self._requested.items() if i == event.ref), None)
            if sha is not None:
                del self._requested[sha]
                code = (event.error or {}).get("code", ErrorCode.ASSET_MISSING.value)
                message = (event.error or {}).get("message", "the hub cannot send it")
                error = SignageError(ErrorCode.ASSET_MISSING, f"hub: {code}: {message}", path=sha)
                self.sync.fail_asset(sha, error)
                await self._settle(session)
        if not event.ok and event.kind not in ("get_asset",):
            log.warning("hub refused %s error=%s", event.kind, event.error)

    # -- heartbeat and reports ----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Return the heartbeat's status: the agent's parts and the link's (docs/protocol.md
        §11)."""
        status = dict(self.hooks.status())
        status["board"] = self.board_id
        status["software"] = software()
        status["time"] = datetime.now(self.tz).isoformat(timespec="seconds")
        status["link"] = self.stats.to_json()
        status["outbox"] = self.journal.pending_count()
        error = self.sync.last_error
        if error is not None and "last_error" not in status:
            status["last_error"] = error.as_dict()
        return status

    def _heartbeat(self, session: Session) -> None:
        ident = session.send("heartbeat", {"status": self.status()})
        self._sent_at = {ident: self.clock()}

    def _send_reports(self, session: Session) -> None:
        """Send the oldest waiting reports, one batch in flight at a time. A play report waits
        up to ``report_hold_s`` for others (a board showing 10-second slides sends one batch of
        three every 30 s, not three batches: a third of the hub's work per board); events, a
        backlog of REPORT_EAGER_ENTRIES and the first batch after connecting go at once."""
        if self._reports:
            return  # one batch in flight at a time
        entries = self.journal.pending(MAX_REPORT_ENTRIES)
        if not entries:
            self._held_since = None
            self._eager = False
            return
        now = self.clock()
        if self._held_since is None:
            self._held_since = now
        due = (
            self._eager
            or now - self._held_since >= self.report_hold_s
            or len(entries) >= REPORT_EAGER_ENTRIES
            or any(entry.kind != "play" for entry in entries)
        )
        if not due:
            return
        self._eager = False
        self._held_since = None
        size = 0
        for count, entry in enumerate(entries):
            size += len(json.dumps(entry.to_json(), ensure_ascii=False).encode()) + 1
            if size > REPORT_BATCH_BYTES and count > 0:
                entries = entries[:count]
                break
        if entries:
            ident = session.send("report", {"entries": [e.to_json() for e in entries]})
            self._reports[ident] = [e.seq for e in entries]

    def _event(self, kind: str, **data: Any) -> None:
        try:
            self.journal.event(kind, datetime.now(self.tz), **data)
        except SignageError as exc:
            log.error("outbox write failed reason=%s", exc)

    def _disconnected(self) -> None:
        if self._resync is not None:
            self.stats.resyncs += 1
        self._resync = None
        self._up_at = None
        self._ws = None
        self._session = None
        self._reports.clear()
        self._requested.clear()
        self._sent_at.clear()
        self.sync.forget_pending()  # the hub sends them again after the next hello
        self.stats.connected_since = None
        self.stats.state = "offline"

    def _record_disconnect(self, reason: str, was_connected: bool) -> None:
        self.stats.last_error = reason
        if was_connected:  # failed attempts while offline are not events, only the loss
            self.stats.last_disconnect = time.time()
            self.stats.last_disconnect_reason = reason
            self._event("disconnected", reason=reason)
