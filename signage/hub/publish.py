"""Publisher tools: key files, building a bundle from a content folder, signing, verifying.

``signage keys new``, ``signage bundle build|sign|verify`` call these. A bundle is built from a
folder in the folder-mode format (items.json, images, optional ticker.txt): the items are checked
against their templates and every image must decode; the images are stored beside the bundle
under ``assets/<sha256>``, and the bundle's manifest names them with hash, size and media type.

Alerts and signed commands are documents too (docs/protocol.md §9, §10): built from fields, or
for alerts from a CAP 1.2 message, and checked with the board's own parser before they are signed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from PIL import Image

from signage.board.config import parse_power
from signage.board.folder import load_programme
from signage.compose import DEFAULT_MAX_PIXELS
from signage.errors import ContentError, ErrorCode, SigningError
from signage.layout import LayoutLibrary
from signage.model import bundle_to_json, load_alert_json, load_bundle_json, load_command_json
from signage.model.alert import MSG_TYPES
from signage.protocol import PrivateKey, Trust, accept_bundle

_MEDIA = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def write_keypair(key: PrivateKey, folder: Path) -> tuple[Path, Path]:
    """Write ``ID.key`` (mode 0600, never overwritten) and ``ID.pub`` into ``folder``.

    Returns both paths. Raises SigningError (key.invalid) if ``ID.key`` already exists.
    """
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / f"{key.key_id}.key"
    public = folder / f"{key.key_id}.pub"
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SigningError(
            ErrorCode.KEY_INVALID,
            "a key with this id exists; refusing to overwrite",
            path=str(private),
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key.to_json())
    public.write_text(key.public().to_json(), encoding="utf-8")
    return private, public


@dataclass(frozen=True, slots=True)
class Built:
    """A built bundle: where it is, and how many items and assets it has."""

    path: Path
    items: int
    assets: int


def build_bundle(
    source: Path,
    out: Path,
    *,
    publisher: str,
    version: int,
    area: str,
    issued: datetime,
    library: LayoutLibrary,
    tz: ZoneInfo,
) -> Built:
    """Build the bundle of content folder ``source`` into ``out`` and ``out.parent/assets``.

    Raises FolderError (folder.invalid) or ContentError when the folder would not play.
    """
    with tempfile.TemporaryDirectory(prefix="signage-build-") as scratch:
        programme = load_programme(source, library, Path(scratch), tz, DEFAULT_MAX_PIXELS)
        assets_dir = out.parent / "assets"
        assets_dir.mkdir(parents=True, exist_ok=True)
        manifest = {}
        for name, snapshot in sorted(programme.assets.items()):
            digest = snapshot.name.split(".")[0]
            with Image.open(snapshot) as image:
                media = _MEDIA.get(image.format or "", "")
            if not media:
                raise SigningError(
                    ErrorCode.BUNDLE_MALFORMED, f"{name}: images must be JPEG, PNG, WebP or GIF"
                )
            target = assets_dir / digest
            if not target.exists():
                shutil.copyfile(snapshot, target)
            manifest[name] = {
                "sha256": digest,
                "size": snapshot.stat().st_size,
                "media_type": media,
            }
        items = json.loads((source / "items.json").read_text(encoding="utf-8"))
    data = {
        "bundle": 1,
        "publisher": publisher,
        "version": version,
        "issued": issued.isoformat(),
        "area": area,
        "items": items,
        "assets": manifest,
    }
    if programme.ticker:
        data["ticker"] = programme.ticker
    raw = bundle_to_json(data)
    load_bundle_json(raw, tz)  # what we sign must be what a board will accept
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(raw)
    return Built(out, len(programme.items), len(manifest))


def sign_bundle(bundle: Path, key: PrivateKey, out: Path) -> None:
    """Sign the exact bytes of ``bundle`` with ``key`` into ``out``.

    Raises ContentError if ``bundle`` is not a valid bundle, SigningError if its publisher is not
    the key's id.
    """
    raw = bundle.read_bytes()
    parsed = load_bundle_json(raw)
    if parsed.publisher != key.key_id:
        raise SigningError(
            ErrorCode.SIGNATURE_INVALID,
            f"bundle publisher {parsed.publisher!r} is not the key {key.key_id!r}",
        )
    out.write_bytes(key.sign(raw))


def verify_bundle(signed: Path, trust: Trust) -> str:
    """Return a one-line summary of the valid signed bundle in ``signed``; raise SigningError."""
    bundle = accept_bundle(signed.read_bytes(), trust, {})
    return (
        f"valid: publisher {bundle.publisher}, version {bundle.version}, area"
        f" {bundle.area or '(all)'}, {len(bundle.items)} items, {len(bundle.assets)} assets"
    )


# -- alerts and signed commands (docs/protocol.md §9, §10) -------------------------------------

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_AREA_GEOCODE = "signage-area"  # <geocode><valueName> whose <value> is our area path
MAX_CAP_BYTES = 2**20
CANCEL_EXPIRES_AFTER = timedelta(hours=1)
_CAP = {"cap": CAP_NAMESPACE}
_CAP_DEFAULT_LANGUAGE = "en-US"
_CAP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?([+-]\d\d:\d\d|Z)")
# The CAP element each field of our alert document comes from, to name it in refusals.
_CAP_PATHS = {
    "identifier": "identifier",
    "sent": "sent",
    "status": "status",
    "msgType": "msgType",
    "references": "references",
    "urgency": "info.urgency",
    "severity": "info.severity",
    "certainty": "info.certainty",
    "expires": "info.expires",
    "headline": "info.headline",
    "description": "info.description",
    "instruction": "info.instruction",
    "area": "info.area.geocode",
    "areaDesc": "info.area.areaDesc",
}


def alert_from_cap(
    xml: bytes, *, publisher: str, seq: int, area: str | None = None, lang: str = "vi"
) -> bytes:
    """Return the UTF-8 JSON bytes of the alert document for CAP 1.2 message ``xml``.

    The ``<info>`` block in language ``lang`` is used (compared whole, then by primary subtag,
    case-insensitively; an info without ``<language>`` is en-US), else the first one. ``area`` is
    the area path to send to; when None it is the ``<value>`` of the info's ``<geocode>`` whose
    ``<valueName>`` is ``signage-area``. A Cancel without an info block gets urgency, severity and
    certainty Unknown, an empty headline and description, and expires one hour after ``sent``
    (as does a Cancel whose info has no ``<expires>``). Times keep their offset ("Z" becomes
    +00:00); text is stripped and NFC-normalised. The result is what
    :func:`signage.model.load_alert_json` accepts.

    Raises ContentError (alert.invalid) with ``path`` naming the CAP element: "(xml)" for input
    over MAX_CAP_BYTES, XML that is not well formed or that has a DTD or entity declarations;
    ``status`` other than Actual, ``msgType`` Ack or Error, an Alert or Update without an info
    block or ``info.expires``, no area, and anything the board would refuse.
    """
    if len(xml) > MAX_CAP_BYTES:
        _cap_fail("(xml)", f"CAP message is larger than {MAX_CAP_BYTES} bytes")
    try:
        root = fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        _cap_fail("(xml)", f"DTDs and entity declarations are not accepted in CAP ({exc!r})")
    except (ParseError, LookupError, ValueError) as exc:
        # ValueError: expat reads no multi-byte encoding but UTF-8 and UTF-16 (UTF-7, Shift_JIS)
        _cap_fail("(xml)", f"not well-formed XML: {exc}")
    if root.tag != f"{{{CAP_NAMESPACE}}}alert":
        _cap_fail("alert", f"expected a CAP 1.2 <alert> ({CAP_NAMESPACE}), got {root.tag}")
    status = _cap_text(root, "status")
    if status != "Actual":
        _cap_fail(
            "status",
            f"status is {status!r}: only Actual alerts are published"
            " (exercises and tests never reach a public screen)",
        )
    scope = _cap_text(root, "scope")
    if scope is not None and scope != "Public":
        _cap_fail("scope", f"scope is {scope!r}: only Public alerts go on public screens")
    msg_type = _cap_text(root, "msgType")
    if msg_type not in MSG_TYPES:
        _cap_fail("msgType", f"msgType is {msg_type!r}: expected one of {', '.join(MSG_TYPES)}")
    sent = _cap_time(root, "sent", "sent")
    if sent is None:
        _cap_fail("sent", "missing: the time the message was sent is required")
    info = _cap_info(root, lang)
    if info is None and msg_type != "Cancel":
        _cap_fail("info", f"an {msg_type} needs an <info> block (headline, expires, ...)")
    expires = _cap_time(info, "expires", "info.expires") if info is not None else None
    if expires is None:
        if msg_type != "Cancel":
            _cap_fail("info.expires", "missing: boards must know when to stop showing the alert")
        expires = sent + CANCEL_EXPIRES_AFTER
    data: dict[str, Any] = {
        "alert": 1,
        "publisher": publisher,
        "seq": seq,
        "identifier": _cap_text(root, "identifier"),
        "sent": sent.isoformat(),
        "status": status,
        "msgType": msg_type,
        "references": _cap_references(root),
    }
    if info is None:
        data.update(urgency="Unknown", severity="Unknown", certainty="Unknown")
    else:
        for key in ("urgency", "severity", "certainty"):
            data[key] = _cap_text(info, key)
    data["expires"] = expires.isoformat()
    for key in ("headline", "description"):
        data[key] = (_cap_text(info, key) if info is not None else None) or ""
    instruction = _cap_text(info, "instruction") if info is not None else None
    if instruction is not None:
        data["instruction"] = instruction
    data["area"] = area if area is not None else _cap_area(info)
    descriptions = [] if info is None else _cap_texts(info, "cap:area/cap:areaDesc")
    if descriptions:
        data["areaDesc"] = ", ".join(descriptions)
    try:
        return _alert_bytes(data)
    except ContentError as exc:
        # A bad --area is the argument's fault, not the CAP message's.
        from_cap = exc.path != "area" or area is None
        path = _CAP_PATHS.get(exc.path or "", exc.path) if from_cap else "area"
        raise ContentError(ErrorCode.ALERT_INVALID, exc.message, path=path) from exc


def alert_document(
    *,
    publisher: str,
    seq: int,
    identifier: str,
    headline: str,
    description: str,
    severity: str,
    expires: datetime,
    sent: datetime,
    area: str,
    urgency: str = "Immediate",
    certainty: str = "Observed",
    instruction: str | None = None,
    area_desc: str | None = None,
    msg_type: str = "Alert",
    references: Sequence[str] = (),
) -> bytes:
    """Return the UTF-8 JSON bytes of an alert document (status Actual) built from fields.

    Text is stripped and NFC-normalised; an empty ``instruction`` or ``area_desc`` is left out.
    ``sent`` and ``expires`` must carry a time zone. The result is what
    :func:`signage.model.load_alert_json` accepts.

    Raises ContentError naming the bad field: content.invalid from the model's checks (e.g. an
    unknown severity, a naive time, expires not after sent, an Update without references),
    content.json if a text cannot be encoded.
    """
    if isinstance(references, str):
        raise ContentError(
            ErrorCode.CONTENT_INVALID,
            "expected a list of alert identifiers, not one string",
            path="references",
        )
    data: dict[str, Any] = {
        "alert": 1,
        "publisher": publisher,
        "seq": seq,
        "identifier": identifier,
        "sent": sent.isoformat(),
        "status": "Actual",
        "msgType": msg_type,
        "references": list(references),
        "urgency": urgency,
        "severity": severity,
        "certainty": certainty,
        "expires": expires.isoformat(),
        "headline": _clean(headline),
        "description": _clean(description),
    }
    if instruction is not None and _clean(instruction):
        data["instruction"] = _clean(instruction)
    data["area"] = area
    if area_desc is not None and _clean(area_desc):
        data["areaDesc"] = _clean(area_desc)
    return _alert_bytes(data)


def cancel_document(
    *,
    publisher: str,
    seq: int,
    identifier: str,
    references: Sequence[str],
    sent: datetime,
    area: str,
    expires: datetime | None = None,
) -> bytes:
    """Return the UTF-8 JSON bytes of a Cancel alert that withdraws the alerts ``references``.

    Urgency, severity and certainty are Unknown, headline and description empty; ``expires``
    defaults to one hour after ``sent``. Raises ContentError (content.invalid) as
    :func:`alert_document` does, e.g. for empty ``references``.
    """
    return alert_document(
        publisher=publisher,
        seq=seq,
        identifier=identifier,
        headline="",
        description="",
        severity="Unknown",
        urgency="Unknown",
        certainty="Unknown",
        expires=expires if expires is not None else sent + CANCEL_EXPIRES_AFTER,
        sent=sent,
        area=area,
        msg_type="Cancel",
        references=references,
    )


def command_document(
    *,
    publisher: str,
    seq: int,
    name: str,
    area: str,
    issued: datetime,
    args: Mapping[str, Any] | None = None,
) -> bytes:
    """Return the UTF-8 JSON bytes of a signed command's document (docs/protocol.md §10).

    ``name`` is blank, unblank, restart or power; only power takes ``args`` (day -> hours), and
    its schedule is checked as a board checks it. The result is what
    :func:`signage.model.load_command_json` accepts.

    Raises ContentError (content.invalid naming the field, e.g. an unknown name, arguments for a
    command that takes none, a naive ``issued``, or args that are not JSON values; content.json
    for args a board could not parse); ConfigError (config.invalid, path ``power.<day>``) for a
    power schedule a board would refuse.
    """
    data: dict[str, Any] = {
        "command": 1,
        "publisher": publisher,
        "seq": seq,
        "issued": issued.isoformat(),
        "area": area,
        "name": name,
        "args": dict(args) if args is not None else {},
    }
    try:
        raw = bundle_to_json(data)
    except (TypeError, ValueError) as exc:
        raise ContentError(
            ErrorCode.CONTENT_INVALID, f"arguments must be JSON values: {exc}", path="args"
        ) from exc
    command = load_command_json(raw)
    if command.name == "power":
        parse_power(command.args)
    return raw


def _alert_bytes(data: Mapping[str, Any]) -> bytes:
    """Return ``data`` as document bytes once the board's parser accepts them."""
    raw = bundle_to_json(data)
    load_alert_json(raw)  # what we sign must be what a board will accept
    return raw


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _cap_fail(path: str, message: str) -> NoReturn:
    raise ContentError(ErrorCode.ALERT_INVALID, message, path=path)


def _cap_text(element: Element, tag: str) -> str | None:
    """Return the cleaned text of the first child ``tag`` (None when absent or empty)."""
    text = element.findtext(f"cap:{tag}", default=None, namespaces=_CAP)
    return (_clean(text) or None) if text is not None else None


def _cap_texts(element: Element, path: str) -> list[str]:
    found = (_clean(child.text or "") for child in element.iterfind(path, _CAP))
    return [text for text in found if text]


def _cap_time(element: Element, tag: str, path: str) -> datetime | None:
    text = _cap_text(element, tag)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text) if _CAP_TIME.fullmatch(text) else None
    except ValueError:
        moment = None
    if moment is None:
        _cap_fail(path, f"expected a CAP time such as 2026-11-26T17:00:00+07:00, got {text!r}")
    return moment


def _cap_references(root: Element) -> list[str]:
    """Return the identifiers of CAP ``references`` (space-separated sender,identifier,sent)."""
    identifiers: list[str] = []
    for triple in (_cap_text(root, "references") or "").split():
        parts = triple.split(",")
        if len(parts) != 3 or not parts[1]:
            _cap_fail("references", f"expected sender,identifier,sent triples, got {triple!r}")
        if parts[1] not in identifiers:
            identifiers.append(parts[1])
    return identifiers


def _cap_info(root: Element, lang: str) -> Element | None:
    """Return the info block in language ``lang`` (whole tag, then primary subtag), else the
    first info block, else None."""
    blocks = root.findall("cap:info", _CAP)
    languages = [(_cap_text(b, "language") or _CAP_DEFAULT_LANGUAGE).lower() for b in blocks]
    wanted = lang.strip().lower()
    for block, language in zip(blocks, languages, strict=True):
        if language == wanted:
            return block
    for block, language in zip(blocks, languages, strict=True):
        if language.split("-")[0] == wanted.split("-")[0]:
            return block
    return blocks[0] if blocks else None


def _cap_area(info: Element | None) -> str:
    """Return the area path of the info's signage-area geocode; refuse none or several."""
    values: list[str] = []
    if info is not None:
        for geocode in info.iterfind("cap:area/cap:geocode", _CAP):
            if _cap_text(geocode, "valueName") == CAP_AREA_GEOCODE:
                value = _cap_text(geocode, "value") or ""
                if value not in values:
                    values.append(value)
    if not values:
        _cap_fail(
            "info.area.geocode",
            f"no <geocode> with <valueName>{CAP_AREA_GEOCODE}</valueName>:"
            " pass --area with the area path (e.g. 62/23456)",
        )
    if len(values) > 1:
        _cap_fail(
            "info.area.geocode",
            f"several {CAP_AREA_GEOCODE} geocodes ({', '.join(values)}): an alert has one area;"
            " pass --area",
        )
    return values[0]
