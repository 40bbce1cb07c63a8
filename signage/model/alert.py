"""Signed documents other than bundles: emergency alerts (CAP 1.2 fields) and commands (no I/O).

Both travel as the payload of a signed envelope (docs/protocol.md) and carry ``publisher`` and
``seq``: a number that grows with every alert or command of that publisher, so a recorded
document cannot be replayed. An alert becomes an emergency item for the ``emergency`` template.

    {"alert": 1, "publisher": "tinh-62", "seq": 1764150000000, "identifier": "62-bao-9",
     "sent": "2026-11-26T17:00:00+07:00", "status": "Actual", "msgType": "Alert",
     "references": [], "urgency": "Immediate", "severity": "Extreme", "certainty": "Observed",
     "expires": "2026-11-27T17:00:00+07:00", "headline": "...", "description": "...",
     "instruction": "...", "area": "62/23456", "areaDesc": "Xã Sa Thầy"}

    {"command": 1, "publisher": "tinh-62", "seq": 1764150000001,
     "issued": "2026-11-26T17:05:00+07:00", "area": "62/23456", "name": "blank", "args": {}}
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, NoReturn

from signage.errors import ContentError, ErrorCode
from signage.model.item import MAX_TEXT_LENGTH, Item, Priority, decode_json

ALERT_FORMAT = 1
COMMAND_FORMAT = 1
MSG_TYPES = ("Alert", "Update", "Cancel")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
SIGNED_COMMANDS = ("blank", "unblank", "restart", "power")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,119}")  # "alert:" + it fits an item id
_AREA = re.compile(r"[0-9A-Za-z]+(/[0-9A-Za-z]+)*")
_ALERT_KEYS = {
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
}
_COMMAND_KEYS = {"command", "publisher", "seq", "issued", "area", "name", "args"}


@dataclass(frozen=True, slots=True)
class Alert:
    """An emergency alert with CAP 1.2's fields. ``references`` names the alerts that an Update
    replaces or a Cancel withdraws (by identifier)."""

    publisher: str
    seq: int
    identifier: str
    sent: datetime
    msg_type: str
    references: tuple[str, ...]
    urgency: str
    severity: str
    certainty: str
    expires: datetime
    headline: str
    description: str
    instruction: str | None
    area: str
    area_desc: str | None = None

    def is_active(self, now: datetime) -> bool:
        """Return True while the alert should be on screen (not a Cancel, not expired)."""
        return self.msg_type != "Cancel" and now < self.expires

    def to_item(self) -> Item:
        """Return the emergency item that shows this alert until it expires."""
        fields: dict[str, str] = {
            "headline": self.headline,
            "description": self.description,
            "severity": self.severity if self.severity != "Unknown" else "Moderate",
            "expires": self.expires.isoformat(),
        }
        if self.instruction:
            fields["instruction"] = self.instruction
        return Item(
            id=f"alert:{self.identifier}",
            template="emergency",
            fields=fields,
            priority=Priority.EMERGENCY,
            duration_s=30.0,
            valid_from=None,
            valid_until=self.expires,
        )


@dataclass(frozen=True, slots=True)
class Command:
    """A signed command: ``name`` is one of SIGNED_COMMANDS, ``args`` its arguments."""

    publisher: str
    seq: int
    issued: datetime
    area: str
    name: str
    args: Mapping[str, Any]


def _fail(path: str, message: str) -> NoReturn:
    raise ContentError(ErrorCode.CONTENT_INVALID, message, path=path)


def _common(data: object, kind: str, fmt: int, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        _fail(f"({kind})", "expected an object")
    for key in data:
        if key not in keys:
            _fail(str(key), "unknown field")
    if type(data.get(kind)) is not int or data.get(kind) != fmt:
        _fail(kind, f"expected format {fmt}")
    publisher = data.get("publisher")
    if not isinstance(publisher, str) or not publisher:
        _fail("publisher", "expected a key id")
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < 2**63:
        _fail("seq", "expected a positive whole number that grows with every document")
    area = data.get("area")
    if not isinstance(area, str) or (area and not _AREA.fullmatch(area)):
        _fail("area", "expected an area path such as 62/23456 (or empty for everywhere)")
    return data


def _instant(data: Mapping[str, Any], key: str) -> datetime:
    value = data.get(key)
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        _fail(key, "expected an ISO 8601 time with offset")
    return moment


def _choice(data: Mapping[str, Any], key: str, values: tuple[str, ...]) -> str:
    value = data.get(key)
    if value not in values:
        _fail(key, f"expected one of {', '.join(values)}")
    return str(value)


def _text(data: Mapping[str, Any], key: str, required: bool) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
        _fail(key, f"expected text of at most {MAX_TEXT_LENGTH} characters")
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        _fail(key, "must not be empty")
    return text or None


def parse_alert(data: object) -> Alert:
    """Return the alert in parsed JSON ``data``; raise ContentError naming the bad field.

    Only ``status: Actual`` is accepted (exercises and tests never reach a public screen).
    An Update or Cancel must name the alerts it refers to in ``references``.
    """
    doc = _common(data, "alert", ALERT_FORMAT, _ALERT_KEYS)
    identifier = doc.get("identifier")
    if not isinstance(identifier, str) or not _IDENTIFIER.fullmatch(identifier):
        _fail("identifier", "expected 1-120 of A-Z a-z 0-9 . _ : -")
    if doc.get("status") != "Actual":
        _fail("status", "only Actual alerts are shown (not Exercise, System, Test or Draft)")
    msg_type = _choice(doc, "msgType", MSG_TYPES)
    refs = doc.get("references", [])
    if not isinstance(refs, list) or not all(
        isinstance(r, str) and _IDENTIFIER.fullmatch(r) for r in refs
    ):
        _fail("references", "expected a list of alert identifiers")
    if msg_type != "Alert" and not refs:
        _fail("references", f"an {msg_type} must name the alerts it refers to")
    if identifier in refs:
        _fail("references", "an alert cannot refer to itself")
    sent = _instant(doc, "sent")
    expires = _instant(doc, "expires")
    if expires <= sent:
        _fail("expires", "must be after sent")
    headline = _text(doc, "headline", msg_type != "Cancel") or ""
    description = _text(doc, "description", msg_type != "Cancel") or ""
    return Alert(
        publisher=doc["publisher"],
        seq=doc["seq"],
        identifier=identifier,
        sent=sent,
        msg_type=msg_type,
        references=tuple(refs),
        urgency=_choice(doc, "urgency", URGENCIES),
        severity=_choice(doc, "severity", SEVERITIES),
        certainty=_choice(doc, "certainty", CERTAINTIES),
        expires=expires,
        headline=headline,
        description=description,
        instruction=_text(doc, "instruction", False),
        area=doc["area"],
        area_desc=_text(doc, "areaDesc", False),
    )


def parse_command(data: object) -> Command:
    """Return the signed command in parsed JSON ``data``; raise ContentError naming the field."""
    doc = _common(data, "command", COMMAND_FORMAT, _COMMAND_KEYS)
    name = _choice(doc, "name", SIGNED_COMMANDS)
    args = doc.get("args", {})
    if not isinstance(args, dict):
        _fail("args", "expected an object")
    if name != "power" and args:
        _fail("args", f"{name} takes no arguments")
    return Command(
        publisher=doc["publisher"],
        seq=doc["seq"],
        issued=_instant(doc, "issued"),
        area=doc["area"],
        name=name,
        args=MappingProxyType(dict(args)),
    )


def load_alert_json(raw: bytes) -> Alert:
    """Return the alert in JSON bytes ``raw``; raise ContentError (content.json or .invalid)."""
    return parse_alert(decode_json(raw))


def load_command_json(raw: bytes) -> Command:
    """Return the command in JSON bytes ``raw``; raise ContentError (content.json or .invalid)."""
    return parse_command(decode_json(raw))
