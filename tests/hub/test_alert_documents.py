"""Publisher-side alert and command documents: CAP 1.2 → alert JSON, alerts, cancels and signed
commands built from fields, each accepted by the board's parser and, signed, by accept_alert or
accept_command."""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signage.errors import ConfigError, ContentError, ErrorCode
from signage.hub.publish import (
    MAX_CAP_BYTES,
    alert_document,
    alert_from_cap,
    cancel_document,
    command_document,
)
from signage.model import load_alert_json, load_command_json
from signage.protocol import PrivateKey, Trust, accept_alert, accept_command

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLE = REPO / "examples" / "cap" / "bao-so-9.xml"
NS = "urn:oasis:names:tc:emergency:cap:1.2"
SEQ = 1764666000000
SENT = datetime.fromisoformat("2026-12-02T17:00:00+07:00")
EXPIRES = datetime.fromisoformat("2026-12-03T17:00:00+07:00")
BOARD_AREA = "62/23456"


def info(
    language: str | None = "vi-VN",
    *,
    headline: str | None = "Bão số 9 đổ bộ",
    expires: str | None = "2026-12-03T17:00:00+07:00",
    geocodes: tuple[str, ...] = ("62/23456",),
    area_desc: str | None = "Xã Sa Thầy",
) -> str:
    """Return the XML of one <info> block; None leaves an element out."""
    parts = [f"<language>{language}</language>" if language is not None else ""]
    parts += [
        "<category>Met</category><event>Bão</event>",
        "<urgency>Immediate</urgency><severity>Extreme</severity><certainty>Observed</certainty>",
    ]
    if expires is not None:
        parts.append(f"<expires>{expires}</expires>")
    if headline is not None:
        parts.append(f"<headline>{headline}</headline>")
    parts.append("<description>Gió giật cấp 12.</description>")
    area = f"<areaDesc>{area_desc}</areaDesc>" if area_desc is not None else ""
    for value in geocodes:
        area += f"<geocode><valueName>signage-area</valueName><value>{value}</value></geocode>"
    parts.append(f"<area>{area}</area>")
    return "<info>" + "".join(parts) + "</info>"


def cap(
    *infos: str,
    status: str = "Actual",
    msg_type: str = "Alert",
    references: str | None = None,
    sent: str = "2026-12-02T17:00:00+07:00",
    identifier: str = "62-bao-9-2026",
    extra: str = "",
) -> bytes:
    """Return a CAP 1.2 message with ``infos``."""
    refs = f"<references>{references}</references>" if references is not None else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="{NS}">'
        f"<identifier>{identifier}</identifier><sender>canhbao@kontum.gov.vn</sender>"
        f"<sent>{sent}</sent><status>{status}</status><msgType>{msg_type}</msgType>"
        f"<scope>Public</scope>{refs}{extra}{''.join(infos)}</alert>"
    ).encode()


def from_cap(xml: bytes, **kwargs: Any) -> dict[str, Any]:
    """Return the parsed JSON of alert_from_cap, after checking the board accepts it."""
    raw = alert_from_cap(xml, publisher="tinh-62", seq=SEQ, **kwargs)
    load_alert_json(raw)
    data: dict[str, Any] = json.loads(raw)
    return data


def refused(xml: bytes, path: str, **kwargs: Any) -> ContentError:
    with pytest.raises(ContentError) as caught:
        alert_from_cap(xml, publisher="tinh-62", seq=SEQ, **kwargs)
    assert caught.value.code is ErrorCode.ALERT_INVALID
    assert caught.value.path == path, caught.value
    return caught.value


@pytest.fixture
def key() -> PrivateKey:
    return PrivateKey.generate("tinh-62", "62")


# -- CAP ---------------------------------------------------------------------------------------


def test_sample_cap_gives_the_vietnamese_alert() -> None:
    raw = alert_from_cap(SAMPLE.read_bytes(), publisher="tinh-62", seq=SEQ)
    assert raw == (json.dumps(json.loads(raw), ensure_ascii=False, indent=1) + "\n").encode()
    assert json.loads(raw) == {
        "alert": 1,
        "publisher": "tinh-62",
        "seq": SEQ,
        "identifier": "62-bao-9-2026",
        "sent": "2026-12-02T17:00:00+07:00",
        "status": "Actual",
        "msgType": "Alert",
        "references": [],
        "urgency": "Immediate",
        "severity": "Extreme",
        "certainty": "Observed",
        "expires": "2026-12-03T17:00:00+07:00",
        "headline": "Bão số 9 đổ bộ: không ra khỏi nhà từ 18 giờ hôm nay",
        "description": (
            "Bão số 9 gây gió mạnh cấp 10, giật cấp 12, mưa rất to trên địa bàn tỉnh."
            " Nguy cơ cao xảy ra lũ quét và sạt lở đất ở vùng núi."
        ),
        "instruction": (
            "Gia cố nhà cửa, không ra sông suối, không đi qua ngầm tràn."
            " Sơ tán theo hướng dẫn của xã. Gọi 112 khi cần cứu nạn."
        ),
        "area": "62/23456",
        "areaDesc": "Xã Sa Thầy",
    }
    alert = load_alert_json(raw)
    assert alert.sent == SENT and alert.expires == EXPIRES
    assert alert.is_active(SENT + timedelta(hours=1))


def test_sample_is_clean_text() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", text)
    assert len(SAMPLE.read_bytes()) < 4096


@pytest.mark.parametrize(
    ("lang", "headline"),
    [
        ("vi", "Bão số 9 đổ bộ: không ra khỏi nhà từ 18 giờ hôm nay"),
        ("VI-vn", "Bão số 9 đổ bộ: không ra khỏi nhà từ 18 giờ hôm nay"),
        ("en", "Typhoon No. 9 makes landfall: stay indoors from 18:00 today"),
        ("en-GB", "Typhoon No. 9 makes landfall: stay indoors from 18:00 today"),
        ("km", "Bão số 9 đổ bộ: không ra khỏi nhà từ 18 giờ hôm nay"),  # no match: first
    ],
)
def test_info_block_by_language(lang: str, headline: str) -> None:
    assert from_cap(SAMPLE.read_bytes(), lang=lang)["headline"] == headline


def test_vietnamese_info_chosen_even_when_not_first() -> None:
    xml = cap(info("en-US", headline="Typhoon"), info("vi", headline="Bão"))
    assert from_cap(xml)["headline"] == "Bão"
    assert from_cap(xml, lang="vi-VN")["headline"] == "Bão"


def test_info_without_language_is_english_and_first_is_the_fallback() -> None:
    xml = cap(info(None, headline="Typhoon"), info("fr", headline="Typhon"))
    assert from_cap(xml, lang="en")["headline"] == "Typhoon"
    assert from_cap(xml, lang="fr-CA")["headline"] == "Typhon"
    assert from_cap(xml, lang="vi")["headline"] == "Typhoon"


def test_whole_language_tag_wins_over_primary_subtag() -> None:
    xml = cap(info("en-GB", headline="British"), info("en-US", headline="American"))
    assert from_cap(xml, lang="en-US")["headline"] == "American"
    assert from_cap(xml, lang="en")["headline"] == "British"


def test_update_keeps_the_identifier_of_each_reference_triple() -> None:
    refs = (
        "canhbao@kontum.gov.vn,62-bao-9-2026,2026-12-02T17:00:00+07:00"
        "  canhbao@kontum.gov.vn,62-lu-2026,2026-12-02T18:00:00+07:00\n"
    )
    xml = cap(info(), msg_type="Update", references=refs, identifier="62-bao-9-2026-u1")
    data = from_cap(xml)
    assert data["msgType"] == "Update"
    assert data["references"] == ["62-bao-9-2026", "62-lu-2026"]


def test_update_without_references_is_refused() -> None:
    refused(cap(info(), msg_type="Update"), "references")


def test_malformed_reference_is_refused() -> None:
    refused(cap(info(), msg_type="Update", references="62-bao-9-2026"), "references")


def test_cancel_without_info() -> None:
    refs = "canhbao@kontum.gov.vn,62-bao-9-2026,2026-12-02T17:00:00+07:00"
    xml = cap(msg_type="Cancel", references=refs, identifier="62-bao-9-2026-huy")
    data = from_cap(xml, area="62/23456")
    assert {k: data[k] for k in ("msgType", "references", "urgency", "severity", "certainty")} == {
        "msgType": "Cancel",
        "references": ["62-bao-9-2026"],
        "urgency": "Unknown",
        "severity": "Unknown",
        "certainty": "Unknown",
    }
    assert data["headline"] == data["description"] == ""
    assert "instruction" not in data and "areaDesc" not in data
    assert data["expires"] == "2026-12-02T18:00:00+07:00"  # sent + 1 hour
    assert not load_alert_json(json.dumps(data).encode()).is_active(SENT)


def test_cancel_without_info_needs_an_area() -> None:
    refs = "canhbao@kontum.gov.vn,62-bao-9-2026,2026-12-02T17:00:00+07:00"
    error = refused(cap(msg_type="Cancel", references=refs), "info.area.geocode")
    assert "--area" in error.message


def test_cancel_with_info_but_no_expires() -> None:
    refs = "canhbao@kontum.gov.vn,62-bao-9-2026,2026-12-02T17:00:00+07:00"
    xml = cap(info(expires=None), msg_type="Cancel", references=refs, identifier="huy-1")
    assert from_cap(xml)["expires"] == "2026-12-02T18:00:00+07:00"


@pytest.mark.parametrize("status", ["Exercise", "Test", "System", "Draft"])
def test_status_other_than_actual_is_refused(status: str) -> None:
    error = refused(cap(info(), status=status), "status")
    assert "public screen" in error.message


@pytest.mark.parametrize("msg_type", ["Ack", "Error"])
def test_ack_and_error_are_refused(msg_type: str) -> None:
    refs = "canhbao@kontum.gov.vn,62-bao-9-2026,2026-12-02T17:00:00+07:00"
    refused(cap(info(), msg_type=msg_type, references=refs), "msgType")


def test_restricted_scope_is_refused() -> None:
    xml = cap(info()).replace(b"<scope>Public</scope>", b"<scope>Restricted</scope>")
    refused(xml, "scope")


@pytest.mark.parametrize("msg_type", ["Alert", "Update"])
def test_missing_expires_is_refused(msg_type: str) -> None:
    refs = "canhbao@kontum.gov.vn,62-bao-9-2026,2026-12-02T17:00:00+07:00"
    xml = cap(info(expires=None), msg_type=msg_type, references=refs, identifier="u1")
    refused(xml, "info.expires")


def test_alert_without_info_is_refused() -> None:
    refused(cap(), "info")


def test_expires_not_after_sent_is_refused_with_the_cap_path() -> None:
    refused(cap(info(expires="2026-12-02T16:00:00+07:00")), "info.expires")


@pytest.mark.parametrize(
    "bad", ["2026-12-03", "2026-12-03T17:00:00", "ngày mai", "2026-12-03T25:00:00+07:00"]
)
def test_bad_times_are_refused(bad: str) -> None:
    refused(cap(info(expires=bad)), "info.expires")
    refused(cap(info(), sent=bad), "sent")


def test_missing_headline_of_an_alert_is_refused() -> None:
    refused(cap(info(headline=None)), "info.headline")


def test_bad_identifier_is_refused() -> None:
    refused(cap(info(), identifier="bão-9"), "identifier")


def test_missing_area_is_refused() -> None:
    error = refused(cap(info(geocodes=())), "info.area.geocode")
    assert "--area" in error.message


def test_area_argument_wins_over_geocode() -> None:
    assert from_cap(cap(info()), area="62/23457")["area"] == "62/23457"
    assert from_cap(cap(info(geocodes=())), area="62")["area"] == "62"


def test_other_geocodes_are_ignored_and_several_areas_refused() -> None:
    other = "<geocode><valueName>SAME</valueName><value>006113</value></geocode>"
    xml = cap(info()).replace(b"</area>", other.encode() + b"</area>")
    assert from_cap(xml)["area"] == "62/23456"
    refused(cap(info(geocodes=("62/23456", "62/23457"))), "info.area.geocode")
    assert from_cap(cap(info(geocodes=("62/23456", "62/23456"))))["area"] == "62/23456"


def test_bad_area_path_is_refused() -> None:
    refused(cap(info(geocodes=("62 / 23456",))), "info.area.geocode")
    refused(cap(info()), "area", area="62/")


def test_area_descriptions_are_joined() -> None:
    xml = cap(info()).replace(
        b"</info>", "<area><areaDesc>Xã Ya Xiêr</areaDesc></area></info>".encode()
    )
    assert from_cap(xml)["areaDesc"] == "Xã Sa Thầy, Xã Ya Xiêr"
    assert "areaDesc" not in from_cap(cap(info(area_desc=None)))


def test_utc_z_becomes_an_offset() -> None:
    data = from_cap(cap(info(expires="2026-12-03T10:00:00Z"), sent="2026-12-02T10:00:00Z"))
    assert data["sent"] == "2026-12-02T10:00:00+00:00"
    assert data["expires"] == "2026-12-03T10:00:00+00:00"


def test_text_is_stripped_and_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Bão số 9 đổ bộ vào Kon Tum")
    assert nfd != unicodedata.normalize("NFC", nfd)
    data = from_cap(cap(info(headline=f"\n   {nfd}  \n", area_desc=f" {nfd} ")))
    assert data["headline"] == "Bão số 9 đổ bộ vào Kon Tum"
    assert data["areaDesc"] == "Bão số 9 đổ bộ vào Kon Tum"
    assert data["description"] == "Gió giật cấp 12."


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE alert [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol3;</identifier></alert>
"""


@pytest.mark.parametrize(
    "xml",
    [
        BILLION_LAUGHS,
        b'<!DOCTYPE alert SYSTEM "http://example.invalid/cap.dtd"><alert/>',
        b'<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]><alert>&x;</alert>',
        b"<!DOCTYPE alert><alert/>",
    ],
    ids=["billion-laughs", "external-dtd", "external-entity", "bare-doctype"],
)
def test_dtds_and_entities_are_refused(xml: bytes) -> None:
    refused(xml, "(xml)")


@pytest.mark.parametrize(
    "xml",
    [b"", b"<alert", b"not xml", b"<alert></info>", b'<?xml version="1.0" encoding="x-no"?><a/>'],
)
def test_malformed_xml_is_refused(xml: bytes) -> None:
    refused(xml, "(xml)")


def test_oversized_input_is_refused_before_parsing() -> None:
    padding = b"<!--" + b"x" * MAX_CAP_BYTES + b"-->"
    xml = cap(info()).replace(b"<scope>", padding + b"<scope>")
    error = refused(xml, "(xml)")
    assert "larger" in error.message


def test_other_documents_are_refused() -> None:
    cap11 = cap(info()).replace(NS.encode(), b"urn:oasis:names:tc:emergency:cap:1.1")
    refused(cap11, "alert")
    refused(b"<alert><status>Actual</status></alert>", "alert")


def test_signed_cap_alert_is_accepted_by_a_board(key: PrivateKey) -> None:
    raw = alert_from_cap(SAMPLE.read_bytes(), publisher="tinh-62", seq=SEQ)
    alert = accept_alert(key.sign(raw), Trust([key.public()]), {}, board_area=BOARD_AREA)
    assert alert.identifier == "62-bao-9-2026"
    assert alert.to_item().fields["severity"] == "Extreme"


# -- alerts, cancels and commands from fields -------------------------------------------------


def test_alert_document(key: PrivateKey) -> None:
    nfd = unicodedata.normalize("NFD", "Sơ tán theo hướng dẫn của xã.")
    raw = alert_document(
        publisher="tinh-62",
        seq=SEQ,
        identifier="62-bao-9-2026",
        headline=" Bão số 9 đổ bộ ",
        description="Gió giật cấp 12.",
        severity="Extreme",
        expires=EXPIRES,
        sent=SENT,
        area="62/23456",
        instruction=nfd,
        area_desc="Xã Sa Thầy",
    )
    data = json.loads(raw)
    assert list(data) == [
        "alert",
        "publisher",
        "seq",
        "identifier",
        "sent",
        "status",
        "msgType",
        "references",
        "urgency",
        "severity",
        "certainty",
        "expires",
        "headline",
        "description",
        "instruction",
        "area",
        "areaDesc",
    ]
    assert data["headline"] == "Bão số 9 đổ bộ"
    assert data["instruction"] == "Sơ tán theo hướng dẫn của xã."
    assert (data["status"], data["urgency"], data["certainty"]) == (
        "Actual",
        "Immediate",
        "Observed",
    )
    assert load_alert_json(raw).expires == EXPIRES
    alert = accept_alert(key.sign(raw), Trust([key.public()]), {}, board_area="62/23456/7")
    assert alert.area == "62/23456"


def test_alert_document_leaves_out_empty_optional_text() -> None:
    raw = alert_document(
        publisher="tinh-62",
        seq=SEQ,
        identifier="a1",
        headline="Lũ quét",
        description="Mưa lớn.",
        severity="Severe",
        expires=EXPIRES,
        sent=SENT,
        area="62",
        instruction="  ",
        area_desc="",
    )
    assert "instruction" not in json.loads(raw) and "areaDesc" not in json.loads(raw)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"severity": "Huge"}, "severity"),
        ({"sent": datetime(2026, 12, 2, 17)}, "sent"),
        ({"expires": SENT}, "expires"),
        ({"headline": "  "}, "headline"),
        ({"msg_type": "Update"}, "references"),
        ({"references": "62-bao-8"}, "references"),
        ({"area": "62/"}, "area"),
        ({"seq": 0}, "seq"),
    ],
)
def test_alert_document_refusals(change: dict[str, Any], path: str) -> None:
    fields: dict[str, Any] = {
        "publisher": "tinh-62",
        "seq": SEQ,
        "identifier": "a1",
        "headline": "Lũ quét",
        "description": "Mưa lớn.",
        "severity": "Severe",
        "expires": EXPIRES,
        "sent": SENT,
        "area": "62",
    }
    with pytest.raises(ContentError) as caught:
        alert_document(**(fields | change))
    assert caught.value.code is ErrorCode.CONTENT_INVALID
    assert caught.value.path == path


def test_cancel_document(key: PrivateKey) -> None:
    raw = cancel_document(
        publisher="tinh-62",
        seq=SEQ + 1,
        identifier="62-bao-9-2026-huy",
        references=["62-bao-9-2026"],
        sent=SENT,
        area="62/23456",
    )
    alert = load_alert_json(raw)
    assert (alert.msg_type, alert.references) == ("Cancel", ("62-bao-9-2026",))
    assert alert.expires == SENT + timedelta(hours=1)
    assert (alert.urgency, alert.severity, alert.certainty) == ("Unknown",) * 3
    assert (alert.headline, alert.description, alert.instruction) == ("", "", None)
    trust = Trust([key.public()])
    assert accept_alert(key.sign(raw), trust, {"tinh-62": SEQ}, board_area=BOARD_AREA) == alert
    later = cancel_document(
        publisher="tinh-62",
        seq=SEQ + 2,
        identifier="huy-2",
        references=["a", "b"],
        sent=SENT,
        area="62",
        expires=EXPIRES,
    )
    assert load_alert_json(later).expires == EXPIRES


def test_cancel_document_needs_references() -> None:
    with pytest.raises(ContentError) as caught:
        cancel_document(
            publisher="tinh-62", seq=SEQ, identifier="huy", references=[], sent=SENT, area="62"
        )
    assert caught.value.path == "references"


def test_power_command_document(key: PrivateKey) -> None:
    args = {"mon": "06:00-22:00", "sat": ["06:00-11:30", "13:30-22:00"], "sun": "off"}
    issued = datetime.fromisoformat("2026-12-02T17:05:00+07:00")
    raw = command_document(
        publisher="tinh-62", seq=SEQ, name="power", area="62/23456", issued=issued, args=args
    )
    assert json.loads(raw) == {
        "command": 1,
        "publisher": "tinh-62",
        "seq": SEQ,
        "issued": "2026-12-02T17:05:00+07:00",
        "area": "62/23456",
        "name": "power",
        "args": args,
    }
    command = load_command_json(raw)
    assert command.args == args and command.issued == issued
    signed = key.sign(raw)
    assert accept_command(signed, Trust([key.public()]), {}, board_area=BOARD_AREA) == command


@pytest.mark.parametrize("name", ["blank", "unblank", "restart"])
def test_commands_without_args(name: str, key: PrivateKey) -> None:
    raw = command_document(publisher="tinh-62", seq=SEQ, name=name, area="62", issued=SENT)
    assert json.loads(raw)["args"] == {}
    assert accept_command(key.sign(raw), Trust([key.public()]), {}, BOARD_AREA).name == name


@pytest.mark.parametrize(
    ("name", "args", "path"),
    [
        ("reboot", None, "name"),
        ("reload", None, "name"),  # not a signed command
        ("blank", {"mon": "off"}, "args"),
        ("power", {"mon": datetime(2026, 12, 2)}, "args"),
    ],
)
def test_bad_commands_are_refused(name: str, args: dict[str, Any] | None, path: str) -> None:
    with pytest.raises(ContentError) as caught:
        command_document(publisher="tinh-62", seq=SEQ, name=name, area="62", issued=SENT, args=args)
    assert caught.value.code is ErrorCode.CONTENT_INVALID
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (None, "power"),
        ({"mon": "6h-22h"}, "power.mon"),
        ({"holiday": "off"}, "power.holiday"),
        (dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "off"), "power"),
    ],
)
def test_power_schedule_a_board_would_refuse(args: dict[str, Any] | None, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        command_document(
            publisher="tinh-62", seq=SEQ, name="power", area="62", issued=SENT, args=args
        )
    assert caught.value.code is ErrorCode.CONFIG_INVALID
    assert caught.value.path == path
