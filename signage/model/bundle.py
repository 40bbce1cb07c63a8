"""Bundles: a publisher's whole programme for an area, with the manifest of its assets (no I/O).

A bundle is JSON (see docs/protocol.md):

    {"bundle": 1, "publisher": "tinh-62", "version": 1764150000000,
     "issued": "2026-11-26T17:00:00+07:00", "area": "62/23456",
     "items": [ ...items as in docs/content.md... ],
     "assets": {"dong-lua.jpg": {"sha256": "<64 hex>", "size": 144067, "media_type": "image/jpeg"}},
     "ticker": "optional text under every slide"}
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from signage.errors import ContentError, ErrorCode
from signage.model.item import Item, decode_json, parse_items

BUNDLE_FORMAT = 1
MAX_ASSET_BYTES = 64 * 2**20
MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_AREA = re.compile(r"[0-9A-Za-z]+(/[0-9A-Za-z]+)*")
_KEYS = {"bundle", "publisher", "version", "issued", "area", "items", "assets", "ticker"}


@dataclass(frozen=True, slots=True)
class AssetRef:
    """An asset a bundle needs: content hash, size in bytes and media type."""

    sha256: str
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed bundle. ``assets`` maps the names items use to their manifest entries."""

    publisher: str
    version: int
    issued: datetime
    area: str
    items: tuple[Item, ...]
    assets: Mapping[str, AssetRef]
    ticker: str | None = None


def _fail(path: str, message: str) -> ContentError:
    return ContentError(ErrorCode.CONTENT_INVALID, message, path=path)


def parse_bundle(data: object, tz: ZoneInfo | None = None) -> Bundle:
    """Return the bundle in parsed JSON ``data``; raise ContentError naming the bad field."""
    if not isinstance(data, dict):
        raise _fail("(bundle)", "expected an object")
    for key in data:
        if key not in _KEYS:
            raise _fail(str(key), "unknown field")
    if type(data.get("bundle")) is not int or data.get("bundle") != BUNDLE_FORMAT:
        raise _fail("bundle", f"expected format {BUNDLE_FORMAT}")
    publisher = data.get("publisher")
    if not isinstance(publisher, str) or not publisher:
        raise _fail("publisher", "expected a key id")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**63:
        raise _fail("version", "expected a positive whole number")
    issued_text = data.get("issued")
    try:
        issued = datetime.fromisoformat(issued_text) if isinstance(issued_text, str) else None
    except ValueError:
        issued = None
    if issued is None or issued.tzinfo is None:
        raise _fail("issued", "expected an ISO 8601 time with offset")
    area = data.get("area")
    if not isinstance(area, str) or (area and not _AREA.fullmatch(area)):
        raise _fail("area", "expected an area path such as 62/23456 (or empty for everywhere)")
    items = parse_items(data.get("items"), tz=tz)
    assets_raw = data.get("assets", {})
    if not isinstance(assets_raw, dict):
        raise _fail("assets", "expected an object")
    assets: dict[str, AssetRef] = {}
    for name, entry in assets_raw.items():
        assets[name] = _asset(name, entry)
    ticker = data.get("ticker")
    if ticker is not None:
        if not isinstance(ticker, str) or len(ticker) > 4000:
            raise _fail("ticker", "expected a string of at most 4000 characters")
        ticker = unicodedata.normalize("NFC", ticker).strip() or None
    return Bundle(publisher, version, issued, area, items, MappingProxyType(assets), ticker)


def _asset(name: str, entry: Any) -> AssetRef:
    path = f"assets.{name}"
    if not _ASSET_NAME.fullmatch(name) or ".." in name:
        raise _fail(path, "asset names are 1-128 of A-Z a-z 0-9 . _ - (no folders)")
    if not isinstance(entry, dict) or set(entry) != {"sha256", "size", "media_type"}:
        raise _fail(path, "expected {sha256, size, media_type}")
    digest, size, media = entry["sha256"], entry["size"], entry["media_type"]
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise _fail(f"{path}.sha256", "expected 64 lower-case hex digits")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_ASSET_BYTES:
        raise _fail(f"{path}.size", f"expected 1..{MAX_ASSET_BYTES} bytes")
    if not isinstance(media, str) or media not in MEDIA_TYPES:
        raise _fail(f"{path}.media_type", f"expected one of {', '.join(sorted(MEDIA_TYPES))}")
    return AssetRef(digest, size, media)


def load_bundle_json(raw: bytes, tz: ZoneInfo | None = None) -> Bundle:
    """Return the bundle in JSON bytes ``raw``; raise ContentError (content.json or .invalid)."""
    return parse_bundle(decode_json(raw), tz)


def bundle_to_json(bundle_data: Mapping[str, Any]) -> bytes:
    """Return bundle data as the UTF-8 JSON bytes that get signed."""
    return (json.dumps(bundle_data, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
