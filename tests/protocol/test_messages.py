"""Wire codec: every message type round trips, every refusal carries its stable code, and no
input makes the decoders raise anything but ProtocolError."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signage.errors import ErrorCode, ProtocolError
from signage.model import bundle_to_json
from signage.protocol import PrivateKey, Trust
from signage.protocol.messages import (
    CHUNK_BYTES,
    CHUNK_MAGIC,
    COMMANDS,
    MAX_BLOB_BYTES,
    MAX_CHUNK_BYTES,
    MAX_CONTROL_BYTES,
    MAX_REPORT_ENTRIES,
    MAX_TEXT_BYTES,
    PROTOCOL_VERSION,
    SCHEMAS,
    UNSIGNED_COMMANDS,
    Chunk,
    Message,
    decode_chunk,
    decode_text,
    encode_chunk,
    encode_message,
    iter_chunks,
    ref_of,
)
from signage.protocol.signing import MAX_SIGNED_BYTES

# A fixed key: Ed25519 is deterministic, so every envelope below is the same on every run.
KEY = PrivateKey("tinh-62", "62", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
IMAGE = b"\xff\xd8\xff\xe0 anh dong lua " * 40
SHA = hashlib.sha256(IMAGE).hexdigest()
BUNDLE = bundle_to_json(
    {
        "bundle": 1,
        "publisher": "tinh-62",
        "version": 1764150000000,
        "issued": "2026-11-26T17:00:00+07:00",
        "area": "62/23456",
        "items": [
            {
                "id": "tb-1",
                "template": "announcement",
                "fields": {"title": "Thông báo", "body": "Lịch tiêm chủng tháng 12"},
            }
        ],
        "assets": {"dong-lua.jpg": {"sha256": SHA, "size": len(IMAGE), "media_type": "image/jpeg"}},
    }
)
ALERT = json.dumps(
    {
        "alert": 1,
        "publisher": "tinh-62",
        "seq": 1764150000001,
        "identifier": "62-bao-9",
        "sent": "2026-11-26T17:00:00+07:00",
        "status": "Actual",
        "msgType": "Alert",
        "urgency": "Immediate",
        "severity": "Extreme",
        "certainty": "Observed",
        "expires": "2026-11-27T17:00:00+07:00",
        "headline": "Bão số 9 đổ bộ",
        "description": "Gió giật cấp 12",
        "area": "62/23456",
    },
    ensure_ascii=False,
).encode()
BLANK = json.dumps(
    {
        "command": 1,
        "publisher": "tinh-62",
        "seq": 1764150000002,
        "issued": "2026-11-26T17:05:00+07:00",
        "area": "62/23456",
        "name": "blank",
        "args": {},
    }
).encode()


def _envelope(payload: bytes) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(KEY.sign(payload))
    return envelope


ENTRY = {"seq": 1, "kind": "played", "at": "2026-11-26T17:00:05+07:00", "data": {"item": "tb-1"}}
SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "hello",
        {"board": "sa-thay-01", "software": "signage 0.1.0", "held": {}, "assets": []},
    ),
    (
        "hello",
        {
            "board": "sa-thay-01",
            "software": "signage 0.1.0",
            "held": {"tinh-62": 1764150000000, "xa-sa-thay": 3},
            "assets": [SHA, "0" * 64],
            "seq": {"tinh-62": 1764150000002},
            "alerts": ["62-bao-9"],
            "screen": {"width": 1920, "height": 1080, "name": "Màn hình UBND"},
        },
    ),
    ("welcome", {"session": "s-7f3a", "heartbeat_s": 30, "time": "2026-11-26T17:00:00+07:00"}),
    (
        "welcome",
        {"session": "s-7f3a", "heartbeat_s": 5, "time": "2026-11-26T17:00:00Z", "hub": "hub-62"},
    ),
    ("synced", {}),
    ("bundle", {"signed": _envelope(BUNDLE)}),
    ("alert", {"signed": _envelope(ALERT)}),
    ("command", {"name": "reload"}),
    ("command", {"name": "screenshot"}),
    ("command", {"name": "blank", "signed": _envelope(BLANK)}),
    ("get_asset", {"sha256": SHA, "offset": 0}),
    ("get_asset", {"sha256": SHA, "offset": MAX_BLOB_BYTES}),
    ("heartbeat", {"status": {"uptime_s": 3600, "temp_c": 51.5, "playing": "tb-1", "ok": True}}),
    ("heartbeat", {"status": {}}),
    ("report", {"entries": [ENTRY]}),
    ("report", {"entries": [dict(ENTRY, seq=n) for n in range(1, MAX_REPORT_ENTRIES + 1)]}),
    ("ack", {"ref": "h12", "ok": True}),
    ("ack", {"ref": "h12", "ok": True, "result": {"version": 1764150000000}}),
    (
        "ack",
        {
            "ref": "h13",
            "ok": False,
            "error": {"code": "bundle.version_not_newer", "message": "không mới hơn"},
        },
    ),
]
FIRST: dict[str, dict[str, Any]] = {}
for _kind, _fields in SAMPLES:
    FIRST.setdefault(_kind, _fields)

CODES = {
    ErrorCode.MESSAGE_MALFORMED,
    ErrorCode.MESSAGE_TOO_LARGE,
    ErrorCode.MESSAGE_UNKNOWN_TYPE,
    ErrorCode.MESSAGE_UNSUPPORTED_VERSION,
    ErrorCode.COMMAND_UNKNOWN,
}


def _raw(kind: Any, fields: dict[str, Any], ident: Any = "h1", v: Any = 1) -> str:
    return json.dumps({"v": v, "type": kind, "id": ident, **fields}, ensure_ascii=False)


def _refused(data: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_text(data)
    return caught.value


def _padded(kind: str, size: int) -> str:
    """Return a valid ``kind`` message of exactly ``size`` UTF-8 bytes (JSON whitespace after)."""
    text = encode_message(kind, "h1", FIRST[kind])
    return text + " " * (size - len(text.encode()))


# -- round trips --------------------------------------------------------------------------------


def test_the_samples_cover_every_message_type() -> None:
    assert {kind for kind, _ in SAMPLES} == set(SCHEMAS)
    assert set(UNSIGNED_COMMANDS) < set(COMMANDS)


@pytest.mark.parametrize(("kind", "fields"), SAMPLES, ids=[k for k, _ in SAMPLES])
def test_every_message_type_round_trips(kind: str, fields: dict[str, Any]) -> None:
    text = encode_message(kind, "h7", fields)
    on_wire = json.loads(text)
    assert on_wire["v"] == PROTOCOL_VERSION and on_wire["type"] == kind and on_wire["id"] == "h7"
    for data in (text, text.encode("utf-8")):
        message = decode_text(data)
        assert message == Message(kind, "h7", message.fields)
        assert dict(message.fields) == fields
    assert encode_message(kind, "h7", dict(decode_text(text).fields)) == text


def test_vietnamese_text_travels_as_utf8_not_escapes() -> None:
    text = encode_message("heartbeat", "b3", {"status": {"note": "Bảng tin xã Sa Thầy"}})
    assert "Bảng tin xã Sa Thầy" in text
    assert decode_text(text.encode("utf-8")).fields["status"]["note"] == "Bảng tin xã Sa Thầy"


def test_signed_envelope_verifies_after_the_trip() -> None:
    message = decode_text(encode_message("bundle", "h2", {"signed": _envelope(BUNDLE)}))
    signed = Trust([KEY.public()]).verify(message.signed())
    assert signed.payload == BUNDLE and signed.key_id == "tinh-62" and signed.area == "62"


def test_fields_a_type_does_not_define_are_dropped() -> None:
    message = decode_text(_raw("synced", {"later": {"x": 1}, "board": "!!"}))
    assert message.type == "synced" and dict(message.fields) == {}
    hello = decode_text(_raw("hello", dict(FIRST["hello"], firmware="2.1", id_extra=[1])))
    assert set(hello.fields) == {"board", "software", "held", "assets"}


def test_an_optional_null_is_the_same_as_absent() -> None:
    message = decode_text(_raw("welcome", dict(FIRST["welcome"], hub=None)))
    assert "hub" not in message.fields
    ack = decode_text(_raw("ack", {"ref": "h1", "ok": True, "error": None, "result": None}))
    assert dict(ack.fields) == {"ref": "h1", "ok": True}


def test_decoded_fields_are_read_only() -> None:
    message = decode_text(encode_message("synced", "h1", {}))
    with pytest.raises(TypeError):
        message.fields["x"] = 1  # type: ignore[index]


# -- refusals -----------------------------------------------------------------------------------

_HELLO = FIRST["hello"]
_WELCOME = FIRST["welcome"]
_GET = FIRST["get_asset"]
_ENV = FIRST["bundle"]["signed"]
REFUSALS: list[tuple[str, str, ErrorCode, str | None]] = [
    # (test id, raw text, code, path)
    ("not-json", "hello", ErrorCode.MESSAGE_MALFORMED, "(message)"),
    ("empty", "", ErrorCode.MESSAGE_MALFORMED, "(message)"),
    ("array", "[1, 2]", ErrorCode.MESSAGE_MALFORMED, "(message)"),
    ("string", '"hello"', ErrorCode.MESSAGE_MALFORMED, "(message)"),
    ("truncated", _raw("synced", {})[:-1], ErrorCode.MESSAGE_MALFORMED, "(message)"),
    ("no-v", '{"type": "synced", "id": "h1"}', ErrorCode.MESSAGE_UNSUPPORTED_VERSION, "v"),
    ("v2", _raw("synced", {}, v=2), ErrorCode.MESSAGE_UNSUPPORTED_VERSION, "v"),
    ("v0", _raw("synced", {}, v=0), ErrorCode.MESSAGE_UNSUPPORTED_VERSION, "v"),
    ("v-text", _raw("synced", {}, v="1"), ErrorCode.MESSAGE_UNSUPPORTED_VERSION, "v"),
    ("v-null", _raw("synced", {}, v=None), ErrorCode.MESSAGE_UNSUPPORTED_VERSION, "v"),
    ("no-id", '{"v": 1, "type": "synced"}', ErrorCode.MESSAGE_MALFORMED, "id"),
    ("id-empty", _raw("synced", {}, ident=""), ErrorCode.MESSAGE_MALFORMED, "id"),
    ("id-space", _raw("synced", {}, ident="h 1"), ErrorCode.MESSAGE_MALFORMED, "id"),
    ("id-65", _raw("synced", {}, ident="h" * 65), ErrorCode.MESSAGE_MALFORMED, "id"),
    ("id-number", _raw("synced", {}, ident=7), ErrorCode.MESSAGE_MALFORMED, "id"),
    ("id-accent", _raw("synced", {}, ident="bảng"), ErrorCode.MESSAGE_MALFORMED, "id"),
    ("no-type", '{"v": 1, "id": "h1"}', ErrorCode.MESSAGE_UNKNOWN_TYPE, "type"),
    ("type-typo", _raw("welcom", {}), ErrorCode.MESSAGE_UNKNOWN_TYPE, "type"),
    ("type-case", _raw("Hello", _HELLO), ErrorCode.MESSAGE_UNKNOWN_TYPE, "type"),
    ("type-number", _raw(3, {}), ErrorCode.MESSAGE_UNKNOWN_TYPE, "type"),
    ("type-chunk", _raw("chunk", {}), ErrorCode.MESSAGE_UNKNOWN_TYPE, "type"),
    (
        "hello-no-board",
        _raw("hello", {k: v for k, v in _HELLO.items() if k != "board"}),
        ErrorCode.MESSAGE_MALFORMED,
        "board",
    ),
    (
        "hello-board-name",
        _raw("hello", dict(_HELLO, board="UBND Sa Thầy")),
        ErrorCode.MESSAGE_MALFORMED,
        "board",
    ),
    (
        "hello-software-long",
        _raw("hello", dict(_HELLO, software="s" * 65)),
        ErrorCode.MESSAGE_MALFORMED,
        "software",
    ),
    (
        "hello-held-zero",
        _raw("hello", dict(_HELLO, held={"tinh-62": 0})),
        ErrorCode.MESSAGE_MALFORMED,
        "held.tinh-62",
    ),
    (
        "hello-held-bool",
        _raw("hello", dict(_HELLO, held={"tinh-62": True})),
        ErrorCode.MESSAGE_MALFORMED,
        "held.tinh-62",
    ),
    (
        "hello-held-2**63",
        _raw("hello", dict(_HELLO, held={"tinh-62": 2**63})),
        ErrorCode.MESSAGE_MALFORMED,
        "held.tinh-62",
    ),
    (
        "hello-held-bad-name",
        _raw("hello", dict(_HELLO, held={"Tinh 62": 1})),
        ErrorCode.MESSAGE_MALFORMED,
        "held.Tinh 62",
    ),
    (
        "hello-held-1001",
        _raw("hello", dict(_HELLO, held={f"p{n}": 1 for n in range(1001)})),
        ErrorCode.MESSAGE_MALFORMED,
        "held",
    ),
    (
        "hello-assets-upper",
        _raw("hello", dict(_HELLO, assets=[SHA.upper()])),
        ErrorCode.MESSAGE_MALFORMED,
        "assets[0]",
    ),
    (
        "hello-assets-text",
        _raw("hello", dict(_HELLO, assets=SHA)),
        ErrorCode.MESSAGE_MALFORMED,
        "assets",
    ),
    (
        "hello-alerts-empty-id",
        _raw("hello", dict(_HELLO, alerts=["62-bao-9", ""])),
        ErrorCode.MESSAGE_MALFORMED,
        "alerts[1]",
    ),
    (
        "hello-screen-list",
        _raw("hello", dict(_HELLO, screen=[1920, 1080])),
        ErrorCode.MESSAGE_MALFORMED,
        "screen",
    ),
    (
        "welcome-heartbeat-4",
        _raw("welcome", dict(_WELCOME, heartbeat_s=4)),
        ErrorCode.MESSAGE_MALFORMED,
        "heartbeat_s",
    ),
    (
        "welcome-heartbeat-3601",
        _raw("welcome", dict(_WELCOME, heartbeat_s=3601)),
        ErrorCode.MESSAGE_MALFORMED,
        "heartbeat_s",
    ),
    (
        "welcome-heartbeat-float",
        _raw("welcome", dict(_WELCOME, heartbeat_s=30.0)),
        ErrorCode.MESSAGE_MALFORMED,
        "heartbeat_s",
    ),
    (
        "welcome-heartbeat-bool",
        _raw("welcome", dict(_WELCOME, heartbeat_s=True)),
        ErrorCode.MESSAGE_MALFORMED,
        "heartbeat_s",
    ),
    (
        "welcome-time-empty",
        _raw("welcome", dict(_WELCOME, time="")),
        ErrorCode.MESSAGE_MALFORMED,
        "time",
    ),
    ("bundle-no-signed", _raw("bundle", {}), ErrorCode.MESSAGE_MALFORMED, "signed"),
    (
        "bundle-signed-text",
        _raw("bundle", {"signed": json.dumps(_ENV)}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "bundle-envelope-v2",
        _raw("bundle", {"signed": dict(_ENV, v=2)}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "bundle-envelope-extra-key",
        _raw("bundle", {"signed": dict(_ENV, note="x")}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "bundle-envelope-no-sig",
        _raw("bundle", {"signed": {k: v for k, v in _ENV.items() if k != "sig"}}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "bundle-envelope-payload-number",
        _raw("bundle", {"signed": dict(_ENV, payload=12)}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    ("alert-no-signed", _raw("alert", {}), ErrorCode.MESSAGE_MALFORMED, "signed"),
    ("command-unknown", _raw("command", {"name": "reboot"}), ErrorCode.COMMAND_UNKNOWN, "name"),
    ("command-case", _raw("command", {"name": "Reload"}), ErrorCode.COMMAND_UNKNOWN, "name"),
    ("command-number", _raw("command", {"name": 1}), ErrorCode.COMMAND_UNKNOWN, "name"),
    ("command-no-name", _raw("command", {}), ErrorCode.MESSAGE_MALFORMED, "name"),
    (
        "command-unsigned-blank",
        _raw("command", {"name": "blank"}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "command-unsigned-power",
        _raw("command", {"name": "power"}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "command-signed-reload",
        _raw("command", {"name": "reload", "signed": _ENV}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "command-signed-screenshot",
        _raw("command", {"name": "screenshot", "signed": _ENV}),
        ErrorCode.MESSAGE_MALFORMED,
        "signed",
    ),
    (
        "get-asset-negative",
        _raw("get_asset", dict(_GET, offset=-1)),
        ErrorCode.MESSAGE_MALFORMED,
        "offset",
    ),
    (
        "get-asset-past-max",
        _raw("get_asset", dict(_GET, offset=MAX_BLOB_BYTES + 1)),
        ErrorCode.MESSAGE_MALFORMED,
        "offset",
    ),
    (
        "get-asset-offset-text",
        _raw("get_asset", dict(_GET, offset="0")),
        ErrorCode.MESSAGE_MALFORMED,
        "offset",
    ),
    (
        "get-asset-no-offset",
        _raw("get_asset", {"sha256": SHA}),
        ErrorCode.MESSAGE_MALFORMED,
        "offset",
    ),
    (
        "get-asset-short-sha",
        _raw("get_asset", dict(_GET, sha256=SHA[:63])),
        ErrorCode.MESSAGE_MALFORMED,
        "sha256",
    ),
    (
        "get-asset-name",
        _raw("get_asset", dict(_GET, sha256="dong-lua.jpg")),
        ErrorCode.MESSAGE_MALFORMED,
        "sha256",
    ),
    ("heartbeat-list", _raw("heartbeat", {"status": []}), ErrorCode.MESSAGE_MALFORMED, "status"),
    ("heartbeat-none", _raw("heartbeat", {}), ErrorCode.MESSAGE_MALFORMED, "status"),
    ("report-empty", _raw("report", {"entries": []}), ErrorCode.MESSAGE_MALFORMED, "entries"),
    (
        "report-too-many",
        _raw("report", {"entries": [ENTRY] * (MAX_REPORT_ENTRIES + 1)}),
        ErrorCode.MESSAGE_MALFORMED,
        "entries",
    ),
    (
        "report-seq-zero",
        _raw("report", {"entries": [dict(ENTRY, seq=0)]}),
        ErrorCode.MESSAGE_MALFORMED,
        "entries[0].seq",
    ),
    (
        "report-kind-case",
        _raw("report", {"entries": [ENTRY, dict(ENTRY, kind="Played")]}),
        ErrorCode.MESSAGE_MALFORMED,
        "entries[1].kind",
    ),
    (
        "report-no-data",
        _raw("report", {"entries": [{k: v for k, v in ENTRY.items() if k != "data"}]}),
        ErrorCode.MESSAGE_MALFORMED,
        "entries[0].data",
    ),
    (
        "report-entry-list",
        _raw("report", {"entries": [[1, "played"]]}),
        ErrorCode.MESSAGE_MALFORMED,
        "entries[0]",
    ),
    (
        "ack-refusing-without-error",
        _raw("ack", {"ref": "h1", "ok": False}),
        ErrorCode.MESSAGE_MALFORMED,
        "error",
    ),
    (
        "ack-refusing-error-null",
        _raw("ack", {"ref": "h1", "ok": False, "error": None}),
        ErrorCode.MESSAGE_MALFORMED,
        "error",
    ),
    (
        "ack-error-no-code",
        _raw("ack", {"ref": "h1", "ok": False, "error": {"message": "x"}}),
        ErrorCode.MESSAGE_MALFORMED,
        "error.code",
    ),
    (
        "ack-error-empty-message",
        _raw("ack", {"ref": "h1", "ok": False, "error": {"code": "x", "message": ""}}),
        ErrorCode.MESSAGE_MALFORMED,
        "error.message",
    ),
    ("ack-ok-text", _raw("ack", {"ref": "h1", "ok": "yes"}), ErrorCode.MESSAGE_MALFORMED, "ok"),
    ("ack-ok-number", _raw("ack", {"ref": "h1", "ok": 1}), ErrorCode.MESSAGE_MALFORMED, "ok"),
    ("ack-no-ref", _raw("ack", {"ok": True}), ErrorCode.MESSAGE_MALFORMED, "ref"),
    ("ack-ref-space", _raw("ack", {"ref": "h 1", "ok": True}), ErrorCode.MESSAGE_MALFORMED, "ref"),
    (
        "ack-result-list",
        _raw("ack", {"ref": "h1", "ok": True, "result": [1]}),
        ErrorCode.MESSAGE_MALFORMED,
        "result",
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "path"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_carry_their_code(text: str, code: ErrorCode, path: str | None) -> None:
    for data in (text, text.encode("utf-8")):
        error = _refused(data)
        assert error.code is code
        assert error.path == path


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_a_message_type_refuses_each_missing_required_field(kind: str) -> None:
    required, _ = SCHEMAS[kind]
    for name in required:
        fields = {k: v for k, v in FIRST[kind].items() if k != name}
        error = _refused(_raw(kind, fields))
        assert (error.code, error.path) == (ErrorCode.MESSAGE_MALFORMED, name)


def test_whole_text_over_max_text_bytes_is_too_large() -> None:
    at_limit = _padded("bundle", MAX_TEXT_BYTES)
    assert decode_text(at_limit).type == "bundle"
    for data in (at_limit + " ", (at_limit + " ").encode(), "x" * (MAX_TEXT_BYTES + 1)):
        error = _refused(data)
        assert error.code is ErrorCode.MESSAGE_TOO_LARGE


def test_size_counts_utf8_bytes_not_characters() -> None:
    base = encode_message("bundle", "h1", {"signed": dict(_ENV, key="ệ")})  # 1 char, 3 bytes
    at_limit = base + " " * (MAX_TEXT_BYTES - len(base.encode()))
    assert decode_text(at_limit).type == "bundle"
    over = at_limit + " "
    assert len(over) < MAX_TEXT_BYTES < len(over.encode())
    assert _refused(over).code is ErrorCode.MESSAGE_TOO_LARGE


def test_a_bundle_may_be_larger_than_a_control_message() -> None:
    envelope = dict(_ENV, payload="A" * (4 * MAX_CONTROL_BYTES))
    message = decode_text(_raw("bundle", {"signed": envelope}))
    assert message.fields["signed"]["payload"] == envelope["payload"]


def test_a_signed_payload_over_max_signed_bytes_is_too_large() -> None:
    envelope = dict(_ENV, payload="A" * (MAX_SIGNED_BYTES + 1))
    error = _refused(_raw("bundle", {"signed": envelope}))
    assert (error.code, error.path) == (ErrorCode.MESSAGE_TOO_LARGE, "signed")
    at_limit = dict(_ENV, payload="A" * MAX_SIGNED_BYTES)
    assert decode_text(_raw("bundle", {"signed": at_limit})).type == "bundle"


_NOT_BUNDLES = [kind for kind in SCHEMAS if kind != "bundle"]


@pytest.mark.parametrize("kind", _NOT_BUNDLES)
def test_a_non_bundle_message_over_max_control_bytes_is_too_large(kind: str) -> None:
    assert decode_text(_padded(kind, MAX_CONTROL_BYTES)).type == kind
    error = _refused(_padded(kind, MAX_CONTROL_BYTES + 1))
    assert error.code is ErrorCode.MESSAGE_TOO_LARGE


def test_a_bundle_message_over_max_control_bytes_is_fine() -> None:
    assert decode_text(_padded("bundle", MAX_CONTROL_BYTES + 1)).type == "bundle"


@pytest.mark.parametrize(
    "data",
    [
        b'{"v": 1, "type": "synced", "id": "h\xff1"}',
        b'{"v": 1, "type": "heartbeat", "id": "b1", "status": {"note": "B\xe1ng"}}',
        b"\xc3\x28",
        b"\xed\xa0\x80",  # an encoded surrogate is not UTF-8
        b'{"v": 1, "type": "synced", "id": "h1"}\xff',
    ],
    ids=["in-id", "latin-1-text", "bad-pair", "surrogate", "trailing"],
)
def test_invalid_utf8_is_malformed(data: bytes) -> None:
    assert _refused(data).code is ErrorCode.MESSAGE_MALFORMED


@pytest.mark.parametrize(
    "text",
    [
        '{"v": 1, "v": 1, "type": "synced", "id": "h1"}',
        '{"v": 1, "type": "synced", "id": "h1", "id": "h2"}',
        '{"v": 1, "type": "synced", "type": "synced", "id": "h1"}',
        '{"v": 1, "type": "heartbeat", "id": "b1", "status": {"a": 1, "a": 2}}',
        '{"v": 1, "type": "ack", "id": "b1", "ref": "h1", "ok": true, "ok": false}',
    ],
)
def test_duplicate_keys_are_malformed(text: str) -> None:
    assert _refused(text).code is ErrorCode.MESSAGE_MALFORMED


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_malformed(constant: str) -> None:
    text = '{"v": 1, "type": "heartbeat", "id": "b1", "status": {"temp_c": ' + constant + "}}"
    assert _refused(text).code is ErrorCode.MESSAGE_MALFORMED


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"v": 1, "type": "heartbeat", "id": "b1", "status": '
        + '{"a": ' * 100_000
        + "1"
        + "}" * 100_001,
        '{"a": ' * 200_000,
    ],
    ids=["array", "inside-status", "unclosed"],
)
def test_deep_nesting_is_malformed(text: str) -> None:
    assert _refused(text).code is ErrorCode.MESSAGE_MALFORMED
    assert ref_of(text) is None


def test_a_number_too_long_for_int_is_malformed() -> None:
    text = '{"v": 1, "type": "heartbeat", "id": "b1", "status": {"n": ' + "9" * 5000 + "}}"
    assert _refused(text).code is ErrorCode.MESSAGE_MALFORMED


@pytest.mark.parametrize("v", [True, 1.0, [1], {"major": 1}])
def test_v_must_be_the_integer_1(v: object) -> None:
    assert _refused(_raw("synced", {}, v=v)).code is ErrorCode.MESSAGE_UNSUPPORTED_VERSION


def test_version_is_checked_before_type_and_id() -> None:
    assert _refused('{"v": 2, "type": "nope"}').code is ErrorCode.MESSAGE_UNSUPPORTED_VERSION
    assert _refused('{"v": 1, "type": "nope", "id": "h1"}').code is ErrorCode.MESSAGE_UNKNOWN_TYPE


# -- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "ident", "fields", "code"),
    [
        ("hello", "b1", {"board": "Bad Name"}, ErrorCode.MESSAGE_MALFORMED),
        ("ack", "b1", {"ref": "h1", "ok": False}, ErrorCode.MESSAGE_MALFORMED),
        ("ack", "b 1", {"ref": "h1", "ok": True}, ErrorCode.MESSAGE_MALFORMED),
        ("goodbye", "b1", {}, ErrorCode.MESSAGE_UNKNOWN_TYPE),
        ("command", "h1", {"name": "format-disk"}, ErrorCode.COMMAND_UNKNOWN),
        ("command", "h1", {"name": "blank"}, ErrorCode.MESSAGE_MALFORMED),
    ],
)
def test_encode_refuses_what_decode_would_refuse(
    kind: str, ident: str, fields: dict[str, Any], code: ErrorCode
) -> None:
    with pytest.raises(ProtocolError) as caught:
        encode_message(kind, ident, fields)
    assert caught.value.code is code


def test_encode_cannot_override_the_envelope_keys() -> None:
    """Fields come after v/type/id, so a field named v changes the version and is refused."""
    with pytest.raises(ProtocolError) as caught:
        encode_message("synced", "h1", {"v": 2})
    assert caught.value.code is ErrorCode.MESSAGE_UNSUPPORTED_VERSION


# -- ref_of -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "ref"),
    [
        ('{"v": 9, "type": "x", "id": "h12"}', "h12"),
        (b'{"id": "b7", "ok": "maybe"}', "b7"),
        ('{"id": "h 12"}', None),
        ('{"id": 12}', None),
        ('{"id": "' + "h" * 65 + '"}', None),
        ("[1, 2]", None),
        ("not json", None),
        (b"\xff\xfe\x00", None),
        ("", None),
    ],
)
def test_ref_of_reads_the_id_of_a_refused_message(data: str | bytes, ref: str | None) -> None:
    assert ref_of(data) == ref


# -- chunks -------------------------------------------------------------------------------------


def _header(digest: bytes, offset: int, total: int, magic: bytes = CHUNK_MAGIC) -> bytes:
    return struct.pack(">4s32sQQ", magic, digest, offset, total)


def test_chunk_round_trip_and_layout() -> None:
    chunk = Chunk(SHA, 4, 10, b"456789")
    frame = encode_chunk(chunk)
    assert (
        frame
        == b"SGB1"
        + bytes.fromhex(SHA)
        + (4).to_bytes(8, "big")
        + (10).to_bytes(8, "big")
        + b"456789"
    )
    assert decode_chunk(frame) == chunk
    assert decode_chunk(bytearray(frame)) == chunk
    assert chunk.end == 10 and chunk.last
    first = Chunk(SHA, 0, 10, b"0123")
    assert first.end == 4 and not first.last


def test_iter_chunks_cuts_the_blob_and_resumes() -> None:
    blob = bytes(range(256)) * (CHUNK_BYTES * 5 // 2 // 256)
    digest = hashlib.sha256(blob).hexdigest()
    chunks = list(iter_chunks(digest, blob))
    assert [c.offset for c in chunks] == [0, CHUNK_BYTES, 2 * CHUNK_BYTES]
    assert [len(c.data) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES // 2]
    assert [c.last for c in chunks] == [False, False, True]
    assert all(c.total == len(blob) and c.sha256 == digest for c in chunks)
    assert b"".join(c.data for c in chunks) == blob
    assert [decode_chunk(encode_chunk(c)) for c in chunks] == chunks
    resumed = list(iter_chunks(digest, blob, offset=CHUNK_BYTES + 5))
    assert resumed[0].offset == CHUNK_BYTES + 5
    assert blob[: CHUNK_BYTES + 5] + b"".join(c.data for c in resumed) == blob
    small = list(iter_chunks(digest, b"abcdefg", size=3))
    assert [(c.offset, c.data) for c in small] == [(0, b"abc"), (3, b"def"), (6, b"g")]
    assert list(iter_chunks(digest, b"")) == []
    assert list(iter_chunks(digest, b"abc", offset=3)) == []


def test_a_chunk_of_max_chunk_bytes_is_accepted() -> None:
    body = b"\x00" * MAX_CHUNK_BYTES
    chunk = decode_chunk(_header(bytes(32), 0, MAX_BLOB_BYTES) + body)
    assert len(chunk.data) == MAX_CHUNK_BYTES and chunk.total == MAX_BLOB_BYTES
    last = decode_chunk(_header(bytes(32), MAX_BLOB_BYTES - 1, MAX_BLOB_BYTES) + b"z")
    assert last.last


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"", ErrorCode.MESSAGE_MALFORMED),
        (b"SGB1", ErrorCode.MESSAGE_MALFORMED),
        (_header(bytes(32), 0, 10)[:-1], ErrorCode.MESSAGE_MALFORMED),
        (_header(bytes(32), 0, 10), ErrorCode.MESSAGE_MALFORMED),  # no data
        (_header(bytes(32), 0, 10, magic=b"SGB2") + b"x", ErrorCode.MESSAGE_MALFORMED),
        (_header(bytes(32), 0, 10, magic=b"sgb1") + b"x", ErrorCode.MESSAGE_MALFORMED),
        (b'{"v": 1, "type": "synced", "id": "h1"}' + bytes(20), ErrorCode.MESSAGE_MALFORMED),
        (_header(bytes(32), 5, 10) + b"123456", ErrorCode.MESSAGE_MALFORMED),  # past the end
        (_header(bytes(32), 10, 10) + b"1", ErrorCode.MESSAGE_MALFORMED),
        (_header(bytes(32), 2**64 - 1, 10) + b"1", ErrorCode.MESSAGE_MALFORMED),
        (_header(bytes(32), 0, MAX_BLOB_BYTES + 1) + b"1", ErrorCode.MESSAGE_TOO_LARGE),
        (_header(bytes(32), 0, 2**64 - 1) + b"1", ErrorCode.MESSAGE_TOO_LARGE),
        (
            _header(bytes(32), 0, MAX_BLOB_BYTES) + b"\x00" * (MAX_CHUNK_BYTES + 1),
            ErrorCode.MESSAGE_TOO_LARGE,
        ),
    ],
    ids=[
        "empty",
        "magic-only",
        "short-header",
        "no-data",
        "bad-magic",
        "magic-case",
        "a-text-frame",
        "past-the-end",
        "starts-at-the-end",
        "offset-max",
        "blob-too-large",
        "blob-u64-max",
        "oversized",
    ],
)
def test_bad_chunks_are_refused(frame: bytes, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_chunk(frame)
    assert caught.value.code is code
    assert caught.value.path == "(chunk)"


def test_a_chunk_of_an_empty_blob_is_refused() -> None:
    with pytest.raises(ProtocolError):
        decode_chunk(_header(bytes(32), 0, 0) + b"x")


# -- fuzz ---------------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_ANY_TEXT = st.lists(st.one_of(st.characters(), st.characters(categories=["Cs"]))).map("".join)


def _decodes_or_refuses(data: str | bytes) -> Message | None:
    try:
        message = decode_text(data)
    except ProtocolError as exc:
        assert exc.code in CODES
        return None
    assert message.type in SCHEMAS and isinstance(message.id, str)
    return message


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    _decodes_or_refuses(data)
    ref = ref_of(data)
    assert ref is None or isinstance(ref, str)


@FUZZ
@given(_ANY_TEXT)
def test_any_text_decodes_or_is_refused(text: str) -> None:
    _decodes_or_refuses(text)
    _decodes_or_refuses('{"v": 1, "type": "heartbeat", "id": "b1", "status": ' + text)
    ref_of(text)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_decode_as_a_chunk_or_are_refused(data: bytes) -> None:
    for frame in (data, CHUNK_MAGIC + data):
        try:
            chunk = decode_chunk(frame)
        except ProtocolError as exc:
            assert exc.code in (ErrorCode.MESSAGE_MALFORMED, ErrorCode.MESSAGE_TOO_LARGE)
        else:
            assert 0 <= chunk.offset < chunk.end <= chunk.total <= MAX_BLOB_BYTES


@FUZZ
@given(
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**64 - 1) | st.integers(0, 300),
    st.integers(0, 2**64 - 1) | st.integers(0, 300),
    st.binary(max_size=100),
)
def test_chunk_headers_decode_to_what_was_packed(
    digest: bytes, offset: int, total: int, data: bytes
) -> None:
    frame = _header(digest, offset, total) + data
    try:
        chunk = decode_chunk(frame)
    except ProtocolError:
        assert not data or offset + len(data) > total or not 0 < total <= MAX_BLOB_BYTES
    else:
        assert chunk == Chunk(digest.hex(), offset, total, data)
        assert encode_chunk(chunk) == frame


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_GOOD_VALUES: dict[str, list[Any]] = {}
for _kind, _fields in SAMPLES:
    for _name, _value in _fields.items():
        _GOOD_VALUES.setdefault(_name, []).append(_value)
_GOOD_VALUES["name"] = list(COMMANDS)


@st.composite
def _random_messages(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(sorted(SCHEMAS)))
    required, optional = SCHEMAS[kind]
    obj: dict[str, Any] = {
        "v": draw(st.just(1) | _JSON),
        "type": kind,
        "id": draw(st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True) | _JSON),
    }
    for name in [*required, *optional]:
        choice = draw(st.sampled_from(["absent", "random", "good", "good"]))
        if choice == "random":
            obj[name] = draw(_JSON)
        elif choice == "good":
            obj[name] = draw(st.sampled_from(_GOOD_VALUES[name]))
    return kind, json.dumps(obj, ensure_ascii=draw(st.booleans()))


@FUZZ
@given(_random_messages())
def test_schema_shaped_messages_decode_or_are_refused(case: tuple[str, str]) -> None:
    kind, text = case
    message = _decodes_or_refuses(text)
    if message is None:
        return
    assert message.type == kind
    required, optional = SCHEMAS[kind]
    assert set(required) <= set(message.fields) <= set(required) | set(optional)
    again = decode_text(encode_message(kind, message.id, dict(message.fields)))
    assert again == Message(kind, message.id, again.fields)
    assert dict(again.fields) == dict(message.fields)
