"""Fuzz targets: plain functions of one ``bytes`` argument, driven by hypothesis
(tests/system/test_fuzz.py) and by atheris (tests/system/fuzz_atheris.py).

Each target feeds its input to a part of the board or the hub that reads what the network, a
publisher or a CAP feed sends, and checks two things: the part refuses only with the project's
typed errors (a SignageError whose code is one that part documents), and what it accepts keeps
its promises (it re-encodes to what it decoded, it is inside its scope, whatever it sends back
can be sent). Expected refusals are swallowed; anything else escaping a target is a bug. A
target returns a short word for statistics: ``accepted`` or the code it was refused with.

- :func:`fuzz_codec`: a text or binary frame through the message and chunk decoders.
- :func:`fuzz_session`: frames, waits and sends, framed by :func:`session_input`, fed to a
  Session that a board and a hub paired in memory brought into START, HELLO, SYNC or READY.
- :func:`fuzz_bundle`: bundle JSON through the parser, as an envelope, and signed by a trusted
  key through accept_bundle and the board's ContentSync (templates, manifest, staging).
- :func:`fuzz_alert`: alert and command JSON, parsed and signed.
- :func:`fuzz_cap`: CAP 1.2 XML through alert_from_cap.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import faulthandler
import functools
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signage.board.config import parse_power
from signage.board.sync import ContentSync
from signage.errors import ContentError, ErrorCode, ProtocolError, SignageError, SigningError
from signage.hub.publish import alert_from_cap
from signage.layout import LayoutLibrary
from signage.model import MAX_ASSET_BYTES, MEDIA_TYPES, load_alert_json, load_bundle_json
from signage.model import load_command_json as load_command
from signage.protocol import (
    CHUNK_BYTES,
    PUBLISHER_SCHEMAS,
    TRANSITIONS,
    UNSIGNED_COMMANDS,
    Acked,
    Chunk,
    ChunkReceived,
    Closed,
    Fault,
    Limits,
    Message,
    PrivateKey,
    Received,
    Role,
    Session,
    State,
    Trust,
    accept_alert,
    accept_bundle,
    accept_command,
    area_within,
    decode_chunk,
    decode_text,
    encode_chunk,
    encode_message,
    ref_of,
)
from signage.protocol.messages import CHUNK_MAGIC, MAX_BLOB_BYTES, SCHEMAS
from signage.protocol.session import CHUNK, IN, OUT
from signage.resources import data_dir
from signage.store import ContentStore

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BOARD_AREA = "62/23456"
APPLIED = 5  # the version (and seq) a board already holds from tinh-62
SHA = "47ddaf7dfd7c15453f7e30beab0fd7788153237ae1588751174d4747634aa34c"
HANG_S = 30.0  # one input taking longer than this is a hang: the watchdog ends the process

E = ErrorCode
DECODE_CODES = frozenset(
    {
        E.MESSAGE_MALFORMED,
        E.MESSAGE_TOO_LARGE,
        E.MESSAGE_UNKNOWN_TYPE,
        E.MESSAGE_UNSUPPORTED_VERSION,
        E.COMMAND_UNKNOWN,
    }
)
CHUNK_CODES = frozenset({E.MESSAGE_MALFORMED, E.MESSAGE_TOO_LARGE})
VERIFY_CODES = frozenset({E.BUNDLE_MALFORMED, E.SIGNATURE_UNKNOWN_KEY, E.SIGNATURE_INVALID})
SCOPE_CODES = frozenset({E.SIGNATURE_INVALID, E.SIGNATURE_OUT_OF_SCOPE, E.AREA_MISMATCH})
BUNDLE_CODES = VERIFY_CODES | SCOPE_CODES | {E.BUNDLE_VERSION_NOT_NEWER}
STAGE_CODES = BUNDLE_CODES | {E.LAYOUT_UNKNOWN, E.CONTENT_INVALID}
ALERT_CODES = VERIFY_CODES | SCOPE_CODES | {E.ALERT_INVALID, E.COMMAND_NOT_NEWER}
COMMAND_CODES = VERIFY_CODES | SCOPE_CODES | {E.COMMAND_INVALID, E.COMMAND_NOT_NEWER}
DOCUMENT_CODES = frozenset({E.CONTENT_JSON, E.CONTENT_INVALID})
# What an honest peer may fault on when it reads what the fuzzed session sent: the error acks
# answer ids it never sent, and the fuzzed session may answer at any state.
PEER_CODES = frozenset({E.SESSION_UNEXPECTED, E.MESSAGE_RATE_LIMITED, E.SESSION_TIMEOUT})
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class EscapedError(AssertionError):
    """A part of the system broke its promise: an undocumented code, or a broken invariant."""


def expect(exc: SignageError, codes: Iterable[ErrorCode], where: str) -> str:
    """Return the code of an expected refusal; raise EscapedError when ``where`` may not refuse
    with it, or when its text could not be sent to a peer (acks carry it)."""
    if exc.code not in frozenset(codes):
        raise EscapedError(f"{where} refused with an undocumented code: {exc!r}") from exc
    sendable(str(exc), f"{where} error text")
    return exc.code.value


def sendable(text: str, what: str) -> None:
    """Raise EscapedError unless ``text`` can travel in a WebSocket text frame (valid UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EscapedError(
            f"{what} is not valid Unicode and cannot be sent: {text[:200]!r}"
        ) from exc


@contextlib.contextmanager
def watchdog(seconds: float = HANG_S) -> Iterator[None]:
    """End the process with every thread's traceback when the body runs longer than
    ``seconds`` (works inside C code too, where an exception could not interrupt)."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# -- the world the targets run in ---------------------------------------------------------------


def _key(key_id: str, area: str, seed: str) -> PrivateKey:
    raw = hashlib.sha256(seed.encode()).digest()
    return PrivateKey(key_id, area, Ed25519PrivateKey.from_private_bytes(raw))


@dataclass(frozen=True)
class World:
    """Keys, trust, templates and a board's ContentSync on a scratch store (one per process)."""

    province: PrivateKey  # tinh-62, may sign for 62
    commune: PrivateKey  # xa-23456, may sign for 62/23456
    trust: Trust
    library: LayoutLibrary
    sync: ContentSync


@functools.cache
def world() -> World:
    """Return the process's world (built once; deterministic keys, so crashes reproduce)."""
    province = _key("tinh-62", "62", "fuzz tinh-62")
    commune = _key("xa-23456", "62/23456", "fuzz xa-23456")
    trust = Trust([province.public(), commune.public()])
    library = LayoutLibrary.load(data_dir("layouts"))
    root = Path(tempfile.mkdtemp(prefix="signage-fuzz-"))
    atexit.register(shutil.rmtree, root, True)
    sync = ContentSync(ContentStore(root / "store"), trust, library, BOARD_AREA, TZ, 40_000_000)
    return World(province, commune, trust, library, sync)


# -- codec --------------------------------------------------------------------------------------


def fuzz_codec(data: bytes) -> str:
    """Decode ``data`` as a text frame (bytes, and str as a socket would hand it over) for the
    board and the publisher protocol, and as a binary chunk."""
    outcomes: list[str] = []
    text = data.decode("utf-8", "replace")
    for frame in (data, text, data.decode("utf-8", "surrogateescape")):
        ref = ref_of(frame)
        if ref is not None and not _ID.fullmatch(ref):
            raise EscapedError(f"ref_of returned an id a message could not have: {ref!r}")
        for schemas in (SCHEMAS, PUBLISHER_SCHEMAS):
            try:
                message = decode_text(frame, schemas)
            except ProtocolError as exc:
                outcomes.append(expect(exc, DECODE_CODES, "decode_text"))
                continue
            _check_message(message, schemas)
            outcomes.insert(0, "accepted")
    for frame in (data, CHUNK_MAGIC + data):
        try:
            chunk = decode_chunk(frame)
        except ProtocolError as exc:
            expect(exc, CHUNK_CODES, "decode_chunk")
            continue
        if not 0 <= chunk.offset < chunk.end <= chunk.total <= MAX_BLOB_BYTES:
            raise EscapedError(
                f"a chunk outside its blob: {chunk.offset} {chunk.end} {chunk.total}"
            )
        if encode_chunk(chunk) != frame:
            raise EscapedError("a decoded chunk does not encode back to its frame")
        if frame is data:
            outcomes.insert(0, "chunk")
    return outcomes[0]


def _check_message(message: Message, schemas: Mapping[str, Any]) -> None:
    if message.type not in schemas or not _ID.fullmatch(message.id):
        raise EscapedError(f"decoded a message of type {message.type!r} id {message.id!r}")
    fields = dict(message.fields)
    required, optional = schemas[message.type]
    if not set(required) <= set(fields) <= set(required) | set(optional):
        raise EscapedError(f"decoded {message.type} with fields {sorted(fields)}")
    # What was accepted can be answered and relayed: it encodes, and decodes to the same.
    try:
        frame = encode_message(message.type, message.id, fields, schemas)
    except ProtocolError as exc:
        raise EscapedError(f"an accepted {message.type} does not encode again: {exc}") from exc
    sendable(frame, f"the re-encoded {message.type}")
    again = decode_text(frame, schemas)
    if again.type != message.type or dict(again.fields) != fields:
        raise EscapedError(f"a {message.type} changed on its way through encode and decode")
    if message.type == "ack" and not fields["ok"] and "error" not in fields:
        raise EscapedError("a refusing ack without an error")
    if message.type == "command" and (fields["name"] in UNSIGNED_COMMANDS) == ("signed" in fields):
        raise EscapedError(f"command {fields['name']} accepted with the wrong signedness")
    if "signed" in fields:
        try:
            world().trust.verify(message.signed())
        except SigningError as exc:
            expect(exc, VERIFY_CODES, "Trust.verify")


# -- session ------------------------------------------------------------------------------------

# The operations of a session input. Each is one byte (modulo len(OPS)), a two-byte big-endian
# length and that many bytes of payload.
OPS = ("text", "raw", "binary", "wait", "send", "pair")
STATES = (State.START, State.HELLO, State.SYNC, State.READY)
TIGHT = Limits(
    hello_timeout_s=100.0, silence_timeout_s=80.0, rate_per_s=5.0, burst=10, max_faults=15
)
HELLO = {
    "board": "xa-sa-thay-01",
    "software": "0.1.0",
    "held": {"tinh-62": APPLIED},
    "assets": [SHA],
    "seq": {"tinh-62": APPLIED},
    "alerts": ["62-bao-9"],
}
WELCOME = {"session": "9f2c4e1a", "heartbeat_s": 30, "time": "2026-11-26T10:00:05+00:00"}
ENVELOPE = {"v": 1, "key": "tinh-62", "payload": "e30=", "sig": "AAAA"}
SAMPLE_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "hello": HELLO,
    "welcome": WELCOME,
    "synced": {},
    "bundle": {"signed": ENVELOPE},
    "alert": {"signed": ENVELOPE},
    "command": {"name": "reload"},
    "get_asset": {"sha256": SHA, "offset": 0},
    "heartbeat": {"status": {"board": "xa-sa-thay-01"}},
    "report": {
        "entries": [{"seq": 1, "kind": "start", "at": "2026-11-26T17:00:01+07:00", "data": {}}]
    },
}
SENDS = (*SAMPLE_FIELDS, "ack", CHUNK)


def session_input(role: Role, state: State, tight: bool, ops: Iterable[tuple[str, bytes]]) -> bytes:
    """Return the fuzz_session input that runs ``ops`` (name, payload) against a session of
    ``role`` brought into ``state``, with the small limits of TIGHT when ``tight``."""
    head = (role is Role.BOARD) | STATES.index(state) << 1 | tight << 3
    out = bytearray([head])
    for name, whole in ops:
        payload = whole[:0xFFFF]
        out += bytes([OPS.index(name)]) + len(payload).to_bytes(2, "big") + payload
    return bytes(out)


def _parse_session_input(data: bytes) -> tuple[Role, State, bool, list[tuple[str, bytes]]]:
    if not data:
        return Role.HUB, State.START, False, []
    head = data[0]
    role = Role.BOARD if head & 1 else Role.HUB
    state = STATES[(head >> 1) % len(STATES)]
    ops: list[tuple[str, bytes]] = []
    at = 1
    while at < len(data):
        op = OPS[data[at] % len(OPS)]
        size = int.from_bytes(data[at + 1 : at + 3], "big")
        ops.append((op, data[at + 3 : at + 3 + size]))
        at += 3 + size
    return role, state, bool(head >> 3 & 1), ops


def _paired(role: Role, state: State, limits: Limits) -> tuple[Session, Session]:
    """Return (the session under test, its honest peer), brought into ``state`` by exchanging
    real messages at time 0."""
    board, hub = Session(Role.BOARD, 0.0, limits), Session(Role.HUB, 0.0, limits)
    steps: list[tuple[Session, Session, str]] = [
        (board, hub, "hello"),
        (hub, board, "welcome"),
        (hub, board, "synced"),
    ]
    for sender, receiver, kind in steps[: STATES.index(state)]:
        sender.send(kind, SAMPLE_FIELDS[kind])
        for frame in sender.data_to_send():
            assert isinstance(frame, str)
            receiver.receive_text(frame, 0.0)
        receiver.events()
    if board.state is not state or hub.state is not state:
        raise EscapedError(f"could not pair a board and a hub into {state}")
    return (board, hub) if role is Role.BOARD else (hub, board)


def _kind_of(frame: str | bytes) -> str:
    try:
        return decode_text(frame).type
    except ProtocolError:
        return ""


def fuzz_session(data: bytes) -> str:
    """Run the operations in ``data`` (see :func:`session_input`) against a paired session and
    check after each that the session follows TRANSITIONS, reports only typed faults, closes
    after max_faults, and sends only frames its peer can decode."""
    role, state, tight, ops = _parse_session_input(data)
    limits = TIGHT if tight else Limits()
    victim, peer = _paired(role, state, limits)
    now = 0.0
    to_peer: list[str | bytes] = []
    peer_refs: list[str] = []
    for op, payload in ops:
        before = victim.state
        allowed = {before, State.CLOSED}
        if op in ("text", "raw", "binary"):
            frame: str | bytes = payload
            if op == "text":
                frame = payload.decode("utf-8", "replace")  # what websockets hands over
            if op == "binary":
                victim.receive_bytes(payload, now)
                kind = CHUNK if payload[:4] == CHUNK_MAGIC else ""
            else:
                victim.receive_text(frame, now)
                kind = _kind_of(frame)
                ref = ref_of(frame)
                if ref is not None:
                    peer_refs.append(ref)
            following = TRANSITIONS.get((role, before, IN, kind))
            if following is not None:
                allowed.add(following)
        elif op == "wait":
            now += int.from_bytes(payload[:2].ljust(2, b"\0"), "big") / 10.0
            victim.check(now)
        elif op == "send":
            allowed = {_send(victim, payload, peer_refs)}
        else:
            now = _exchange(victim, peer, to_peer, now)
            to_peer = []
            allowed = set(State)  # what the honest peer sent, checked by its own session
        if victim.state not in allowed:
            raise EscapedError(f"{op} moved a {role} session from {before} to {victim.state}")
        _check_events(victim, before, limits)
        for out in victim.data_to_send():
            _check_outgoing(out)
            to_peer.append(out)
    return f"{role}:{victim.state}"


def _send(victim: Session, payload: bytes, refs: list[str]) -> State:
    kind = SENDS[payload[0] % len(SENDS)] if payload else "heartbeat"
    before = victim.state
    allowed = TRANSITIONS.get((victim.role, before, OUT, kind))
    try:
        if kind == "ack":
            victim.ack(refs[-1] if refs else "x1", ok=len(payload) % 2 == 0, error=_ERROR)
        elif kind == CHUNK:
            victim.send_chunk(Chunk(SHA, 0, 2, b"ok"))
        else:
            victim.send(kind, SAMPLE_FIELDS[kind])
    except ProtocolError as exc:
        if exc.code is not E.SESSION_UNEXPECTED or allowed is not None:
            raise EscapedError(f"sending {kind} in {before} raised {exc!r}") from exc
        if victim.state is not before:
            raise EscapedError(f"a refused send of {kind} moved the session") from exc
        return before
    if allowed is None:
        raise EscapedError(
            f"{victim.role} sent {kind} in {before}, which TRANSITIONS does not allow"
        )
    return allowed


_ERROR = {"code": "asset.missing", "message": "không có"}


def _exchange(victim: Session, peer: Session, to_peer: list[str | bytes], now: float) -> float:
    """Let the honest peer read what the victim sent, and the victim read the peer's answers."""
    now += 0.5
    for frame in to_peer:
        if isinstance(frame, str):
            peer.receive_text(frame, now)
        else:
            peer.receive_bytes(frame, now)
    for each in peer.events():
        if isinstance(each, Fault) and each.code not in PEER_CODES:
            raise EscapedError(f"the honest peer could not read what the session sent: {each}")
    for frame in peer.data_to_send():
        if isinstance(frame, str):
            victim.receive_text(frame, now)
        else:
            victim.receive_bytes(frame, now)
    return now


def _check_events(victim: Session, before: State, limits: Limits) -> None:
    events = victim.events()
    for each in events:
        if not isinstance(each, Received | ChunkReceived | Acked | Fault | Closed):
            raise EscapedError(f"an event of an unknown kind: {each!r}")
        if isinstance(each, Fault):
            if not isinstance(each.code, ErrorCode):
                raise EscapedError(f"a fault without a code: {each!r}")
            sendable(each.message, "a fault's message")
    if victim.faults > limits.max_faults + 1:
        raise EscapedError(f"{victim.faults} faults and the session is still counting")
    if victim.faults > limits.max_faults and victim.state is not State.CLOSED:
        raise EscapedError("more than max_faults and the session is still open")
    closing = victim.state is State.CLOSED and before is not State.CLOSED
    if closing and (not events or not isinstance(events[-1], Closed)):
        raise EscapedError("the session closed without a Closed event")


def _check_outgoing(frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        try:
            decode_chunk(frame)
        except ProtocolError as exc:
            raise EscapedError(f"the session sent a chunk its peer cannot decode: {exc}") from exc
        return
    sendable(frame, "a frame the session sent")
    try:
        decode_text(frame)
    except ProtocolError as exc:
        raise EscapedError(f"the session sent a message its peer cannot decode: {exc}") from exc


# -- bundles ------------------------------------------------------------------------------------


def fuzz_bundle(data: bytes) -> str:
    """Read ``data`` as bundle JSON, as a signed envelope, and as the payload of an envelope a
    trusted key signed: through the parser, accept_bundle and the board's offer_bundle."""
    w = world()
    try:
        bundle = load_bundle_json(data, TZ)
    except ContentError as exc:
        expect(exc, DOCUMENT_CODES, "load_bundle_json")
    else:
        _check_bundle(bundle)
    try:
        accept_bundle(data, w.trust, {}, TZ, BOARD_AREA)
    except SigningError as exc:
        expect(exc, BUNDLE_CODES, "accept_bundle of an unsigned input")
    envelope = w.province.sign(data)
    try:
        bundle = accept_bundle(envelope, w.trust, {"tinh-62": APPLIED}, TZ, BOARD_AREA)
    except SigningError as exc:
        return expect(exc, BUNDLE_CODES, "accept_bundle")
    _check_bundle(bundle)
    if bundle.publisher != "tinh-62" or bundle.version <= APPLIED:
        raise EscapedError(f"accepted {bundle.publisher}@{bundle.version} signed by tinh-62")
    if not area_within(bundle.area, "62") or not area_within(BOARD_AREA, bundle.area):
        raise EscapedError(f"accepted a bundle for area {bundle.area!r}")
    try:
        missing = w.sync.offer_bundle(envelope, "h1")
    except SignageError as exc:
        return expect(exc, STAGE_CODES, "offer_bundle")
    finally:
        w.sync.forget_pending()
    if {m.sha256 for m in missing} - {a.sha256 for a in bundle.assets.values()}:
        raise EscapedError("offer_bundle asked for an asset outside the manifest")
    for item in bundle.items:
        template = w.library.get(item.template)
        for spec in template.fields.values():
            value = item.fields.get(spec.name)
            image = spec.type == "image" and isinstance(value, str) and value
            if image and value not in bundle.assets:
                raise EscapedError(f"staged an item whose image {value!r} is not in the manifest")
    return "accepted"


def _check_bundle(bundle: Any) -> None:
    for name, ref in bundle.assets.items():
        if not _ASSET_NAME.fullmatch(name) or ".." in name:
            raise EscapedError(f"accepted an asset name that could leave a folder: {name!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", ref.sha256):
            raise EscapedError(f"accepted an asset hash that is not one: {ref.sha256!r}")
        if not 0 < ref.size <= MAX_ASSET_BYTES or ref.media_type not in MEDIA_TYPES:
            raise EscapedError(f"accepted asset {name} of {ref.size} bytes, {ref.media_type}")
    if not 0 < bundle.version < 2**63 or (bundle.ticker is not None and len(bundle.ticker) > 4000):
        raise EscapedError("accepted a bundle out of its bounds")
    for item in bundle.items:
        for value in item.fields.values():
            if isinstance(value, str):
                sendable(value, "an accepted field")


# -- alerts and commands ------------------------------------------------------------------------


def fuzz_alert(data: bytes) -> str:
    """Read ``data`` as an alert and as a signed command: parsed, as an envelope, and signed by
    a trusted key. An accepted alert must be showable with the emergency template."""
    w = world()
    outcome = "refused"
    try:
        alert = load_alert_json(data)
    except ContentError as exc:
        expect(exc, DOCUMENT_CODES, "load_alert_json")
    else:
        _check_alert(alert)
    try:
        load_command(data)
    except ContentError as exc:
        expect(exc, DOCUMENT_CODES, "load_command_json")
    for accept in (accept_alert, accept_command):
        try:
            accept(data, w.trust, {}, BOARD_AREA)
        except SigningError as exc:
            expect(exc, ALERT_CODES | COMMAND_CODES, f"{accept.__name__} of an unsigned input")
    envelope = w.province.sign(data)
    try:
        alert = accept_alert(envelope, w.trust, {"tinh-62": APPLIED}, BOARD_AREA)
    except SigningError as exc:
        outcome = expect(exc, ALERT_CODES, "accept_alert")
    else:
        _check_alert(alert)
        if alert.publisher != "tinh-62" or alert.seq <= APPLIED:
            raise EscapedError(f"accepted alert seq {alert.seq} of {alert.publisher!r}")
        if not area_within(alert.area, "62") or not area_within(BOARD_AREA, alert.area):
            raise EscapedError(f"accepted an alert for area {alert.area!r}")
        outcome = "alert"
    try:
        command = accept_command(envelope, w.trust, {"tinh-62": APPLIED}, BOARD_AREA)
    except SigningError as exc:
        code = expect(exc, COMMAND_CODES, "accept_command")
        return outcome if outcome == "alert" else code
    if command.seq <= APPLIED or not area_within(BOARD_AREA, command.area):
        raise EscapedError(f"accepted command seq {command.seq} for {command.area!r}")
    if command.name != "power" and command.args:
        raise EscapedError(f"accepted {command.name} with arguments")
    if command.name == "power":
        try:
            parse_power(command.args)
        except SignageError as exc:
            return expect(exc, {E.CONFIG_INVALID}, "parse_power")
    return f"command:{command.name}"


def _check_alert(alert: Any) -> None:
    if alert.expires <= alert.sent:
        raise EscapedError("accepted an alert that expires before it was sent")
    if alert.msg_type != "Alert" and not alert.references:
        raise EscapedError(f"accepted an {alert.msg_type} that refers to nothing")
    item = alert.to_item()
    try:
        world().library.get("emergency").check(item.fields)
    except SignageError as exc:
        if alert.msg_type != "Cancel":  # a Cancel is never shown
            raise EscapedError(f"an accepted alert cannot be shown: {exc}") from exc
    for value in item.fields.values():
        if isinstance(value, str):
            sendable(value, "an accepted alert's text")


# -- CAP ----------------------------------------------------------------------------------------


def fuzz_cap(data: bytes) -> str:
    """Translate ``data`` as a CAP 1.2 message (with its own area, then with one given); what
    comes out must be an alert document a board accepts."""
    outcome = "refused"
    for area in (None, BOARD_AREA):
        try:
            raw = alert_from_cap(data, publisher="tinh-62", seq=APPLIED + 1, area=area)
        except ContentError as exc:
            outcome = expect(exc, {E.ALERT_INVALID}, "alert_from_cap")
            continue
        try:
            alert = load_alert_json(raw)
        except ContentError as exc:
            raise EscapedError(f"alert_from_cap made a document boards refuse: {exc}") from exc
        _check_alert(alert)
        if area is not None and alert.area != area:
            raise EscapedError(f"the area given was {area!r}, the alert says {alert.area!r}")
        outcome = "accepted"
    return outcome


TARGETS: Mapping[str, Callable[[bytes], str]] = {
    "codec": fuzz_codec,
    "session": fuzz_session,
    "bundle": fuzz_bundle,
    "alert": fuzz_alert,
    "cap": fuzz_cap,
}


# -- seeds: valid inputs that reach deep, for atheris's corpus and a sanity test ------------------

ISSUED = "2026-11-26T17:00:00+07:00"
BUNDLE: Mapping[str, Any] = {
    "bundle": 1,
    "publisher": "tinh-62",
    "version": 1764150000000,
    "issued": ISSUED,
    "area": "62/23456",
    "items": [
        {
            "id": "tin-thu-hoach",
            "template": "news-photo",
            "priority": "priority",
            "duration_s": 10,
            "valid_from": "2026-11-26T00:00:00+07:00",
            "valid_until": "2026-12-26T00:00:00",
            "windows": [{"days": ["mon", "sat"], "from": "18:00", "to": "02:00"}],
            "fields": {
                "title": "Nông dân thu hoạch lúa vụ Mùa đạt năng suất cao",
                "image": "dong-lua.jpg",
                "caption": "Toàn xã gieo cấy 420 héc-ta lúa nước.",
            },
        },
        {
            "id": "tb-hop-dan",
            "template": "announcement",
            "fields": {"title": "Họp dân thôn Plei Kơ Ĕ", "body": "Lúc 19 giờ 30 tại nhà rông."},
        },
    ],
    "assets": {"dong-lua.jpg": {"sha256": SHA, "size": 144067, "media_type": "image/jpeg"}},
    "ticker": "Xã Sa Thầy chào mừng Ngày hội Đại đoàn kết toàn dân tộc",
}
ALERT: Mapping[str, Any] = {
    "alert": 1,
    "publisher": "tinh-62",
    "seq": 1764150000000,
    "identifier": "62-bao-9-2026",
    "sent": ISSUED,
    "status": "Actual",
    "msgType": "Alert",
    "references": [],
    "urgency": "Immediate",
    "severity": "Extreme",
    "certainty": "Observed",
    "expires": "2026-11-27T17:00:00+07:00",
    "headline": "Bão số 9 đổ bộ: cấm ra khỏi nhà từ 18 giờ",
    "description": "Bão số 9 gây gió giật cấp 12, mưa rất to trên địa bàn tỉnh.",
    "instruction": "Gia cố nhà cửa, không ra sông suối.",
    "area": "62/23456",
    "areaDesc": "Xã Sa Thầy",
}
COMMAND: Mapping[str, Any] = {
    "command": 1,
    "publisher": "tinh-62",
    "seq": 1764150000001,
    "issued": ISSUED,
    "area": "62/23456",
    "name": "power",
    "args": {"mon": "06:00-22:00", "sat": ["06:00-11:30", "13:30-22:00"], "sun": "off"},
}
CAP_FILE = Path(__file__).resolve().parents[2] / "examples" / "cap" / "bao-so-9.xml"
CAP_CANCEL = b"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>62-bao-9-2026-huy</identifier><sender>canhbao@kontum.gov.vn</sender>
  <sent>2026-12-02T20:00:00+07:00</sent><status>Actual</status><msgType>Cancel</msgType>
  <scope>Public</scope>
  <references>canhbao@kontum.gov.vn,62-bao-9-2026,2026-12-02T17:00:00+07:00</references>
</alert>
"""


def document(doc: Mapping[str, Any]) -> bytes:
    """Return a document as the UTF-8 JSON bytes a publisher signs."""
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


def signed_object(key: PrivateKey, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``doc`` signed by ``key``, as the envelope object a message embeds."""
    envelope: dict[str, Any] = json.loads(key.sign(document(doc)))
    return envelope


def sample_messages() -> list[tuple[str, dict[str, Any]]]:
    """Return (type, fields) of a well-formed message of every board and publisher type."""
    province = world().province
    blank = {**COMMAND, "name": "blank", "args": {}}
    return [
        ("hello", dict(HELLO)),
        ("welcome", {**WELCOME, "hub": "signage-hub/0.1.0"}),
        ("synced", {}),
        ("bundle", {"signed": signed_object(province, BUNDLE)}),
        ("alert", {"signed": signed_object(province, ALERT)}),
        ("command", {"name": "blank", "signed": signed_object(province, blank)}),
        ("command", {"name": "screenshot"}),
        ("get_asset", {"sha256": SHA, "offset": 100_000}),
        ("heartbeat", {"status": {"board": "xa-sa-thay-01", "link": {"state": "ready"}}}),
        ("report", dict(SAMPLE_FIELDS["report"])),
        ("ack", {"ref": "h2", "ok": True, "result": {"publisher": "tinh-62", "version": 9}}),
        ("ack", {"ref": "b3", "ok": False, "error": {"code": "asset.missing", "message": "…"}}),
        ("publish", {"signed": signed_object(province, BUNDLE), "kind": "bundle", "wait_s": 5}),
        ("missing", {"sha256": [SHA]}),
        ("boards", {}),
        ("screenshot", {"board": "xa-sa-thay-01"}),
    ]


def frame_of(kind: str, ident: str, fields: Mapping[str, Any]) -> str:
    """Return the text frame of a message, as json.dumps writes it (no schema check)."""
    return json.dumps({"v": 1, "type": kind, "id": ident, **fields}, ensure_ascii=False)


def seeds(target: str) -> list[bytes]:
    """Return valid inputs for ``target`` that reach its deepest checks."""
    if target == "codec":
        frames = [frame_of(k, f"m{n}", f).encode() for n, (k, f) in enumerate(sample_messages())]
        chunk = encode_chunk(Chunk(SHA, 0, 3 * CHUNK_BYTES, b"\xff\xd8\xff\xe0" * 64))
        return [*frames, chunk, chunk[4:]]
    if target == "session":
        return _session_seeds()
    if target == "bundle":
        text_only = {**BUNDLE, "items": BUNDLE["items"][1:], "assets": {}, "area": "62"}
        return [document(BUNDLE), document(text_only), json.dumps(BUNDLE).encode()]
    if target == "alert":
        cancel = {
            **ALERT,
            "msgType": "Cancel",
            "identifier": "62-bao-9-huy",
            "references": ["62-bao-9-2026"],
        }
        for key in ("headline", "description", "instruction", "areaDesc"):
            cancel.pop(key)
        blank = {**COMMAND, "name": "blank", "args": {}}
        return [document(ALERT), document(cancel), document(COMMAND), document(blank)]
    if target == "cap":
        return [CAP_FILE.read_bytes(), CAP_CANCEL]
    raise KeyError(target)


def _session_seeds() -> list[bytes]:
    messages = dict((k, f) for k, f in reversed(sample_messages()))
    chunk = encode_chunk(Chunk(SHA, 0, 2, b"ok"))

    def text(kind: str, ident: str) -> tuple[str, bytes]:
        return ("text", frame_of(kind, ident, messages[kind]).encode())

    hub_view = [
        text("hello", "b1"),
        ("send", bytes([SENDS.index("welcome")])),
        ("send", bytes([SENDS.index("synced")])),
        text("heartbeat", "b2"),
        text("get_asset", "b3"),
        ("pair", b""),
        text("report", "b4"),
        ("binary", chunk),
        text("heartbeat", "b2"),  # a repeated id is answered, not refused
        ("wait", (600).to_bytes(2, "big")),
        text("heartbeat", "b5"),
    ]
    board_view = [
        text("bundle", "h3"),
        text("alert", "h4"),
        text("command", "h5"),
        ("binary", chunk),
        ("send", bytes([SENDS.index("get_asset")])),
        ("pair", b""),
        text("ack", "h6"),
        ("raw", b'{"v":1,"type":"synced","id":"h7"}'),
        ("wait", (600).to_bytes(2, "big")),
        ("send", bytes([SENDS.index("heartbeat")])),
        ("pair", b""),
    ]
    flood = [text("heartbeat", f"b{n}") for n in range(2, 40)]
    return [
        session_input(Role.HUB, State.START, False, hub_view),
        session_input(Role.HUB, State.START, True, hub_view + flood),
        session_input(Role.BOARD, State.SYNC, False, board_view),
        session_input(Role.BOARD, State.READY, True, board_view + [("text", b"[" * 5000)] * 20),
        session_input(Role.BOARD, State.START, False, [text("welcome", "h1"), *board_view]),
        session_input(Role.HUB, State.READY, False, [("send", b"\x03"), ("pair", b"")]),
    ]


def payload_of(envelope: bytes | Mapping[str, Any]) -> bytes:
    """Return the document bytes inside a signed envelope (bytes or embedded object)."""
    obj = json.loads(envelope) if isinstance(envelope, bytes) else envelope
    return base64.b64decode(obj["payload"])
