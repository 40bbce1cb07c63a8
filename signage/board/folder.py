"""Folder mode: a programme from a folder with ``items.json`` and the images it names.

A change to the folder is applied only when the folder has stopped changing, ``items.json``
parses, every item suits its template and every image decodes. The images are then copied into
the data dir under their sha256 (a snapshot), so a file overwritten later in the folder never
reaches the screen half-written. An invalid change is logged with its reason and the previous
programme keeps playing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

from signage.compose import AssetResolver, folder_assets, load_image
from signage.errors import AssetError, ErrorCode, FolderError, SignageError
from signage.layout import LayoutLibrary
from signage.model import Item, load_items_json

log = logging.getLogger("signage.folder")

ITEMS_FILE = "items.json"
TICKER_FILE = "ticker.txt"
MAX_TICKER_CHARS = 4000

Signature = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class Programme:
    """A validated programme: its items, snapshot copies of its images, its ticker text."""

    items: tuple[Item, ...]
    assets: Mapping[str, Path]
    ticker: str | None
    source: str

    def resolver(self) -> AssetResolver:
        """Return a resolver from the names used in items to the snapshot files."""
        assets = self.assets

        def resolve(name: str) -> Path:
            path = assets.get(name)
            if path is None:
                raise AssetError(ErrorCode.ASSET_MISSING, "not part of the programme", path=name)
            return path

        return resolve


EMPTY = Programme((), MappingProxyType({}), None, "(none)")


def signature(folder: Path) -> Signature:
    """Return (name, size, mtime) of every file in ``folder``: it changes when anything does."""
    out: list[tuple[str, int, int]] = []
    try:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file():
                info = entry.stat()
                out.append((entry.name, info.st_size, info.st_mtime_ns))
    except OSError:
        return ()
    return tuple(out)


def load_programme(
    folder: Path,
    library: LayoutLibrary,
    snapshot_dir: Path,
    tz: ZoneInfo,
    max_pixels: int,
) -> Programme:
    """Return the programme in ``folder``, its images copied into ``snapshot_dir``.

    Raises FolderError (folder.invalid) with the reason: a missing or malformed items.json, an
    item that does not suit its template, an image that is missing or does not decode.
    """
    try:
        raw = (folder / ITEMS_FILE).read_bytes()
    except OSError as exc:
        raise FolderError(
            ErrorCode.FOLDER_INVALID, f"cannot read {ITEMS_FILE}: {exc.strerror}", path=str(folder)
        ) from exc
    try:
        items = load_items_json(raw, tz=tz)
        for index, item in enumerate(items):
            try:
                library.get(item.template).check(item.fields)
            except SignageError as exc:
                raise FolderError(
                    exc.code, exc.message, path=f"[{index}].{exc.path or 'template'}"
                ) from exc
    except SignageError as exc:
        raise FolderError(exc.code, f"{ITEMS_FILE}: {exc}", path=str(folder)) from exc
    resolve = folder_assets(folder)
    assets: dict[str, Path] = {}
    for index, item in enumerate(items):
        template = library.get(item.template)
        for spec in template.fields.values():
            name = item.fields.get(spec.name)
            if spec.type != "image" or not isinstance(name, str) or not name or name in assets:
                continue
            try:
                source = resolve(name)
                load_image(source, max_pixels)
                assets[name] = _snapshot(source, snapshot_dir)
            except (AssetError, OSError) as exc:
                raise FolderError(
                    ErrorCode.FOLDER_INVALID,
                    f"{ITEMS_FILE}[{index}].fields.{spec.name}: {exc}",
                    path=str(folder),
                ) from exc
    return Programme(items, MappingProxyType(assets), _ticker(folder), str(folder))


def _ticker(folder: Path) -> str | None:
    path = folder / TICKER_FILE
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FolderError(
            ErrorCode.FOLDER_INVALID, f"{TICKER_FILE}: not readable UTF-8 text ({exc})"
        ) from exc
    if len(text) > MAX_TICKER_CHARS:
        raise FolderError(
            ErrorCode.FOLDER_INVALID, f"{TICKER_FILE}: longer than {MAX_TICKER_CHARS} characters"
        )
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return text or None


def _snapshot(source: Path, snapshot_dir: Path) -> Path:
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    target = snapshot_dir / f"{digest}{source.suffix.lower()}"
    if not target.exists():
        snapshot_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
    return target


def clean_snapshots(snapshot_dir: Path, keep: Mapping[str, Path]) -> int:
    """Delete snapshot files no longer in ``keep``; return how many were removed."""
    wanted = {path.name for path in keep.values()}
    removed = 0
    if not snapshot_dir.is_dir():
        return 0
    for path in snapshot_dir.iterdir():
        if path.name not in wanted:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class FolderWatcher:
    """Polls a content folder and yields a new programme once a change is complete and valid."""

    def __init__(
        self,
        folder: Path,
        library: LayoutLibrary,
        snapshot_dir: Path,
        tz: ZoneInfo,
        max_pixels: int,
    ) -> None:
        self.folder = folder
        self.library = library
        self.snapshot_dir = snapshot_dir
        self.tz = tz
        self.max_pixels = max_pixels
        self.last_error: SignageError | None = None
        self._seen: Signature | None = None
        self._applied: Signature | None = None

    def load_now(self) -> Programme | None:
        """Return the folder's programme at start-up (None, with ``last_error`` set, if invalid)."""
        self._seen = signature(self.folder)
        return self._try(self._seen)

    def poll(self) -> Programme | None:
        """Return a new programme when the folder changed, then stayed the same for one poll,
        and is valid; None otherwise (an invalid change is logged once)."""
        current = signature(self.folder)
        if current != self._seen:
            self._seen = current  # still changing (being copied?): look again next time
            return None
        if current == self._applied:
            return None
        return self._try(current)

    def _try(self, current: Signature) -> Programme | None:
        self._applied = current
        try:
            programme = load_programme(
                self.folder, self.library, self.snapshot_dir, self.tz, self.max_pixels
            )
        except FolderError as exc:
            self.last_error = exc
            log.warning("folder change refused folder=%s reason=%s", self.folder, exc)
            return None
        self.last_error = None
        log.info("folder applied folder=%s items=%d", self.folder, len(programme.items))
        return programme
