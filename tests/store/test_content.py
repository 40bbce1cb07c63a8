"""The content store: assets by hash, two-phase apply, quota, and consistency after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from signage.errors import AssetError, ErrorCode, StoreError
from signage.model import AssetRef, parse_bundle
from signage.store import ContentStore

ISSUED = "2026-11-26T17:00:00+07:00"


def _ref(data: bytes) -> AssetRef:
    return AssetRef(hashlib.sha256(data).hexdigest(), len(data), "image/png")


def _bundle(version: int, assets: dict[str, bytes], publisher: str = "tinh-62"):  # type: ignore[no-untyped-def]
    return parse_bundle(
        {
            "bundle": 1,
            "publisher": publisher,
            "version": version,
            "issued": ISSUED,
            "area": "62",
            "items": [{"id": "a", "template": "text-only", "fields": {"body": "x"}}],
            "assets": {
                name: {"sha256": _ref(d).sha256, "size": len(d), "media_type": "image/png"}
                for name, d in assets.items()
            },
        }
    )


def test_assets_are_checked_against_hash_and_size(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = b"picture bytes"
    ref = _ref(data)
    with pytest.raises(AssetError) as caught:
        store.put_asset(ref, data + b"!")  # larger than declared
    assert caught.value.code is ErrorCode.ASSET_SIZE_MISMATCH
    with pytest.raises(AssetError) as caught:
        store.put_asset(ref, b"Picture bytes")  # same size, other bytes
    assert caught.value.code is ErrorCode.ASSET_HASH_MISMATCH
    assert not store.has_asset(ref)
    path = store.put_asset(ref, data)
    assert path.name == ref.sha256 and store.has_asset(ref)
    with pytest.raises(AssetError):
        store.asset_path("../../etc/passwd")


def test_two_phase_apply(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    first = {"a.png": b"one", "b.png": b"two"}
    bundle = _bundle(1, first)
    with pytest.raises(StoreError) as caught:
        store.commit(bundle)  # not staged
    assert caught.value.code is ErrorCode.BUNDLE_INCOMPLETE
    store.stage(bundle, b"envelope-1")
    assert {r.sha256 for r in store.missing(bundle)} == {_ref(d).sha256 for d in first.values()}
    store.put_asset(_ref(b"one"), b"one")
    with pytest.raises(StoreError):
        store.commit(bundle)  # one asset still missing: the old programme stays
    assert store.versions() == {}
    store.put_asset(_ref(b"two"), b"two")
    store.commit(bundle)
    assert store.versions() == {"tinh-62": 1}
    assert store.envelope("tinh-62", 1) == b"envelope-1"
    newer = _bundle(2, {"c.png": b"three"})
    store.stage(newer, b"envelope-2")
    store.put_asset(_ref(b"three"), b"three")
    store.commit(newer)
    assert store.versions() == {"tinh-62": 2}
    with pytest.raises(StoreError):
        store.envelope("tinh-62", 1)  # superseded versions are dropped


def test_eviction_keeps_what_committed_bundles_need(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, quota_bytes=10)
    needed = store.put_asset(_ref(b"x" * 8), b"x" * 8)
    for index in range(5):
        store.put_asset(_ref(bytes([index]) * 8), bytes([index]) * 8)
    freed = store.evict([needed.name])
    assert freed == 40 and needed.exists()
    assert sum(p.stat().st_size for p in store.assets.iterdir()) <= 10


KILLS = int(os.environ.get("SIGNAGE_KILLS", "300"))


def _writer(root: Path) -> None:
    """The child: applies bundle after bundle as the link does (stage, download assets in
    chunks into the resumable partial files, finish, commit), until it is killed."""
    store = ContentStore(root)
    version = max(store.versions().values(), default=0)
    while True:
        version += 1
        blobs = {f"{version}-{i}.png": (f"{version}:{i}:" * 2000).encode() for i in range(3)}
        bundle = parse_bundle(
            {
                "bundle": 1,
                "publisher": "tinh-62",
                "version": version,
                "issued": "2026-11-26T17:00:00+07:00",
                "area": "62",
                "items": [{"id": "a", "template": "text-only", "fields": {"body": "x"}}],
                "assets": {
                    n: {
                        "sha256": hashlib.sha256(d).hexdigest(),
                        "size": len(d),
                        "media_type": "image/png",
                    }
                    for n, d in blobs.items()
                },
            }
        )
        store.stage(bundle, f"envelope {version}".encode())
        for data in blobs.values():
            ref = AssetRef(hashlib.sha256(data).hexdigest(), len(data), "image/png")
            held = store.partial_size(ref.sha256)  # resume what a killed run left
            for offset in range(held, len(data), 4096):
                store.append_partial(ref.sha256, offset, data[offset : offset + 4096])
            store.finish_partial(ref)
        store.commit(bundle)


def test_consistent_after_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    root = tmp_path / "store"
    ContentStore(root)
    last = 0
    for _ in range(KILLS):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                _writer(root)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.03))  # a random point in the loop
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        store = ContentStore(root)
        committed = store.versions().get("tinh-62", 0)
        assert committed >= last  # never older than before the kill
        if committed:
            envelope = store.envelope("tinh-62", committed)
            assert envelope == f"envelope {committed}".encode()
            for index in range(3):
                data = (f"{committed}:{index}:" * 2000).encode()
                path = store.asset_path(hashlib.sha256(data).hexdigest())
                assert path.read_bytes() == data  # every committed asset is whole
        # Downloads in progress are prefixes of their asset, never garbage.
        for partial in (root / "partial").iterdir():
            held = partial.read_bytes()
            if held:
                version_text, index_text = held.decode().split(":")[:2]
                whole = f"{version_text}:{index_text}:".encode() * 2000
                assert hashlib.sha256(whole).hexdigest() == partial.name
                assert whole.startswith(held)
        assert not list(root.rglob("*.part"))  # leftovers are swept on open
        last = committed
    assert last > 0
    assert json.loads((root / "current.json").read_text())["publishers"]["tinh-62"] == last
