"""The sans-I/O session: a board and a hub paired in memory, with a fake clock and no socket."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from signage.errors import ErrorCode, ProtocolError, SigningError
from signage.model import bundle_to_json
from signage.protocol import PrivateKey, Trust, accept_bundle
from signage.protocol.messages import (
    CHUNK_BYTES,
    SCHEMAS,
    Chunk,
    decode_text,
    encode_chunk,
    encode_message,
    iter_chunks,
)
from signage.protocol.session import (
    CHUNK,
    IN,
    OUT,
    TRANSITIONS,
    UNANSWERED,
    Acked,
    ChunkReceived,
    Closed,
    Event,
    Fault,
    Limits,
    Received,
    Role,
    Session,
    State,
)

SHA = "5" * 64
ENVELOPE = {"v": 1, "key": "tinh-62", "payload": "e30=", "sig": "AAAA"}
FIELDS: dict[str, dict[str, Any]] = {
    "hello": {
        "board": "sa-thay-01",
        "software": "signage 0.1.0",
        "held": {"tinh-62": 4},
        "assets": [SHA],
    },
    "welcome": {"session": "s-1", "heartbeat_s": 30, "time": "2026-11-26T17:00:00+07:00"},
    "synced": {},
    "bundle": {"signed": ENVELOPE},
    "alert": {"signed": ENVELOPE},
    "command": {"name": "reload"},
    "get_asset": {"sha256": SHA, "offset": 0},
    "heartbeat": {"status": {"uptime_s": 60}},
    "report": {
        "entries": [{"seq": 1, "kind": "played", "at": "2026-11-26T17:00:05+07:00", "data": {}}]
    },
    "ack": {"ref": "x1", "ok": True},
}
LIVE = (State.START, State.HELLO, State.SYNC, State.READY)


def other(role: Role) -> Role:
    return Role.HUB if role is Role.BOARD else Role.BOARD


def deliver(source: Session, target: Session, now: float) -> int:
    """Move every frame ``source`` wants to send into ``target``; return how many moved."""
    frames = source.data_to_send()
    for frame in frames:
        if isinstance(frame, str):
            target.receive_text(frame, now)
        else:
            target.receive_bytes(frame, now)
    return len(frames)


def frame(kind: str, ident: str = "p99", **changes: Any) -> str:
    return encode_message(kind, ident, {**FIELDS[kind], **changes})


def paired(
    upto: State = State.READY, limits: Limits | None = None, now: float = 0.0
) -> tuple[Session, Session]:
    """Return (board, hub) opened at ``now`` and walked through the handshake to ``upto``."""
    board = Session(Role.BOARD, now, limits or Limits())
    hub = Session(Role.HUB, now, limits or Limits())
    if upto is State.START:
        return board, hub
    board.send("hello", FIELDS["hello"])
    deliver(board, hub, now)
    if upto is not State.HELLO:
        hub.send("welcome", FIELDS["welcome"])
        deliver(hub, board, now)
    if upto is State.READY:
        hub.send("synced")
        deliver(hub, board, now)
    assert board.state is upto and hub.state is upto
    board.events()
    hub.events()
    return board, hub


def session_in(role: Role, state: State) -> tuple[Session, Session]:
    """Return (session of ``role`` in ``state``, its peer)."""
    board, hub = paired(state)
    return (board, hub) if role is Role.BOARD else (hub, board)


def error_acks(session: Session) -> list[dict[str, Any]]:
    """Return the refusing acks ``session`` wants to send, as parsed messages."""
    out = []
    for data in session.data_to_send():
        assert isinstance(data, str)
        message = decode_text(data)
        assert message.type == "ack" and message.fields["ok"] is False
        out.append(dict(message.fields))
    return out


# -- the table ----------------------------------------------------------------------------------


def test_every_row_of_the_table_is_consistent() -> None:
    kinds = set(SCHEMAS) | {CHUNK}
    for (role, state, direction, kind), following in TRANSITIONS.items():
        assert isinstance(role, Role) and isinstance(state, State)
        assert isinstance(following, State)
        assert direction in (IN, OUT)
        assert kind in kinds
        assert state is not State.CLOSED and following is not State.CLOSED
        assert following is not State.START
        # a step never goes backwards: START < HELLO < SYNC < READY
        assert LIVE.index(following) >= LIVE.index(state)
        # what one end may send in a state the other end may receive in that same state
        mirror = (other(role), state, IN if direction == OUT else OUT, kind)
        assert TRANSITIONS.get(mirror) is following, mirror
    used = {kind for (_, _, _, kind) in TRANSITIONS}
    assert used == kinds


def test_the_table_is_the_handshake_of_the_protocol() -> None:
    assert TRANSITIONS[(Role.BOARD, State.START, OUT, "hello")] is State.HELLO
    assert TRANSITIONS[(Role.HUB, State.START, IN, "hello")] is State.HELLO
    assert TRANSITIONS[(Role.HUB, State.HELLO, OUT, "welcome")] is State.SYNC
    assert TRANSITIONS[(Role.BOARD, State.SYNC, IN, "synced")] is State.READY
    # only hello leaves START, and nobody but the board speaks first
    from_start = {key: value for key, value in TRANSITIONS.items() if key[1] is State.START}
    assert set(from_start) == {
        (Role.BOARD, State.START, OUT, "hello"),
        (Role.HUB, State.START, IN, "hello"),
    }
    # documents flow hub -> board only; reports and heartbeats board -> hub only
    for kind in ("bundle", "alert", "command", "welcome", "synced"):
        assert not any(k[0] is Role.BOARD and k[2] == OUT and k[3] == kind for k in TRANSITIONS)
    for kind in ("hello", "get_asset", "heartbeat", "report"):
        assert not any(k[0] is Role.HUB and k[2] == OUT and k[3] == kind for k in TRANSITIONS)


# -- the handshake ------------------------------------------------------------------------------


def test_hello_welcome_synced_reaches_ready_on_both_ends() -> None:
    board = Session(Role.BOARD, 10.0)
    hub = Session(Role.HUB, 10.0)
    assert board.state is State.START and hub.state is State.START
    hello_id = board.send("hello", FIELDS["hello"])
    assert board.state is State.HELLO and board.awaiting == {hello_id: "hello"}
    assert deliver(board, hub, 10.5) == 1
    assert hub.state is State.HELLO
    (received,) = hub.events()
    assert isinstance(received, Received)
    assert received.message.type == "hello" and received.message.id == hello_id
    assert dict(received.message.fields) == FIELDS["hello"]

    hub.send("welcome", FIELDS["welcome"])
    assert hub.state is State.SYNC and hub.awaiting == {}  # a welcome is never acked
    deliver(hub, board, 11.0)
    assert board.state is State.SYNC
    assert board.awaiting == {}  # the welcome answered the hello
    (welcome,) = board.events()
    assert isinstance(welcome, Received) and welcome.message.type == "welcome"

    hub.send("synced")
    assert hub.state is State.READY
    deliver(hub, board, 11.5)
    assert board.state is State.READY
    (synced,) = board.events()
    assert isinstance(synced, Received) and synced.message.type == "synced"
    assert board.faults == hub.faults == 0
    assert board.data_to_send() == [] and hub.data_to_send() == []


def test_the_hub_may_refuse_a_hello() -> None:
    board, hub = paired(State.HELLO)
    hello_id = next(iter(board.awaiting))
    error = {"code": "signature.unknown_key", "message": "board not registered"}
    hub.ack(hello_id, ok=False, error=error)
    assert hub.state is State.HELLO
    deliver(hub, board, 1.0)
    assert board.events() == [Acked(hello_id, "hello", False, error, None)]
    assert board.state is State.HELLO and board.awaiting == {}


def test_ids_are_unique_and_name_the_role() -> None:
    board, hub = paired()
    ids = [board.send("heartbeat", FIELDS["heartbeat"]) for _ in range(5)]
    assert len(set(ids)) == 5 and all(i.startswith("b") for i in ids)
    assert hub.send("bundle", FIELDS["bundle"]).startswith("h")


# -- documents and assets -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate("tinh-62", "62")


def _bundle(version: int) -> bytes:
    return bundle_to_json(
        {
            "bundle": 1,
            "publisher": "tinh-62",
            "version": version,
            "issued": "2026-11-26T17:00:00+07:00",
            "area": "62/23456",
            "items": [
                {
                    "id": "tb-1",
                    "template": "announcement",
                    "fields": {"title": "Thông báo", "body": "Họp dân lúc 19 giờ"},
                }
            ],
        }
    )


def test_bundle_and_ack_round_trip(key: PrivateKey) -> None:
    board, hub = paired()
    trust = Trust([key.public()])
    applied: dict[str, int] = {}
    for version, expect_ok in ((5, True), (5, False)):
        ident = hub.send("bundle", {"signed": json.loads(key.sign(_bundle(version)))})
        assert hub.awaiting[ident] == "bundle"
        deliver(hub, board, 2.0)
        (event,) = board.events()
        assert isinstance(event, Received) and event.message.id == ident
        try:
            bundle = accept_bundle(event.message.signed(), trust, applied, board_area="62/23456")
        except SigningError as exc:
            board.ack(ident, ok=False, error=exc.as_dict())
        else:
            applied[bundle.publisher] = bundle.version
            board.ack(ident, result={"version": bundle.version})
        deliver(board, hub, 2.5)
        (acked,) = hub.events()
        assert isinstance(acked, Acked)
        assert (acked.ref, acked.kind, acked.ok) == (ident, "bundle", expect_ok)
        if expect_ok:
            assert acked.result == {"version": 5} and acked.error is None
        else:
            assert acked.error is not None
            assert acked.error["code"] == ErrorCode.BUNDLE_VERSION_NOT_NEWER.value
        assert ident not in hub.awaiting
    assert board.state is State.READY and hub.state is State.READY


def test_documents_may_flow_during_sync() -> None:
    board, hub = paired(State.SYNC)
    ident = hub.send("alert", FIELDS["alert"])
    deliver(hub, board, 1.0)
    assert [type(e) for e in board.events()] == [Received]
    board.ack(ident)
    deliver(board, hub, 1.0)
    assert hub.events() == [Acked(ident, "alert", True)]
    assert board.state is State.SYNC and hub.state is State.SYNC


def test_get_asset_is_answered_by_an_ack_and_chunks() -> None:
    blob = bytes(range(256)) * (CHUNK_BYTES * 9 // 4 // 256)
    digest = hashlib.sha256(blob).hexdigest()
    board, hub = paired()
    ident = board.send("get_asset", {"sha256": digest, "offset": 0})
    deliver(board, hub, 3.0)
    (request,) = hub.events()
    assert isinstance(request, Received) and request.message.type == "get_asset"
    hub.ack(request.message.id, result={"size": len(blob)})
    for chunk in iter_chunks(request.message.fields["sha256"], blob):
        hub.send_chunk(chunk)
    assert deliver(hub, board, 3.5) == 1 + 3
    events = board.events()
    assert events[0] == Acked(ident, "get_asset", True, None, {"size": len(blob)})
    chunks = [e.chunk for e in events[1:] if isinstance(e, ChunkReceived)]
    assert len(chunks) == 3 == len(events) - 1
    assert [c.offset for c in chunks] == [0, CHUNK_BYTES, 2 * CHUNK_BYTES]
    assert chunks[-1].last and not chunks[0].last
    assembled = b"".join(c.data for c in chunks)
    assert assembled == blob and hashlib.sha256(assembled).hexdigest() == digest


def test_a_board_resumes_an_asset_from_an_offset() -> None:
    blob = b"anh-dong-lua" * 1000
    digest = hashlib.sha256(blob).hexdigest()
    board, hub = paired()
    board.send("get_asset", {"sha256": digest, "offset": 5000})
    deliver(board, hub, 3.0)
    (request,) = hub.events()
    assert isinstance(request, Received)
    hub.ack(request.message.id)
    for chunk in iter_chunks(digest, blob, offset=request.message.fields["offset"]):
        hub.send_chunk(chunk)
    deliver(hub, board, 3.0)
    chunks = [e.chunk for e in board.events() if isinstance(e, ChunkReceived)]
    assert chunks[0].offset == 5000 and chunks[-1].last
    assert blob[:5000] + b"".join(c.data for c in chunks) == blob


def test_a_board_may_send_a_screenshot_as_chunks() -> None:
    board, hub = paired()
    board.send_chunk(Chunk(SHA, 0, 4, b"\x89PNG"))
    deliver(board, hub, 1.0)
    assert hub.events() == [ChunkReceived(Chunk(SHA, 0, 4, b"\x89PNG"))]


# -- what the table forbids ---------------------------------------------------------------------

_FORBIDDEN_IN = [
    (role, state, kind)
    for role in Role
    for state in LIVE
    for kind in sorted(SCHEMAS)
    if kind != "ack" and (role, state, IN, kind) not in TRANSITIONS
]
_ALLOWED_IN = [
    (role, state, kind)
    for (role, state, direction, kind) in TRANSITIONS
    if direction == IN and kind not in ("ack", CHUNK)
]


@pytest.mark.parametrize(("role", "state", "kind"), _FORBIDDEN_IN)
def test_a_message_not_allowed_now_is_a_fault_and_an_error_ack(
    role: Role, state: State, kind: str
) -> None:
    me, _ = session_in(role, state)
    me.receive_text(frame(kind, "p99"), 5.0)
    (fault,) = me.events()
    assert isinstance(fault, Fault)
    assert (fault.code, fault.ref, fault.fatal) == (ErrorCode.SESSION_UNEXPECTED, "p99", False)
    assert me.state is state and me.faults == 1
    (ack,) = error_acks(me)
    assert ack["ref"] == "p99"
    assert ack["error"]["code"] == "session.unexpected"


@pytest.mark.parametrize(("role", "state", "kind"), _ALLOWED_IN)
def test_a_message_allowed_now_is_received(role: Role, state: State, kind: str) -> None:
    me, _ = session_in(role, state)
    me.receive_text(frame(kind, "p42"), 5.0)
    (event,) = me.events()
    assert isinstance(event, Received)
    assert (event.message.type, event.message.id) == (kind, "p42")
    assert me.state is TRANSITIONS[(role, state, IN, kind)]
    assert me.faults == 0 and me.data_to_send() == []


@pytest.mark.parametrize(
    ("role", "state"),
    [(r, s) for r in Role for s in LIVE if (r, s, IN, CHUNK) not in TRANSITIONS],
)
def test_a_chunk_not_allowed_now_is_a_fault_without_an_ack(role: Role, state: State) -> None:
    me, _ = session_in(role, state)
    me.receive_bytes(encode_chunk(Chunk(SHA, 0, 3, b"abc")), 5.0)
    (fault,) = me.events()
    assert isinstance(fault, Fault)
    assert (fault.code, fault.ref, fault.fatal) == (ErrorCode.SESSION_UNEXPECTED, None, False)
    assert me.state is state and me.data_to_send() == []


@pytest.mark.parametrize(
    ("role", "state"),
    [(r, s) for r in Role for s in LIVE if (r, s, IN, "ack") not in TRANSITIONS],
)
def test_an_ack_not_allowed_now_is_a_fault_never_answered(role: Role, state: State) -> None:
    me, _ = session_in(role, state)
    me.receive_text(frame("ack", "p5", ref="b1"), 5.0)
    (fault,) = me.events()
    assert isinstance(fault, Fault)
    assert (fault.code, fault.ref) == (ErrorCode.SESSION_UNEXPECTED, None)
    assert me.state is state and me.data_to_send() == []


def test_an_ack_of_nothing_we_sent_is_a_fault_never_answered() -> None:
    board, hub = paired()
    hub.receive_text(frame("ack", "b77", ref="h999"), 5.0)
    (fault,) = hub.events()
    assert isinstance(fault, Fault) and fault.code is ErrorCode.SESSION_UNEXPECTED
    assert fault.ref is None and hub.data_to_send() == []
    # an ack is consumed: a second ack of the same message is unexpected too
    ident = hub.send("bundle", FIELDS["bundle"])
    deliver(hub, board, 5.0)
    board.ack(ident)
    board.ack(ident)
    deliver(board, hub, 5.0)
    first, second = hub.events()
    assert first == Acked(ident, "bundle", True)
    assert isinstance(second, Fault) and second.code is ErrorCode.SESSION_UNEXPECTED


@pytest.mark.parametrize(
    ("data", "code", "ref"),
    [
        ("{not json", ErrorCode.MESSAGE_MALFORMED, None),
        ('{"v": 2, "type": "heartbeat", "id": "b5"}', ErrorCode.MESSAGE_UNSUPPORTED_VERSION, "b5"),
        ('{"v": 1, "type": "goodbye", "id": "b6"}', ErrorCode.MESSAGE_UNKNOWN_TYPE, "b6"),
        ('{"v": 1, "type": "heartbeat", "id": "b7"}', ErrorCode.MESSAGE_MALFORMED, "b7"),
        ('{"v": 1, "type": "heartbeat", "id": "b 8"}', ErrorCode.MESSAGE_MALFORMED, None),
        (
            b'{"v": 1, "type": "heartbeat", "id": "b9", "x": "\xff"}',
            ErrorCode.MESSAGE_MALFORMED,
            None,
        ),
    ],
)
def test_a_malformed_frame_is_a_fault_answered_when_its_id_is_readable(
    data: str | bytes, code: ErrorCode, ref: str | None
) -> None:
    _, hub = paired()
    hub.receive_text(data, 5.0)
    (fault,) = hub.events()
    assert isinstance(fault, Fault)
    assert (fault.code, fault.ref, fault.fatal) == (code, ref, False)
    acks = error_acks(hub)
    if ref is None:
        assert acks == []
    else:
        assert [(a["ref"], a["error"]["code"]) for a in acks] == [(ref, code.value)]
    assert hub.state is State.READY


def test_a_bad_chunk_is_a_fault() -> None:
    board, _ = paired()
    board.receive_bytes(b"SGB2" + bytes(60), 5.0)
    (fault,) = board.events()
    assert isinstance(fault, Fault) and fault.code is ErrorCode.MESSAGE_MALFORMED
    assert board.data_to_send() == [] and board.state is State.READY


_FORBIDDEN_OUT = [
    (role, state, kind)
    for role in Role
    for state in LIVE
    for kind in sorted(SCHEMAS)
    if kind != "ack" and (role, state, OUT, kind) not in TRANSITIONS
]


@pytest.mark.parametrize(("role", "state", "kind"), _FORBIDDEN_OUT)
def test_sending_what_the_table_forbids_raises(role: Role, state: State, kind: str) -> None:
    me, _ = session_in(role, state)
    awaiting = dict(me.awaiting)
    with pytest.raises(ProtocolError) as caught:
        me.send(kind, FIELDS[kind])
    assert caught.value.code is ErrorCode.SESSION_UNEXPECTED
    assert me.state is state and me.data_to_send() == [] and dict(me.awaiting) == awaiting


@pytest.mark.parametrize(
    ("role", "state"),
    [(r, s) for r in Role for s in LIVE if (r, s, OUT, "ack") not in TRANSITIONS],
)
def test_acking_where_the_table_forbids_raises(role: Role, state: State) -> None:
    me, _ = session_in(role, state)
    with pytest.raises(ProtocolError) as caught:
        me.ack("p1")
    assert caught.value.code is ErrorCode.SESSION_UNEXPECTED
    assert me.state is state and me.data_to_send() == []


@pytest.mark.parametrize(
    ("role", "state"),
    [(r, s) for r in Role for s in LIVE if (r, s, OUT, CHUNK) not in TRANSITIONS],
)
def test_sending_a_chunk_where_the_table_forbids_raises(role: Role, state: State) -> None:
    me, _ = session_in(role, state)
    with pytest.raises(ProtocolError) as caught:
        me.send_chunk(Chunk(SHA, 0, 1, b"x"))
    assert caught.value.code is ErrorCode.SESSION_UNEXPECTED
    assert me.state is state and me.data_to_send() == []


def test_an_ack_goes_through_ack_not_send() -> None:
    board, _ = paired()
    with pytest.raises(ProtocolError) as caught:
        board.send("ack", {"ref": "h1", "ok": True})
    assert caught.value.code is ErrorCode.SESSION_UNEXPECTED
    assert board.data_to_send() == []


def test_answered_and_unanswered_messages() -> None:
    _, hub = paired(State.SYNC)
    assert set(UNANSWERED) == {"welcome", "synced"}
    ident = hub.send("command", {"name": "screenshot"})
    assert hub.awaiting == {ident: "command"}
    hub.send("synced")
    assert hub.awaiting == {ident: "command"}


@pytest.mark.parametrize(
    ("role", "state", "kind", "fields"),
    [
        (Role.BOARD, State.START, "hello", {"board": "Not A Name"}),
        (Role.HUB, State.HELLO, "welcome", {"session": "s-1"}),
        (Role.HUB, State.SYNC, "synced", {"v": 2}),
    ],
)
def test_a_send_with_bad_fields_raises_and_changes_nothing(
    role: Role, state: State, kind: str, fields: dict[str, Any]
) -> None:
    me, _ = session_in(role, state)
    with pytest.raises(ProtocolError):
        me.send(kind, fields)
    assert me.state is state
    assert me.data_to_send() == [] and kind not in me.awaiting.values()


def test_an_ack_with_bad_fields_raises_and_changes_nothing() -> None:
    _, hub = paired(State.HELLO)
    with pytest.raises(ProtocolError) as caught:
        hub.ack("not an id", ok=False, error={"code": "x"})
    assert caught.value.code is ErrorCode.MESSAGE_MALFORMED
    assert hub.state is State.HELLO and hub.data_to_send() == []


# -- rate limit, timeouts, faults, closing ------------------------------------------------------


def test_rate_limit_allows_a_burst_then_refills_at_the_rate() -> None:
    limits = Limits(rate_per_s=2.0, burst=3)
    board, hub = paired(limits=limits)  # the hello took one token at t=0
    now = 100.0  # long enough for the bucket to be full again, and no fuller than the burst
    sent = [board.send("heartbeat", FIELDS["heartbeat"]) for _ in range(4)]
    deliver(board, hub, now)
    events = hub.events()
    assert [type(e) for e in events] == [Received, Received, Received, Fault]
    limited = events[3]
    assert isinstance(limited, Fault)
    assert (limited.code, limited.ref, limited.fatal) == (
        ErrorCode.MESSAGE_RATE_LIMITED,
        sent[3],
        False,
    )
    deliver(hub, board, now)
    assert board.events() == [
        Acked(
            sent[3],
            "heartbeat",
            False,
            {"code": "message.rate_limited", "message": "too many messages"},
        )
    ]
    # half a second at 2 per second: one more message, not two
    board.send("heartbeat", FIELDS["heartbeat"])
    board.send("heartbeat", FIELDS["heartbeat"])
    deliver(board, hub, now + 0.5)
    assert [type(e) for e in hub.events()] == [Received, Fault]
    # the bucket never holds more than the burst, however long the wait
    for _ in range(4):
        board.send("heartbeat", FIELDS["heartbeat"])
    deliver(board, hub, now + 1000.0)
    assert [type(e) for e in hub.events()] == [Received, Received, Received, Fault]
    assert hub.state is State.READY and hub.faults == 3


def test_rate_limit_counts_text_the_session_cannot_even_parse() -> None:
    _, hub = paired(limits=Limits(rate_per_s=1.0, burst=2), now=0.0)
    for _ in range(3):
        hub.receive_text("garbage", 50.0)
    codes = [e.code for e in hub.events() if isinstance(e, Fault)]
    assert codes == [
        ErrorCode.MESSAGE_MALFORMED,
        ErrorCode.MESSAGE_MALFORMED,
        ErrorCode.MESSAGE_RATE_LIMITED,
    ]


def _closed_by_timeout(session: Session) -> bool:
    events = session.events()
    fatal = [e for e in events if isinstance(e, Fault) and e.fatal]
    closed = [e for e in events if isinstance(e, Closed)]
    return (
        session.state is State.CLOSED
        and len(fatal) == 1
        and fatal[0].code is ErrorCode.SESSION_TIMEOUT
        and len(closed) == 1
        and events[-1] == closed[0]
    )


@pytest.mark.parametrize("role", list(Role))
def test_hello_timeout(role: Role) -> None:
    limits = Limits(hello_timeout_s=30.0)
    board = Session(Role.BOARD, 1000.0, limits)
    me = board if role is Role.BOARD else Session(Role.HUB, 1000.0, limits)
    if role is Role.BOARD:
        board.send("hello", FIELDS["hello"])  # sent, but no welcome ever comes
    me.check(1010.0)
    me.check(1030.0)
    assert me.state is not State.CLOSED and me.events() == []
    me.check(1030.5)
    assert _closed_by_timeout(me)


def test_hello_timeout_counts_from_the_connection_not_the_last_frame() -> None:
    _, hub = paired(State.HELLO, limits=Limits(hello_timeout_s=30.0))  # hello at t=0
    hub.check(29.0)
    assert hub.state is State.HELLO
    hub.check(31.0)  # the hub never answered with a welcome
    assert _closed_by_timeout(hub)


@pytest.mark.parametrize("role", list(Role))
def test_silence_timeout(role: Role) -> None:
    board, hub = paired(limits=Limits(hello_timeout_s=30.0, silence_timeout_s=120.0))
    me, peer = (board, hub) if role is Role.BOARD else (hub, board)
    me.check(119.0)  # past the hello timeout, but READY: only silence counts now
    assert me.state is State.READY
    if role is Role.BOARD:
        peer.send("command", {"name": "reload"})
    else:
        peer.send("heartbeat", FIELDS["heartbeat"])
    deliver(peer, me, 100.0)
    me.events()
    me.check(220.0)
    assert me.state is State.READY and me.events() == []
    me.check(220.5)
    assert _closed_by_timeout(me)


def test_a_refused_frame_still_counts_as_a_sign_of_life() -> None:
    _, hub = paired(limits=Limits(silence_timeout_s=10.0))
    hub.receive_text("garbage", 8.0)
    hub.check(15.0)
    assert hub.state is State.READY


def test_a_chunk_is_a_sign_of_life_too() -> None:
    board, hub = paired(limits=Limits(silence_timeout_s=10.0))
    hub.send_chunk(Chunk(SHA, 0, 1, b"x"))
    deliver(hub, board, 8.0)
    board.check(15.0)
    assert board.state is State.READY
    board.check(18.5)
    assert _closed_by_timeout(board)


def test_max_faults_closes_the_session() -> None:
    _, hub = paired(limits=Limits(max_faults=3))
    for n in range(3):
        hub.receive_text(frame("hello", f"b{50 + n}"), 5.0)
    events = hub.events()
    assert [(type(e), e.fatal) for e in events if isinstance(e, Fault)] == [(Fault, False)] * 3
    assert hub.state is State.READY
    hub.receive_text(frame("hello", "b60"), 5.0)
    events = hub.events()
    assert len(events) == 2
    fatal, closed = events
    assert isinstance(fatal, Fault) and fatal.fatal
    assert fatal.code is ErrorCode.SESSION_UNEXPECTED
    assert isinstance(closed, Closed)
    assert hub.state is State.CLOSED and hub.faults == 4


def test_max_faults_counts_every_kind_of_fault() -> None:
    _, hub = paired(limits=Limits(max_faults=2))
    hub.receive_text("garbage", 1.0)
    hub.receive_bytes(b"short", 1.0)
    assert hub.state is State.READY
    hub.receive_text(frame("ack", "b9", ref="h404"), 1.0)
    assert hub.state is State.CLOSED
    assert isinstance(hub.events()[-1], Closed)


def test_nothing_is_received_after_closed() -> None:
    board, hub = paired()
    hub.close("operator")
    assert hub.events() == [Closed("operator")]
    hub.close("again")
    assert hub.events() == []
    board.send("heartbeat", FIELDS["heartbeat"])
    board.send_chunk(Chunk(SHA, 0, 1, b"x"))
    deliver(board, hub, 5.0)
    hub.receive_text("garbage", 5.0)
    hub.receive_bytes(b"garbage", 5.0)
    hub.check(10_000.0)
    assert hub.events() == [] and hub.data_to_send() == []
    assert hub.faults == 0 and hub.state is State.CLOSED
    for kind in sorted(SCHEMAS):
        if kind != "ack":
            with pytest.raises(ProtocolError):
                hub.send(kind, FIELDS[kind])
    with pytest.raises(ProtocolError):
        hub.ack("b1")
    with pytest.raises(ProtocolError):
        hub.send_chunk(Chunk(SHA, 0, 1, b"x"))


def test_a_timed_out_session_receives_nothing_more() -> None:
    board = Session(Role.BOARD, 0.0)
    board.check(1000.0)
    assert _closed_by_timeout(board)
    board.receive_text(frame("welcome", "h1"), 1000.0)
    assert board.events() == [] and board.state is State.CLOSED


# -- random traffic -----------------------------------------------------------------------------

_BOARD_FRAMES: list[str | bytes] = [
    frame("hello", "b1"),
    frame("heartbeat", "b2"),
    frame("get_asset", "b3"),
    frame("report", "b4"),
    frame("ack", "b5", ref="h1"),
    frame("ack", "b6", ref="h2", ok=False, error={"code": "x.y", "message": "no"}),
    frame("bundle", "b7"),
    frame("welcome", "b8"),
    frame("synced", "b9"),
    '{"v": 1, "type": "ack", "id": "b10", "ref": "h1", "ok": false}',
    '{"v": 1, "type": "heartbeat", "id": "b11", "status": {"a": 1, "a": 2}}',
    "[" * 5000,
    b"\xff\xfe",
    encode_chunk(Chunk(SHA, 0, 3, b"abc")),
    encode_chunk(Chunk(SHA, 3, 4, b"d")),
    b"SGB1" + bytes(60),
]
_HUB_SENDS = [*sorted(SCHEMAS), CHUNK]


@st.composite
def _steps(draw: st.DrawFn) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = []
    actions = ["frame", "frame", "frame", "hello", "text", "bytes", "send", "welcome", "synced"]
    for _ in range(draw(st.integers(1, 40))):
        action = draw(st.sampled_from([*actions, "wait"]))
        if action == "hello":
            steps.append(("frame", _BOARD_FRAMES[0]))
        elif action == "frame":
            steps.append(("frame", draw(st.sampled_from(_BOARD_FRAMES))))
        elif action == "text":
            steps.append(("frame", draw(st.text(max_size=60))))
        elif action == "bytes":
            steps.append(("frame", draw(st.binary(max_size=80))))
        elif action == "send":
            steps.append(("send", draw(st.sampled_from(_HUB_SENDS))))
        elif action in ("welcome", "synced"):
            steps.append(("send", action))
        else:
            steps.append(("wait", draw(st.floats(0.0, 50.0))))
    return steps


def _kind_of(data: str | bytes) -> str | None:
    if isinstance(data, bytes) and data[:4] == b"SGB1":
        return CHUNK
    try:
        return decode_text(data).type
    except ProtocolError:
        return None


def _check_events(events: list[Event]) -> None:
    for each in events:
        assert isinstance(each, Received | ChunkReceived | Acked | Fault | Closed)
        if isinstance(each, Fault):
            assert isinstance(each.code, ErrorCode)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_steps())
def test_random_traffic_never_escapes_and_follows_the_table(steps: list[tuple[str, Any]]) -> None:
    limits = Limits(
        hello_timeout_s=100.0, silence_timeout_s=80.0, rate_per_s=5.0, burst=10, max_faults=15
    )
    hub = Session(Role.HUB, 0.0, limits)
    now = 0.0
    reached = {hub.state}
    for action, value in steps:
        before, faults = hub.state, hub.faults
        if action == "wait":
            now += value
            hub.check(now)
            assert hub.state in (before, State.CLOSED)
        elif action == "frame":
            if isinstance(value, str):
                hub.receive_text(value, now)
            else:
                hub.receive_bytes(value, now)
            following = TRANSITIONS.get((Role.HUB, before, IN, _kind_of(value) or ""))
            assert hub.state in (before, following, State.CLOSED)
        else:
            allowed = TRANSITIONS.get((Role.HUB, before, OUT, value))
            try:
                if value == "ack":
                    hub.ack("b1")
                elif value == CHUNK:
                    hub.send_chunk(Chunk(SHA, 0, 2, b"ok"))
                else:
                    hub.send(value, FIELDS[value])
            except ProtocolError as exc:
                assert allowed is None and exc.code is ErrorCode.SESSION_UNEXPECTED
                assert hub.state is before
            else:
                assert allowed is not None and hub.state is allowed
        assert hub.faults >= faults
        if hub.state is State.CLOSED and before is not State.CLOSED:
            events = hub.events()
            assert isinstance(events[-1], Closed)
            assert sum(isinstance(e, Fault) and e.fatal for e in events) == 1
            _check_events(events)
        else:
            _check_events(hub.events())
        reached.add(hub.state)
        for data in hub.data_to_send():  # whatever the session sends, a peer can decode
            if isinstance(data, str):
                decode_text(data)
    event(f"reached {max(reached - {State.CLOSED}, key=LIVE.index)}")
    event(f"closed: {State.CLOSED in reached}")
    assert hub.faults <= 16  # max_faults + 1 closes the session, and then nothing counts
    if hub.faults == 16:
        assert hub.state is State.CLOSED
