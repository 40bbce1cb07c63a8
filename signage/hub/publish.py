"""Publisher tools: key files, building a bundle from a content folder, signing, verifying.

``signage keys new``, ``signage bundle build|sign|verify`` call these. A bundle is built from a
folder in the folder-mode format (items.json, images, optional ticker.txt): the items are checked
against their templates and every image must decode; the images are stored beside the bundle
under ``assets/<sha256>``, and the bundle's manifest names them with hash, size and media type.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image

from signage.board.folder import load_programme
from signage.compose import DEFAULT_MAX_PIXELS
from signage.errors import ErrorCode, SigningError
from signage.layout import LayoutLibrary
from signage.model import bundle_to_json, load_bundle_json
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
