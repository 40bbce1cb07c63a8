"""The board's content store: assets by hash, signed bundles, and the committed pointer.

    DATA/store/assets/<sha256>                 asset bytes, named by hash, never by the network
    DATA/store/bundles/<publisher>/<version>   signed envelopes as received (staged)
    DATA/store/current.json                    what is committed: publisher -> version
    DATA/store/partial/<sha256>                asset downloads in progress (resumable)
    DATA/store/alerts.json                     signed alerts in force
    DATA/store/state.json                      last seq per publisher, signed blank and power

Two-phase apply: a bundle is staged, its assets arrive and are checked against their hash and size,
and only then :meth:`ContentStore.commit` switches ``current.json`` by writing a new file, fsyncing
it and renaming it over the old one (then fsyncing the folder). A crash at any moment leaves either
the old or the new pointer, and every committed bundle's files complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from signage.errors import AssetError, ErrorCode, StoreError
from signage.model import AssetRef, Bundle

POINTER = "current.json"


def fsync_dir(folder: Path) -> None:
    """Make the names in ``folder`` (a rename, a new file) survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, whole."""
    if not path.parent.is_dir():  # a new publisher's folder: its name must last too
        path.parent.mkdir(parents=True, exist_ok=True)
        fsync_dir(path.parent.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    fsync_dir(path.parent)


class ContentStore:
    """Assets and bundles under ``root`` (DATA/store), with a byte quota for assets."""

    def __init__(self, root: Path, quota_bytes: int = 2 * 2**30, *, readonly: bool = False) -> None:
        self.root = root
        self.quota_bytes = quota_bytes
        self.assets = root / "assets"
        self.bundles = root / "bundles"
        self.partial = root / "partial"
        if readonly:
            # Another process (diagnostics) looking at a live store: touch nothing.
            return
        try:
            for folder in (self.assets, self.bundles, self.partial):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=str(root)) from exc
        self._sweep_partials()

    # -- assets ---------------------------------------------------------------------------------

    def asset_path(self, sha256: str) -> Path:
        """Return where the asset with hash ``sha256`` is (or would be) stored."""
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise AssetError(ErrorCode.ASSET_MISSING, "not a sha256 hash", path=sha256)
        return self.assets / sha256

    def has_asset(self, ref: AssetRef) -> bool:
        """Return True when the asset is stored with its declared size."""
        path = self.asset_path(ref.sha256)
        try:
            return path.stat().st_size == ref.size
        except OSError:
            return False

    def put_asset(self, ref: AssetRef, data: bytes) -> Path:
        """Store ``data`` as asset ``ref`` and return its path.

        Raises AssetError: asset.size_mismatch when the bytes are not the declared size (more or
        fewer), asset.hash_mismatch when their sha256 differs. Nothing is stored then.
        """
        if len(data) != ref.size:
            raise AssetError(
                ErrorCode.ASSET_SIZE_MISMATCH,
                f"got {len(data)} bytes, the manifest declares {ref.size}",
                path=ref.sha256,
            )
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise AssetError(
                ErrorCode.ASSET_HASH_MISMATCH, "bytes do not match their sha256", path=ref.sha256
            )
        path = self.asset_path(ref.sha256)
        if not path.exists():
            write_atomically(path, data)
        return path

    def partial_size(self, sha256: str) -> int:
        """Return how many bytes of asset ``sha256`` a download in progress holds (0: none)."""
        try:
            return (self.partial / self.asset_path(sha256).name).stat().st_size
        except OSError:
            return 0

    def append_partial(self, sha256: str, offset: int, data: bytes) -> int:
        """Add ``data`` at ``offset`` to the download of asset ``sha256``; return its new size.

        Raises AssetError (asset.out_of_order) when ``offset`` is not where the download stands:
        the caller asks again from :meth:`partial_size`.
        """
        path = self.partial / self.asset_path(sha256).name
        held = self.partial_size(sha256)
        if offset != held:
            raise AssetError(
                ErrorCode.ASSET_OUT_OF_ORDER,
                f"chunk at {offset}, the download stands at {held}",
                path=sha256,
            )
        try:
            with open(path, "ab") as out:
                out.write(data)
        except OSError as exc:
            raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=str(path)) from exc
        return held + len(data)

    def finish_partial(self, ref: AssetRef) -> Path:
        """Check a complete download against ``ref`` and move it into the store; return its path.

        Raises AssetError (asset.size_mismatch, asset.hash_mismatch); the download is deleted
        then, so the next attempt starts again from zero.
        """
        partial = self.partial / self.asset_path(ref.sha256).name
        digest = hashlib.sha256()
        size = 0
        try:
            with open(partial, "rb") as source:
                while block := source.read(2**20):
                    digest.update(block)
                    size += len(block)
                os.fsync(source.fileno())
        except OSError as exc:
            raise AssetError(ErrorCode.ASSET_MISSING, str(exc), path=ref.sha256) from exc
        if size != ref.size or digest.hexdigest() != ref.sha256:
            partial.unlink(missing_ok=True)
            code = (
                ErrorCode.ASSET_SIZE_MISMATCH if size != ref.size else ErrorCode.ASSET_HASH_MISMATCH
            )
            raise AssetError(
                code, f"download of {size} bytes does not match its manifest entry", path=ref.sha256
            )
        target = self.asset_path(ref.sha256)
        os.replace(partial, target)
        fsync_dir(self.assets)
        return target

    def missing(self, bundle: Bundle) -> list[AssetRef]:
        """Return the assets of ``bundle`` not yet stored, without duplicates."""
        seen: dict[str, AssetRef] = {}
        for ref in bundle.assets.values():
            if ref.sha256 not in seen and not self.has_asset(ref):
                seen[ref.sha256] = ref
        return list(seen.values())

    # -- bundles --------------------------------------------------------------------------------

    def stage(self, bundle: Bundle, envelope: bytes) -> Path:
        """Keep the signed ``envelope`` of ``bundle`` until it can be committed; return its path."""
        path = self._bundle_path(bundle.publisher, bundle.version)
        write_atomically(path, envelope)
        return path

    def commit(self, bundle: Bundle) -> None:
        """Make ``bundle`` its publisher's current one. Raises StoreError (bundle.incomplete)
        when it is not staged or an asset is missing."""
        if not self._bundle_path(bundle.publisher, bundle.version).is_file():
            raise StoreError(ErrorCode.BUNDLE_INCOMPLETE, "bundle was not staged")
        missing = self.missing(bundle)
        if missing:
            raise StoreError(ErrorCode.BUNDLE_INCOMPLETE, f"{len(missing)} assets are not here yet")
        current = dict(self.versions())
        current[bundle.publisher] = bundle.version
        data = json.dumps({"publishers": current}, sort_keys=True).encode("utf-8")
        write_atomically(self.root / POINTER, data)
        self._drop_old(bundle.publisher, bundle.version)

    def versions(self) -> Mapping[str, int]:
        """Return the committed version of each publisher (empty before the first commit)."""
        try:
            data = json.loads((self.root / POINTER).read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(ErrorCode.STORE_FAILED, f"committed pointer: {exc}") from exc
        publishers = data.get("publishers", {}) if isinstance(data, dict) else {}
        return {str(k): int(v) for k, v in publishers.items()}

    def envelope(self, publisher: str, version: int) -> bytes:
        """Return the stored signed envelope of ``publisher`` at ``version``. Raises StoreError."""
        try:
            return self._bundle_path(publisher, version).read_bytes()
        except OSError as exc:
            raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=publisher) from exc

    def committed(self) -> list[bytes]:
        """Return the signed envelopes of every committed bundle (publisher by publisher)."""
        return [self.envelope(p, v) for p, v in sorted(self.versions().items())]

    # -- small documents ------------------------------------------------------------------------

    def read_doc(self, name: str) -> dict[str, object]:
        """Return the JSON document ``name`` (``alerts``, ``state``); empty when absent.

        Raises StoreError when it exists but cannot be read.
        """
        try:
            data = json.loads((self.root / f"{name}.json").read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(ErrorCode.STORE_FAILED, f"{name}.json: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def write_doc(self, name: str, data: Mapping[str, object]) -> None:
        """Replace the JSON document ``name`` atomically. Raises StoreError."""
        try:
            write_atomically(self.root / f"{name}.json", json.dumps(data, sort_keys=True).encode())
        except OSError as exc:
            raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=name) from exc

    # -- upkeep ---------------------------------------------------------------------------------

    def evict(self, needed: Iterable[str]) -> int:
        """Delete assets not in ``needed`` (hashes of committed bundles), oldest first, until the
        store is within its quota. Returns the bytes freed."""
        keep = set(needed)
        files = sorted(
            (p for p in self.assets.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime
        )
        total = sum(p.stat().st_size for p in files)
        freed = 0
        for path in files:
            if total - freed <= self.quota_bytes:
                break
            if path.name in keep:
                continue
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            freed += size
        return freed

    def drop_partials(self, keep: Iterable[str]) -> int:
        """Delete the downloads in progress of assets not in ``keep`` (hashes still wanted):
        what a superseded bundle left half-fetched would otherwise stay on disk for good.
        Returns the bytes freed."""
        wanted = set(keep)
        freed = 0
        for path in self.partial.iterdir():
            if path.name in wanted:
                continue
            with contextlib.suppress(OSError):
                size = path.stat().st_size
                path.unlink()
                freed += size
        return freed

    def _bundle_path(self, publisher: str, version: int) -> Path:
        if not publisher or "/" in publisher or publisher.startswith("."):
            raise StoreError(ErrorCode.STORE_FAILED, "bad publisher id", path=publisher)
        return self.bundles / publisher / str(int(version))

    def _drop_old(self, publisher: str, version: int) -> None:
        for path in (self.bundles / publisher).iterdir():
            if path.name.isdigit() and int(path.name) < version:
                path.unlink(missing_ok=True)

    def _sweep_partials(self) -> None:
        for folder in (self.root, self.assets, *self.bundles.glob("*")):
            if folder.is_dir():
                for path in folder.glob(".*.part"):
                    path.unlink(missing_ok=True)
