"""The wire format of docs/protocol.md: JSON text messages and binary asset chunks (no I/O).

A text message is one JSON object ``{"v": 1, "type": ..., "id": ..., <fields>}``. Each type has
a schema below; a field of the wrong shape is refused, fields a type does not define are ignored
(so a newer peer may add optional fields without breaking an older one). A binary frame is one
chunk of a blob named by its sha256:

    "SGB1" | sha256 (32 bytes) | offset (uint64 BE) | total size (uint64 BE) | data

Decoding never lets an exception other than ProtocolError escape, whatever the input.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from signage.errors import ContentError, ErrorCode, ProtocolError
from signage.model import MAX_ASSET_BYTES, decode_json
from signage.protocol.signing import MAX_SIGNED_BYTES, canonical_envelope

PROTOCOL_VERSION = 1
MAX_TEXT_BYTES = 24 * 2**20  # a bundle message: its envelope (at most 16 MiB) and a little more
MAX_CONTROL_BYTES = 2**20  # every other message
CHUNK_BYTES = 256 * 2**10  # what a sender puts in one chunk
MAX_CHUNK_BYTES = 2**20  # what a receiver accepts in one chunk
MAX_BLOB_BYTES = MAX_ASSET_BYTES  # assets and screenshots
MAX_REPORT_ENTRIES = 500
MAX_HELD_ASSETS = 10_000  # a hello stays under MAX_CONTROL_BYTES
CHUNK_MAGIC = b"SGB1"
_HEADER = struct.Struct(">4s32sQQ")
# The largest frame a board ever sends (a control message, or a screenshot chunk): the hub holds
# board connections to it, so a board token cannot make the hub buffer bundle-sized frames.
MAX_FROM_BOARD_BYTES = max(MAX_CONTROL_BYTES, _HEADER.size + MAX_CHUNK_BYTES)
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z0-9._-]{1,64}")

COMMANDS = ("reload", "screenshot", "blank", "unblank", "restart", "power")
UNSIGNED_COMMANDS = ("reload", "screenshot")


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded text message: its type, id and fields (already checked against the schema)."""

    type: str
    id: str
    fields: Mapping[str, Any]

    def signed(self) -> bytes:
        """Return the signed envelope the message carries, as bytes for Trust.verify."""
        env = self.fields["signed"]
        return canonical_envelope(env["key"], env["payload"], env["sig"])


@dataclass(frozen=True, slots=True)
class Chunk:
    """``data`` is bytes ``offset`` .. ``offset + len(data)`` of the blob ``sha256`` (``total``
    bytes long)."""

    sha256: str
    offset: int
    total: int
    data: bytes

    @property
    def end(self) -> int:
        """Return the offset just after this chunk."""
        return self.offset + len(self.data)

    @property
    def last(self) -> bool:
        """Return True when this chunk completes the blob."""
        return self.end == self.total


# -- field validators ---------------------------------------------------------------------------

Validator = Callable[[Any, str], Any]


def _fail(path: str, message: str, code: ErrorCode = ErrorCode.MESSAGE_MALFORMED) -> ProtocolError:
    return ProtocolError(code, message, path=path)


def _text(limit: int) -> Validator:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise _fail(path, f"expected text of 1-{limit} characters")
        return value

    return check


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _fail(path, "expected 1-64 of a-z 0-9 . _ -")
    return value


def _ident(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _fail(path, "expected an id of 1-64 of A-Z a-z 0-9 . _ : -")
    return value


def _count(low: int, high: int) -> Validator:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail(path, f"expected a whole number from {low} to {high}")
        return value

    return check


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "expected true or false")
    return value


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "expected an object")
    return value


def _sha(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _fail(path, "expected 64 lower-case hex digits")
    return value


def _versions(value: Any, path: str) -> Mapping[str, int]:
    table = _obj(value, path)
    if len(table) > 1000:
        raise _fail(path, "more than 1000 publishers")
    for key, number in table.items():
        _name(key, f"{path}.{key}")
        _count(1, 2**63 - 1)(number, f"{path}.{key}")
    return table


def _hashes(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_HELD_ASSETS:
        raise _fail(path, f"expected a list of at most {MAX_HELD_ASSETS} hashes")
    for index, item in enumerate(value):
        _sha(item, f"{path}[{index}]")
    return value


def _idents(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 1000:
        raise _fail(path, "expected a list of at most 1000 identifiers")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not 0 < len(item) <= 128:
            raise _fail(f"{path}[{index}]", "expected an identifier")
    return value


def _envelope(value: Any, path: str) -> Mapping[str, Any]:
    env = _obj(value, path)
    if set(env) != {"v", "key", "payload", "sig"} or env.get("v") != 1:
        raise _fail(path, 'expected a signed envelope {"v": 1, "key", "payload", "sig"}')
    if not all(isinstance(env[k], str) for k in ("key", "payload", "sig")):
        raise _fail(path, "key, payload and sig must be strings")
    if len(env["payload"]) > MAX_SIGNED_BYTES:
        raise _fail(path, "signed payload too large", ErrorCode.MESSAGE_TOO_LARGE)
    return env


def _error(value: Any, path: str) -> Mapping[str, Any]:
    err = _obj(value, path)
    _text(128)(err.get("code"), f"{path}.code")
    _text(4000)(err.get("message"), f"{path}.message")
    return err


def _entries(value: Any, path: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_REPORT_ENTRIES:
        raise _fail(path, f"expected 1-{MAX_REPORT_ENTRIES} entries")
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        _obj(entry, where)
        _count(1, 2**63 - 1)(entry.get("seq"), f"{where}.seq")
        _name(entry.get("kind"), f"{where}.kind")
        _text(64)(entry.get("at"), f"{where}.at")
        _obj(entry.get("data"), f"{where}.data")
    return value


def _command(value: Any, path: str) -> str:
    if value not in COMMANDS:
        raise _fail(path, f"expected one of {', '.join(COMMANDS)}", ErrorCode.COMMAND_UNKNOWN)
    return str(value)


# type -> (required fields, optional fields)
Schema = tuple[Mapping[str, Validator], Mapping[str, Validator]]
SCHEMAS: Mapping[str, Schema] = MappingProxyType(
    {
        "hello": (
            {"board": _name, "software": _text(64), "held": _versions, "assets": _hashes},
            {"seq": _versions, "alerts": _idents, "screen": _obj},
        ),
        "welcome": (
            {"session": _text(128), "heartbeat_s": _count(5, 60), "time": _text(64)},
            {"hub": _text(128)},
        ),
        "synced": ({}, {}),
        "bundle": ({"signed": _envelope}, {}),
        "alert": ({"signed": _envelope}, {}),
        "command": ({"name": _command}, {"signed": _envelope}),
        "get_asset": ({"sha256": _sha, "offset": _count(0, MAX_BLOB_BYTES)}, {}),
        "heartbeat": ({"status": _obj}, {}),
        "report": ({"entries": _entries}, {}),
        "ack": ({"ref": _ident, "ok": _boolean}, {"error": _error, "result": _obj}),
    }
)


def _kind(*values: str) -> Validator:
    def check(value: Any, path: str) -> str:
        if value not in values:
            raise _fail(path, f"expected one of {', '.join(values)}")
        return str(value)

    return check


# What a publisher tool and the reference hub say to each other on /publish (docs/protocol.md
# §17): the same framing, acks and chunks as the board protocol, other message types.
PUBLISHER_SCHEMAS: Mapping[str, Schema] = MappingProxyType(
    {
        "publish": (
            {"signed": _envelope, "kind": _kind("bundle", "alert", "command")},
            {"wait_s": _count(0, 3600)},
        ),
        "missing": ({"sha256": _hashes}, {}),
        "boards": ({}, {}),
        "screenshot": ({"board": _name}, {}),
        "ack": SCHEMAS["ack"],
    }
)
LARGE_TYPES = ("bundle", "publish")  # may exceed MAX_CONTROL_BYTES (up to MAX_TEXT_BYTES)


def _infinite(value: object) -> bool:
    # 1e400 parses as infinity, which no strict JSON writer can put back (heartbeat status,
    # report data and ack results are stored and served again as they came).
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def ack_fields(
    ref: str,
    ok: bool,
    error: Mapping[str, Any] | None = None,
    result: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the fields of an ``ack`` answering message ``ref``."""
    fields: dict[str, Any] = {"ref": ref, "ok": ok}
    if error is not None:
        fields["error"] = dict(error)
    if result is not None:
        fields["result"] = dict(result)
    return fields


def ref_of(data: str | bytes) -> str | None:
    """Return the ``id`` of a message that failed to decode, when it can be read (for the error
    ack); None otherwise. Never raises. A frame over the limit is not parsed at all."""
    if len(data) > MAX_TEXT_BYTES:
        return None
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError, TypeError):
        return None
    if isinstance(parsed, dict):
        ident = parsed.get("id")
        if isinstance(ident, str) and _ID.fullmatch(ident):
            return ident
    return None


def decode_text(data: str | bytes, schemas: Mapping[str, Schema] = SCHEMAS) -> Message:
    """Return the message in one text frame, checked against ``schemas`` (the board protocol's
    unless given). Raises ProtocolError: message.too_large,
    message.malformed (not JSON, not UTF-8, a field of the wrong shape), message.unknown_type,
    message.unsupported_version, command.unknown."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MAX_TEXT_BYTES:
        raise _fail("(message)", f"larger than {MAX_TEXT_BYTES} bytes", ErrorCode.MESSAGE_TOO_LARGE)
    try:
        parsed = decode_json(data)
    except ContentError as exc:
        raise _fail("(message)", exc.message) from None
    if not isinstance(parsed, dict):
        raise _fail("(message)", "expected a JSON object")
    if _infinite(parsed):
        raise _fail("(message)", "a number too large for a float (it would read as infinity)")
    version = parsed.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise _fail(
            "v", f"this board speaks v {PROTOCOL_VERSION}", ErrorCode.MESSAGE_UNSUPPORTED_VERSION
        )
    kind = parsed.get("type")
    ident = _ident(parsed.get("id"), "id")
    if not isinstance(kind, str) or kind not in schemas:
        raise _fail(
            "type", f"unknown message type {str(kind)[:64]!r}", ErrorCode.MESSAGE_UNKNOWN_TYPE
        )
    if kind not in LARGE_TYPES and size > MAX_CONTROL_BYTES:
        raise _fail(
            "(message)",
            f"a {kind} is at most {MAX_CONTROL_BYTES} bytes",
            ErrorCode.MESSAGE_TOO_LARGE,
        )
    required, optional = schemas[kind]
    fields: dict[str, Any] = {}
    for name, check in required.items():
        if name not in parsed:
            raise _fail(name, f"a {kind} needs {name}")
        fields[name] = check(parsed[name], name)
    for name, check in optional.items():
        if parsed.get(name) is not None:
            fields[name] = check(parsed[name], name)
    if kind == "ack" and not fields["ok"] and "error" not in fields:
        raise _fail("error", "a refusing ack needs error {code, message}")
    if kind == "command":
        signed = fields["name"] not in UNSIGNED_COMMANDS
        if signed != ("signed" in fields):
            need = "must be signed" if signed else "is never signed"
            raise _fail("signed", f"command {fields['name']} {need}")
    return Message(kind, ident, MappingProxyType(fields))


def encode_message(
    kind: str, ident: str, fields: Mapping[str, Any], schemas: Mapping[str, Schema] = SCHEMAS
) -> str:
    """Return the text frame for a message. Raises ProtocolError if it would not decode (a bug
    of the caller, not of the peer)."""
    data = {"v": PROTOCOL_VERSION, "type": kind, "id": ident, **fields}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    decode_text(text, schemas)  # what we send must be what we accept
    return text


def decode_chunk(data: bytes) -> Chunk:
    """Return the chunk in one binary frame. Raises ProtocolError (message.malformed,
    message.too_large)."""
    if len(data) < _HEADER.size:
        raise _fail("(chunk)", "shorter than a chunk header")
    magic, digest, offset, total = _HEADER.unpack_from(data)
    if magic != CHUNK_MAGIC:
        raise _fail("(chunk)", "not a chunk (bad magic)")
    body = bytes(data[_HEADER.size :])
    if len(body) > MAX_CHUNK_BYTES:
        raise _fail("(chunk)", f"more than {MAX_CHUNK_BYTES} bytes", ErrorCode.MESSAGE_TOO_LARGE)
    if not 0 < total <= MAX_BLOB_BYTES:
        raise _fail(
            "(chunk)", f"blob size must be 1..{MAX_BLOB_BYTES}", ErrorCode.MESSAGE_TOO_LARGE
        )
    if not body or offset + len(body) > total:
        raise _fail("(chunk)", "empty, or reaches past the blob's end")
    return Chunk(digest.hex(), offset, total, body)


def encode_chunk(chunk: Chunk) -> bytes:
    """Return the binary frame for ``chunk``."""
    return (
        _HEADER.pack(CHUNK_MAGIC, bytes.fromhex(chunk.sha256), chunk.offset, chunk.total)
        + chunk.data
    )


def iter_chunks(
    sha256: str, data: bytes, offset: int = 0, size: int = CHUNK_BYTES
) -> Iterator[Chunk]:
    """Yield ``data`` (the whole blob) from ``offset`` on, cut into chunks of ``size`` bytes."""
    total = len(data)
    view = memoryview(data)
    for start in range(offset, total, size):
        yield Chunk(sha256, start, total, bytes(view[start : start + size]))
