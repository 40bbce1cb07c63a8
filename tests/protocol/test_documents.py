"""Signed documents: emergency alerts and commands (parse, to_item, accept_alert/accept_command),
the board's area check of accept_bundle, and single-byte changes of a signed envelope."""

from __future__ import annotations

import base64
import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signage.errors import ContentError, ErrorCode, SigningError
from signage.layout.templates import parse_template
from signage.model import (
    MAX_ID_LENGTH,
    Alert,
    Priority,
    bundle_to_json,
    load_alert_json,
    load_command_json,
    parse_alert,
    parse_command,
    parse_item,
)
from signage.protocol import PrivateKey, Trust, accept_alert, accept_bundle, accept_command
from signage.protocol.messages import decode_text, encode_message
from signage.protocol.signing import canonical_envelope
from signage.resources import data_dir

DROP = object()  # a field to leave out
SENT = datetime.fromisoformat("2026-11-26T17:00:00+07:00")
EXPIRES = datetime.fromisoformat("2026-11-27T17:00:00+07:00")
SEQ = 1764150000000
ALERT: dict[str, Any] = {
    "alert": 1,
    "publisher": "tinh-62",
    "seq": SEQ,
    "identifier": "62-bao-9",
    "sent": SENT.isoformat(),
    "status": "Actual",
    "msgType": "Alert",
    "references": [],
    "urgency": "Immediate",
    "severity": "Extreme",
    "certainty": "Observed",
    "expires": EXPIRES.isoformat(),
    "headline": "Bão số 9 đổ bộ vào Kon Tum",
    "description": "Gió mạnh cấp 10, giật cấp 12. Mưa rất to.",
    "instruction": "Ở trong nhà, tránh xa sông suối.",
    "area": "62/23456",
    "areaDesc": "Xã Sa Thầy",
}
COMMAND: dict[str, Any] = {
    "command": 1,
    "publisher": "tinh-62",
    "seq": SEQ + 1,
    "issued": "2026-11-26T17:05:00+07:00",
    "area": "62/23456",
    "name": "blank",
    "args": {},
}


def _doc(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **changes}
    return {k: v for k, v in merged.items() if v is not DROP}


def alert(**changes: Any) -> dict[str, Any]:
    return _doc(ALERT, changes)


def command(**changes: Any) -> dict[str, Any]:
    return _doc(COMMAND, changes)


def raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def bundle(area: str = "62/23456", version: int = 5, publisher: str = "tinh-62") -> bytes:
    return bundle_to_json(
        {
            "bundle": 1,
            "publisher": publisher,
            "version": version,
            "issued": SENT.isoformat(),
            "area": area,
            "items": [
                {
                    "id": "tb-1",
                    "template": "announcement",
                    "fields": {"title": "Thông báo", "body": "Họp dân lúc 19 giờ"},
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate("tinh-62", "62")


@pytest.fixture(scope="module")
def commune() -> PrivateKey:
    return PrivateKey.generate("xa-sa-thay", "62/23456")


@pytest.fixture(scope="module")
def national() -> PrivateKey:
    return PrivateKey.generate("bo-tt", "")


@pytest.fixture(scope="module")
def trust(key: PrivateKey, commune: PrivateKey, national: PrivateKey) -> Trust:
    return Trust([key.public(), commune.public(), national.public()])


def _refused_content(parse: Any, doc: object) -> ContentError:
    with pytest.raises(ContentError) as caught:
        parse(doc)
    assert caught.value.code is ErrorCode.CONTENT_INVALID
    return caught.value


def _refused_signed(accept: Any, *args: Any, **kwargs: Any) -> ErrorCode:
    with pytest.raises(SigningError) as caught:
        accept(*args, **kwargs)
    return caught.value.code


# -- alerts -------------------------------------------------------------------------------------


def test_a_valid_alert_parses() -> None:
    parsed = parse_alert(alert())
    assert parsed == Alert(
        publisher="tinh-62",
        seq=SEQ,
        identifier="62-bao-9",
        sent=SENT,
        msg_type="Alert",
        references=(),
        urgency="Immediate",
        severity="Extreme",
        certainty="Observed",
        expires=EXPIRES,
        headline="Bão số 9 đổ bộ vào Kon Tum",
        description="Gió mạnh cấp 10, giật cấp 12. Mưa rất to.",
        instruction="Ở trong nhà, tránh xa sông suối.",
        area="62/23456",
        area_desc="Xã Sa Thầy",
    )
    assert parsed.sent.utcoffset() == timedelta(hours=7)
    assert load_alert_json(raw(alert())) == parsed


def test_a_valid_alert_becomes_an_emergency_item_until_it_expires() -> None:
    item = parse_alert(alert()).to_item()
    assert item.id == "alert:62-bao-9"
    assert item.template == "emergency"
    assert item.priority is Priority.EMERGENCY
    assert item.valid_from is None and item.valid_until == EXPIRES
    assert item.duration_s == 30.0 and item.windows == ()
    assert dict(item.fields) == {
        "headline": "Bão số 9 đổ bộ vào Kon Tum",
        "description": "Gió mạnh cấp 10, giật cấp 12. Mưa rất to.",
        "instruction": "Ở trong nhà, tránh xa sông suối.",
        "severity": "Extreme",
        "expires": "2026-11-27T17:00:00+07:00",
    }
    parse_template(data_dir("layouts") / "emergency.json").check(item.fields)


@pytest.mark.parametrize(
    ("severity", "shown"),
    [("Extreme", "Extreme"), ("Severe", "Severe"), ("Minor", "Minor"), ("Unknown", "Moderate")],
)
def test_the_item_suits_the_emergency_template(severity: str, shown: str) -> None:
    item = parse_alert(alert(severity=severity, instruction=DROP)).to_item()
    assert item.fields["severity"] == shown
    assert "instruction" not in item.fields
    parse_template(data_dir("layouts") / "emergency.json").check(item.fields)


def test_the_item_passes_the_item_parser_too() -> None:
    item = parse_alert(alert()).to_item()
    again = parse_item(
        {
            "id": item.id,
            "template": item.template,
            "fields": dict(item.fields),
            "priority": item.priority.value,
            "duration_s": item.duration_s,
            "valid_until": EXPIRES.isoformat(),
        }
    )
    assert again == item


def test_the_longest_identifier_still_gives_a_valid_item_id() -> None:
    item = parse_alert(alert(identifier="a" * 120)).to_item()
    assert len(item.id) <= MAX_ID_LENGTH


def test_an_alert_is_active_until_it_expires_unless_cancelled() -> None:
    active = parse_alert(alert())
    assert active.is_active(SENT)
    assert active.is_active(EXPIRES - timedelta(microseconds=1))
    assert not active.is_active(EXPIRES)
    cancel = parse_alert(alert(msgType="Cancel", references=["62-bao-8"]))
    assert not cancel.is_active(SENT)


def test_text_is_normalised_to_nfc_and_trimmed() -> None:
    parsed = parse_alert(
        alert(headline="  Ba\u0303o so\u0302\u0301 9 ", instruction="   ", areaDesc=DROP)
    )
    assert parsed.headline == "Bão số 9"
    assert parsed.instruction is None and parsed.area_desc is None
    assert "instruction" not in parsed.to_item().fields


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
@pytest.mark.parametrize("references", [[], DROP])
def test_update_and_cancel_need_references(msg_type: str, references: object) -> None:
    error = _refused_content(parse_alert, alert(msgType=msg_type, references=references))
    assert error.path == "references"


def test_update_names_the_alerts_it_replaces() -> None:
    parsed = parse_alert(alert(msgType="Update", identifier="62-bao-9b", references=["62-bao-9"]))
    assert parsed.msg_type == "Update" and parsed.references == ("62-bao-9",)
    assert parsed.to_item().id == "alert:62-bao-9b"


def test_cancel_needs_no_text() -> None:
    parsed = parse_alert(
        alert(msgType="Cancel", references=["62-bao-9"], identifier="62-huy-9", headline=DROP)
    )
    assert parsed.headline == ""
    assert not parsed.is_active(SENT)


def test_an_alert_cannot_refer_to_itself() -> None:
    error = _refused_content(parse_alert, alert(msgType="Update", references=["62-bao-9"]))
    assert error.path == "references"


@pytest.mark.parametrize("status", ["Exercise", "System", "Test", "Draft", "actual", "", DROP])
def test_only_actual_alerts_are_accepted(status: object) -> None:
    error = _refused_content(parse_alert, alert(status=status))
    assert error.path == "status"


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"alert": 2}, "alert"),
        ({"alert": DROP}, "alert"),
        ({"colour": "red"}, "colour"),
        ({"publisher": ""}, "publisher"),
        ({"publisher": 62}, "publisher"),
        ({"seq": 0}, "seq"),
        ({"seq": -1}, "seq"),
        ({"seq": 2**63}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": 1.5}, "seq"),
        ({"seq": "1"}, "seq"),
        ({"area": "62/"}, "area"),
        ({"area": "62/23 456"}, "area"),
        ({"area": None}, "area"),
        ({"identifier": ""}, "identifier"),
        ({"identifier": "-62"}, "identifier"),
        ({"identifier": "a" * 129}, "identifier"),
        ({"identifier": "bão"}, "identifier"),
        ({"references": "62-bao-8", "msgType": "Update"}, "references"),
        ({"references": ["62 bao"], "msgType": "Update"}, "references"),
        ({"msgType": "Ack"}, "msgType"),
        ({"urgency": "Now"}, "urgency"),
        ({"severity": "extreme"}, "severity"),
        ({"certainty": DROP}, "certainty"),
        ({"sent": "2026-11-26T17:00:00"}, "sent"),
        ({"sent": "hôm nay"}, "sent"),
        ({"expires": SENT.isoformat()}, "expires"),
        ({"expires": "2026-11-26T09:59:59+00:00"}, "expires"),
        ({"headline": "   "}, "headline"),
        ({"headline": DROP}, "headline"),
        ({"headline": "x" * 20001}, "headline"),
        ({"description": 5}, "description"),
        ({"instruction": ["Ở trong nhà"]}, "instruction"),
    ],
)
def test_invalid_alerts_name_the_field(changes: dict[str, Any], path: str) -> None:
    error = _refused_content(parse_alert, alert(**changes))
    assert error.path == path


@pytest.mark.parametrize("data", [None, [], "alert", 1])
def test_an_alert_must_be_an_object(data: object) -> None:
    assert _refused_content(parse_alert, data).path == "(alert)"


def test_alert_json_must_be_strict_json() -> None:
    for data in (b"{", b'{"alert": 1, "alert": 1}', b'{"seq": NaN}', b"\xff"):
        with pytest.raises(ContentError) as caught:
            load_alert_json(data)
        assert caught.value.code is ErrorCode.CONTENT_JSON


@pytest.mark.parametrize("which", ["alert", "command", "envelope"])
def test_boolean_true_is_not_format_1(which: str) -> None:
    if which == "alert":
        _refused_content(parse_alert, alert(alert=True))
    elif which == "command":
        _refused_content(parse_command, command(command=True))
    else:
        envelope = {**json.loads(FIXED.sign(bundle())), "v": True}
        code = _refused_signed(accept_bundle, json.dumps(envelope).encode(), FIXED_TRUST, {})
        assert code is ErrorCode.BUNDLE_MALFORMED


# -- commands -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"), [("blank", {}), ("unblank", {}), ("restart", {}), ("power", {"on": False})]
)
def test_valid_commands_parse(name: str, args: dict[str, Any]) -> None:
    parsed = parse_command(command(name=name, args=args))
    assert (parsed.name, dict(parsed.args), parsed.seq) == (name, args, SEQ + 1)
    assert parsed.issued == datetime.fromisoformat("2026-11-26T17:05:00+07:00")
    assert parsed.area == "62/23456" and parsed.publisher == "tinh-62"
    assert load_command_json(raw(command(name=name, args=args))) == parsed


def test_args_default_to_nothing_and_are_read_only() -> None:
    parsed = parse_command(command(args=DROP))
    assert dict(parsed.args) == {}
    with pytest.raises(TypeError):
        parsed.args["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"name": "reload"}, "name"),  # never signed: a plain message
        ({"name": "screenshot"}, "name"),
        ({"name": "format"}, "name"),
        ({"name": DROP}, "name"),
        ({"args": {"x": 1}}, "args"),
        ({"name": "power", "args": [1]}, "args"),
        ({"issued": "2026-11-26"}, "issued"),
        ({"issued": DROP}, "issued"),
        ({"command": 2}, "command"),
        ({"reason": "test"}, "reason"),
        ({"seq": 0}, "seq"),
        ({"publisher": DROP}, "publisher"),
        ({"area": "62//1"}, "area"),
    ],
)
def test_invalid_commands_name_the_field(changes: dict[str, Any], path: str) -> None:
    assert _refused_content(parse_command, command(**changes)).path == path


# -- accept_alert / accept_command --------------------------------------------------------------


def test_a_signed_alert_is_accepted(key: PrivateKey, trust: Trust) -> None:
    accepted = accept_alert(key.sign(raw(alert())), trust, {}, board_area="62/23456")
    assert accepted == parse_alert(alert())
    assert accept_alert(key.sign(raw(alert())), trust, {"tinh-62": SEQ - 1}) == accepted


def test_a_signed_command_is_accepted(key: PrivateKey, trust: Trust) -> None:
    accepted = accept_command(key.sign(raw(command())), trust, {}, board_area="62/23456")
    assert accepted.name == "blank" and accepted.seq == SEQ + 1


def test_an_alert_survives_the_alert_message(key: PrivateKey, trust: Trust) -> None:
    text = encode_message("alert", "h5", {"signed": json.loads(key.sign(raw(alert())))})
    accepted = accept_alert(decode_text(text).signed(), trust, {}, board_area="62/23456")
    assert accepted.identifier == "62-bao-9"


@pytest.mark.parametrize("seen", [SEQ, SEQ + 1, 2**63 - 1])
def test_a_replayed_alert_is_not_newer(key: PrivateKey, trust: Trust, seen: int) -> None:
    code = _refused_signed(accept_alert, key.sign(raw(alert())), trust, {"tinh-62": seen})
    assert code is ErrorCode.COMMAND_NOT_NEWER


@pytest.mark.parametrize("seen", [SEQ + 1, SEQ + 2])
def test_a_replayed_command_is_not_newer(key: PrivateKey, trust: Trust, seen: int) -> None:
    code = _refused_signed(accept_command, key.sign(raw(command())), trust, {"tinh-62": seen})
    assert code is ErrorCode.COMMAND_NOT_NEWER


def test_alerts_and_commands_share_one_sequence(key: PrivateKey, trust: Trust) -> None:
    last = accept_alert(key.sign(raw(alert(seq=SEQ + 5))), trust, {}).seq
    code = _refused_signed(accept_command, key.sign(raw(command())), trust, {"tinh-62": last})
    assert code is ErrorCode.COMMAND_NOT_NEWER


def test_another_publishers_sequence_does_not_count(key: PrivateKey, trust: Trust) -> None:
    seen = {"xa-sa-thay": 2**62, "bo-tt": 2**62}
    assert accept_alert(key.sign(raw(alert())), trust, seen).seq == SEQ
    assert accept_command(key.sign(raw(command())), trust, seen).seq == SEQ + 1


@pytest.mark.parametrize("area", ["64/1", "620/1", "6", ""])
@pytest.mark.parametrize("kind", ["alert", "command"])
def test_a_key_signs_only_inside_its_area(
    key: PrivateKey, trust: Trust, kind: str, area: str
) -> None:
    if kind == "alert":
        code = _refused_signed(accept_alert, key.sign(raw(alert(area=area))), trust, {})
    else:
        code = _refused_signed(accept_command, key.sign(raw(command(area=area))), trust, {})
    assert code is ErrorCode.SIGNATURE_OUT_OF_SCOPE


def test_a_commune_key_cannot_speak_for_its_province(commune: PrivateKey, trust: Trust) -> None:
    doc = alert(publisher="xa-sa-thay", area="62")
    code = _refused_signed(accept_alert, commune.sign(raw(doc)), trust, {})
    assert code is ErrorCode.SIGNATURE_OUT_OF_SCOPE
    inside = alert(publisher="xa-sa-thay", area="62/23456/7")
    assert accept_alert(commune.sign(raw(inside)), trust, {}).area == "62/23456/7"


def test_a_national_key_may_alert_everywhere(national: PrivateKey, trust: Trust) -> None:
    signed = national.sign(raw(alert(publisher="bo-tt", area="")))
    for board_area in ("62/23456", "01/00001", ""):
        assert accept_alert(signed, trust, {}, board_area=board_area).area == ""


@pytest.mark.parametrize(
    ("board_area", "ok"),
    [
        ("62/23456", True),
        ("62/23456/7", True),
        ("/62/23456/", True),
        (None, True),
        ("62/23457", False),
        ("62/2345", False),
        ("62", False),
        ("64/23456", False),
        ("", False),
    ],
)
@pytest.mark.parametrize("kind", ["alert", "command", "bundle"])
def test_a_board_outside_the_documents_area_refuses_it(
    key: PrivateKey, trust: Trust, kind: str, board_area: str | None, ok: bool
) -> None:
    if kind == "alert":
        args: tuple[Any, ...] = (accept_alert, key.sign(raw(alert())), trust, {})
    elif kind == "command":
        args = (accept_command, key.sign(raw(command())), trust, {})
    else:
        args = (accept_bundle, key.sign(bundle()), trust, {})
    accept, *rest = args
    if ok:
        assert accept(*rest, board_area=board_area).area == "62/23456"
    else:
        code = _refused_signed(accept, *rest, board_area=board_area)
        assert code is ErrorCode.AREA_MISMATCH


def test_checks_run_in_their_documented_order(key: PrivateKey, trust: Trust) -> None:
    old = {"tinh-62": 2**62}
    # scope before area before seq / version
    out_of_scope = key.sign(raw(alert(area="64/1")))
    assert _refused_signed(accept_alert, out_of_scope, trust, old, board_area="62/1") is (
        ErrorCode.SIGNATURE_OUT_OF_SCOPE
    )
    elsewhere = key.sign(raw(alert()))
    assert _refused_signed(accept_alert, elsewhere, trust, old, board_area="62/1") is (
        ErrorCode.AREA_MISMATCH
    )
    other_bundle = key.sign(bundle(area="64/1"))
    assert _refused_signed(accept_bundle, other_bundle, trust, old, board_area="62/1") is (
        ErrorCode.SIGNATURE_OUT_OF_SCOPE
    )
    assert _refused_signed(accept_bundle, key.sign(bundle()), trust, old, board_area="62/1") is (
        ErrorCode.AREA_MISMATCH
    )
    # publisher before scope
    foreign = key.sign(raw(alert(publisher="xa-sa-thay", area="64/1")))
    assert _refused_signed(accept_alert, foreign, trust, old) is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize("kind", ["alert", "command"])
def test_a_publisher_that_is_not_the_key_is_refused(
    key: PrivateKey, commune: PrivateKey, trust: Trust, kind: str
) -> None:
    """The commune key may sign for 62/23456, but not in the province's name."""
    if kind == "alert":
        code = _refused_signed(accept_alert, commune.sign(raw(alert())), trust, {})
    else:
        code = _refused_signed(accept_command, commune.sign(raw(command())), trust, {})
    assert code is ErrorCode.SIGNATURE_INVALID


def test_an_untrusted_key_is_refused(key: PrivateKey) -> None:
    stranger = PrivateKey.generate("tinh-62", "62")  # same id, different key
    only_stranger = Trust([stranger.public()])
    for accept, doc in ((accept_alert, alert()), (accept_command, command())):
        assert _refused_signed(accept, key.sign(raw(doc)), only_stranger, {}) is (
            ErrorCode.SIGNATURE_INVALID
        )
        assert _refused_signed(accept, key.sign(raw(doc)), Trust([]), {}) is (
            ErrorCode.SIGNATURE_UNKNOWN_KEY
        )


@pytest.mark.parametrize(
    "payload",
    [
        raw(alert(status="Exercise")),
        raw(alert(expires=SENT.isoformat())),
        raw(command()),
        bundle(),
        b"not json",
        b'{"alert": 1, "alert": 1}',
        "Bão".encode("utf-16"),
    ],
    ids=["exercise", "expired-at-sent", "a-command", "a-bundle", "text", "duplicate", "utf16"],
)
def test_an_invalid_alert_payload_is_alert_invalid(
    key: PrivateKey, trust: Trust, payload: bytes
) -> None:
    assert _refused_signed(accept_alert, key.sign(payload), trust, {}) is ErrorCode.ALERT_INVALID


@pytest.mark.parametrize(
    "payload",
    [
        raw(command(name="reload")),
        raw(command(args={"x": 1})),
        raw(alert()),
        bundle(),
        b"[]",
        b"",
    ],
    ids=["unsigned-name", "args", "an-alert", "a-bundle", "array", "empty"],
)
def test_an_invalid_command_payload_is_command_invalid(
    key: PrivateKey, trust: Trust, payload: bytes
) -> None:
    code = _refused_signed(accept_command, key.sign(payload), trust, {})
    assert code is ErrorCode.COMMAND_INVALID


def test_an_alert_or_command_is_not_a_bundle(key: PrivateKey, trust: Trust) -> None:
    for payload in (raw(alert()), raw(command())):
        code = _refused_signed(accept_bundle, key.sign(payload), trust, {})
        assert code is ErrorCode.BUNDLE_MALFORMED


def test_a_payload_from_another_envelope_is_refused(key: PrivateKey, trust: Trust) -> None:
    envelope = json.loads(key.sign(raw(alert())))
    envelope["payload"] = json.loads(key.sign(raw(alert(seq=SEQ + 9))))["payload"]
    respelled = canonical_envelope(envelope["key"], envelope["payload"], envelope["sig"])
    code = _refused_signed(accept_alert, respelled, trust, {})
    assert code is ErrorCode.SIGNATURE_INVALID


# -- single-byte changes of a signed bundle -----------------------------------------------------

# A fixed key makes the envelope (Ed25519 is deterministic) and so these tests the same each run.
FIXED = PrivateKey("tinh-62", "62", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
FIXED_TRUST = Trust([FIXED.public()])


def _outcome(envelope: bytes) -> str:
    try:
        accept_bundle(envelope, FIXED_TRUST, {}, board_area="62/23456")
    except SigningError:
        return "refused"
    except Exception as exc:  # any other exception is a bug
        return f"raised {type(exc).__name__}: {exc}"
    return "accepted"


def test_every_single_byte_change_of_a_signed_bundle_is_refused() -> None:
    signed = FIXED.sign(bundle())
    assert _outcome(signed) == "accepted"
    rng = random.Random(20261126)
    failures = []
    for index, old in enumerate(signed):
        others = [value for value in range(256) if value not in (old, old ^ 0x01)]
        for new in (old ^ 0x01, rng.choice(others)):
            changed = bytearray(signed)
            changed[index] = new
            outcome = _outcome(bytes(changed))
            if outcome != "refused":
                failures.append((index, bytes([old]), bytes([new]), outcome))
    assert failures == []


def test_envelope_whitespace_changes_are_refused() -> None:
    signed = FIXED.sign(bundle())
    accepted = []
    for index, old in enumerate(signed):
        if old in b" \t\r\n":
            for new in b" \t\r\n":
                if new != old:
                    changed = bytearray(signed)
                    changed[index] = new
                    if _outcome(bytes(changed)) != "refused":
                        accepted.append((index, bytes([old]), bytes([new])))
    assert accepted == []


def _same_bytes_spellings(text: str) -> list[str]:
    """Return other base64 spellings of ``text``: its last character before the padding
    carries unused bits, and changing only those bits decodes to the same bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    padding = len(text) - len(text.rstrip("="))
    assert padding in (1, 2)
    unused = 2 if padding == 1 else 4
    where = len(text) - padding - 1
    value = alphabet.index(text[where])
    spellings = []
    for low in range(1, 2**unused):
        spelling = text[:where] + alphabet[value ^ low] + text[where + 1 :]
        assert base64.b64decode(spelling, validate=True) == base64.b64decode(text)
        spellings.append(spelling)
    return spellings


@pytest.mark.parametrize("field", ["sig", "payload"])
def test_another_base64_spelling_of_the_same_bytes_is_refused(field: str) -> None:
    payload = bundle() if len(bundle()) % 3 else bundle() + b"\n"  # a padded payload too
    envelope = json.loads(FIXED.sign(payload))
    assert envelope[field].endswith("=")
    parts = {"key_id": envelope["key"], "payload_b64": envelope["payload"]}
    parts["sig_b64"] = envelope["sig"]
    name = "sig_b64" if field == "sig" else "payload_b64"
    accepted = []
    for spelling in _same_bytes_spellings(envelope[field]):
        changed = canonical_envelope(**{**parts, name: spelling})  # canonical JSON around it
        try:
            accept_bundle(changed, FIXED_TRUST, {})
        except SigningError as exc:
            assert exc.code is ErrorCode.BUNDLE_MALFORMED
        else:
            accepted.append(spelling[-4:])
    assert accepted == []
