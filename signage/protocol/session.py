"""The session of docs/protocol.md as a sans-I/O state machine, for either end of a link.

Feed it what the socket received (:meth:`Session.receive_text`, :meth:`Session.receive_bytes`),
take out :meth:`Session.events` and :meth:`Session.data_to_send`; ask it to send with
:meth:`Session.send`, :meth:`Session.send_chunk` and :meth:`Session.ack`. Time is passed in
(seconds on any monotonic clock). It never touches a socket, a clock or a file, so a board and
a hub session can be paired in memory (see tests/protocol/test_session.py).

Every legal step is a row of :data:`TRANSITIONS`; anything else a peer sends becomes a
:class:`Fault` event with a stable code and an error ack back to the peer, and changes nothing.
Sending something the table does not allow is a bug in our own code and raises ProtocolError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from signage.errors import ErrorCode, ProtocolError
from signage.protocol.messages import (
    MAX_CONTROL_BYTES,
    Chunk,
    Message,
    ack_fields,
    decode_chunk,
    decode_text,
    encode_chunk,
    encode_message,
    ref_of,
)


class Role(StrEnum):
    """Which end of the link a session is."""

    BOARD = "board"
    HUB = "hub"


class State(StrEnum):
    """Where a session is: START -> HELLO -> SYNC -> READY, and CLOSED at any time."""

    START = "start"  # connected; the board has not said hello yet
    HELLO = "hello"  # hello sent (board) or received (hub); waiting for welcome
    SYNC = "sync"  # welcome given; the hub sends what the board lacks
    READY = "ready"  # synced: steady state
    CLOSED = "closed"


IN, OUT = "in", "out"
CHUNK = "chunk"  # binary frames, in the table like a message type

UNANSWERED = ("welcome", "synced")  # every other message gets an ack (hello: welcome or a refusal)
_BOARD_IN = ("bundle", "alert", "command", "ack", CHUNK)
_BOARD_OUT = ("ack", "get_asset", "heartbeat", "report", CHUNK)


def _table() -> Mapping[tuple[Role, State, str, str], State]:
    rows: dict[tuple[Role, State, str, str], State] = {
        (Role.BOARD, State.START, OUT, "hello"): State.HELLO,
        (Role.BOARD, State.HELLO, IN, "welcome"): State.SYNC,
        (Role.BOARD, State.HELLO, IN, "ack"): State.HELLO,  # a refused hello, before the close
        (Role.BOARD, State.SYNC, IN, "synced"): State.READY,
        (Role.HUB, State.START, IN, "hello"): State.HELLO,
        (Role.HUB, State.HELLO, OUT, "welcome"): State.SYNC,
        (Role.HUB, State.HELLO, OUT, "ack"): State.HELLO,
        (Role.HUB, State.SYNC, OUT, "synced"): State.READY,
    }
    for state in (State.SYNC, State.READY):
        for kind in _BOARD_IN:
            rows[(Role.BOARD, state, IN, kind)] = state
            rows[(Role.HUB, state, OUT, kind)] = state
        for kind in _BOARD_OUT:
            rows[(Role.BOARD, state, OUT, kind)] = state
            rows[(Role.HUB, state, IN, kind)] = state
    return MappingProxyType(rows)


TRANSITIONS = _table()
"""(role, state, direction, message type) -> next state. A missing row is not allowed."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds a session enforces on what it receives."""

    hello_timeout_s: float = 30.0  # from connection to welcome (board) or hello (hub)
    silence_timeout_s: float = 120.0  # nothing received for this long: the peer is gone
    rate_per_s: float = 50.0  # text messages received per second, sustained
    burst: int = 500  # ... and in a burst
    max_faults: int = 100  # faults in one session before it is closed


@dataclass(frozen=True, slots=True)
class Received:
    """The peer sent a well-formed message that is allowed now."""

    message: Message


@dataclass(frozen=True, slots=True)
class ChunkReceived:
    """The peer sent a well-formed chunk of a blob."""

    chunk: Chunk


@dataclass(frozen=True, slots=True)
class Acked:
    """The peer answered one of our messages. ``kind`` is the type of the message it answers."""

    ref: str
    kind: str
    ok: bool
    error: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """Something the peer sent was refused (``code``); ``fatal`` when the session closed for it."""

    code: ErrorCode
    message: str
    ref: str | None = None
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended; the link should close the socket with ``reason``."""

    reason: str


Event = Received | ChunkReceived | Acked | Fault | Closed


@dataclass(slots=True)
class TokenBucket:
    """A rate limit: ``rate`` per second sustained, bursts of ``capacity``."""

    rate: float
    capacity: float
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        """Return True and spend one token if one is left at ``now``."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass(slots=True)
class Session:
    """One connection's protocol state, for ``role``, opened at moment ``now``."""

    role: Role
    now: float
    limits: Limits = field(default_factory=Limits)
    state: State = State.START
    faults: int = 0
    last_received: float = 0.0
    _opened: float = 0.0
    _counter: int = 0
    _awaiting: dict[str, str] = field(default_factory=dict)
    _events: list[Event] = field(default_factory=list)
    _outgoing: list[str | bytes] = field(default_factory=list)
    _bucket: TokenBucket | None = None

    def __post_init__(self) -> None:
        self._opened = self.last_received = self.now
        self._bucket = TokenBucket(
            self.limits.rate_per_s, float(self.limits.burst), float(self.limits.burst), self.now
        )

    # -- receiving ------------------------------------------------------------------------------

    def receive_text(self, data: str | bytes, now: float) -> None:
        """Take one text frame the socket received at ``now``."""
        if self.state is State.CLOSED:
            return
        self.last_received = now
        assert self._bucket is not None
        if not self._bucket.take(now):
            # A flood is not parsed: only a small frame is worth an error ack.
            ref = ref_of(data) if len(data) <= MAX_CONTROL_BYTES else None
            self._fault(ErrorCode.MESSAGE_RATE_LIMITED, "too many messages", ref)
            return
        try:
            message = decode_text(data)
        except ProtocolError as exc:
            self._fault(exc.code, str(exc), ref_of(data))
            return
        if not self._step(IN, message.type):
            self._fault(
                ErrorCode.SESSION_UNEXPECTED,
                f"a {message.type} is not allowed in state {self.state}",
                message.id if message.type != "ack" else None,
            )
            return
        if message.type == "ack":
            ref = message.fields["ref"]
            kind = self._awaiting.pop(ref, None)
            if kind is None:
                self._fault(ErrorCode.SESSION_UNEXPECTED, f"ack of unknown message {ref}")
                return
            self._events.append(
                Acked(
                    ref,
                    kind,
                    message.fields["ok"],
                    message.fields.get("error"),
                    message.fields.get("result"),
                )
            )
            return
        if message.type == "welcome":  # the answer to our hello
            self._awaiting = {k: v for k, v in self._awaiting.items() if v != "hello"}
        self._events.append(Received(message))

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Take one binary frame the socket received at ``now``."""
        if self.state is State.CLOSED:
            return
        self.last_received = now
        try:
            chunk = decode_chunk(data)
        except ProtocolError as exc:
            self._fault(exc.code, str(exc), None)
            return
        if not self._step(IN, CHUNK):
            self._fault(
                ErrorCode.SESSION_UNEXPECTED, f"a chunk is not allowed in state {self.state}"
            )
            return
        self._events.append(ChunkReceived(chunk))

    def check(self, now: float) -> None:
        """Close the session when the peer is too slow to start or has gone silent."""
        if self.state is State.CLOSED:
            return
        if self.state in (State.START, State.HELLO):
            if now - self._opened > self.limits.hello_timeout_s:
                self._close_for(ErrorCode.SESSION_TIMEOUT, "no session within the hello timeout")
        elif now - self.last_received > self.limits.silence_timeout_s:
            self._close_for(ErrorCode.SESSION_TIMEOUT, "the peer has gone silent")

    # -- sending --------------------------------------------------------------------------------

    def send(self, kind: str, fields: Mapping[str, Any] | None = None) -> str:
        """Queue a message of type ``kind``; return its id. Raises ProtocolError when the table
        does not allow it now (a bug of the caller)."""
        if kind == "ack":
            raise ProtocolError(ErrorCode.SESSION_UNEXPECTED, "use ack() to answer a message")
        ident = self._next_id()
        self._queue(kind, ident, fields or {})
        if kind not in UNANSWERED:
            self._awaiting[ident] = kind
        return ident

    def ack(
        self,
        ref: str,
        ok: bool = True,
        error: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue the answer to the peer's message ``ref``."""
        self._queue("ack", self._next_id(), ack_fields(ref, ok, error, result))

    def send_chunk(self, chunk: Chunk) -> None:
        """Queue one binary chunk."""
        if not self._step(OUT, CHUNK):
            raise ProtocolError(ErrorCode.SESSION_UNEXPECTED, f"no chunks in state {self.state}")
        self._outgoing.append(encode_chunk(chunk))

    def close(self, reason: str = "closed") -> None:
        """End the session (a Closed event follows)."""
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self._events.append(Closed(reason))

    @property
    def awaiting(self) -> Mapping[str, str]:
        """Return our messages not acknowledged yet: id -> type."""
        return MappingProxyType(self._awaiting)

    def events(self) -> list[Event]:
        """Return and forget the events since the last call."""
        out, self._events = self._events, []
        return out

    def data_to_send(self) -> list[str | bytes]:
        """Return and forget the frames to write to the socket (str: text, bytes: binary)."""
        out, self._outgoing = self._outgoing, []
        return out

    # -- inside ---------------------------------------------------------------------------------

    def _queue(self, kind: str, ident: str, fields: Mapping[str, Any]) -> None:
        if TRANSITIONS.get((self.role, self.state, OUT, kind)) is None:
            raise ProtocolError(
                ErrorCode.SESSION_UNEXPECTED, f"{self.role} cannot send {kind} in {self.state}"
            )
        frame = encode_message(kind, ident, fields)  # raises before anything changes
        self._step(OUT, kind)
        self._outgoing.append(frame)

    def _step(self, direction: str, kind: str) -> bool:
        following = TRANSITIONS.get((self.role, self.state, direction, kind))
        if following is None:
            return False
        self.state = following
        return True

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self.role.value[0]}{self._counter}"

    def _fault(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        self.faults += 1
        if ref is not None and self.state is not State.CLOSED:
            error = {"code": code.value, "message": message[:4000]}
            self._outgoing.append(
                encode_message("ack", self._next_id(), {"ref": ref, "ok": False, "error": error})
            )
        if self.faults > self.limits.max_faults:
            self._close_for(code, f"too many refused messages; last: {message}")
            return
        self._events.append(Fault(code, message, ref))

    def _close_for(self, code: ErrorCode, message: str) -> None:
        self._events.append(Fault(code, message, None, fatal=True))
        self.close(message)
