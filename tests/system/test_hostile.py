"""Hostile input, end to end: a real hub (tests/hub/hubkit.py) on 127.0.0.1 with two real boards
(Link + ContentSync, tests/board/linkkit.py), and for each hostile input the error code it must
get, and proof that nothing changed: the victim board keeps its programme (nothing unsigned is
ever shown), and the hub goes on serving another board (a push reaches it).

What a taken-over hub could send a board is sent through the real hub's own connection to it
(``BoardChannel.push`` for well-formed messages, the raw socket for the rest); what a rogue
board or client could send the hub comes from a raw websockets client with a board's token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import struct
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

import signage.hub.channel
import signage.hub.server
from signage.board.folder import Programme
from signage.board.link import Backoff
from signage.errors import ErrorCode, HubError
from signage.hub.channel import BoardChannel
from signage.hub.publish import alert_document, command_document
from signage.model import bundle_to_json
from signage.protocol import Acked, Limits, PrivateKey, Session, Trust
from tests.board.linkkit import (
    REPO,
    TZ,
    Board,
    make_board,
    signed_example,
    signed_text_bundle,
    until,
)
from tests.hub.hubkit import Rig, running_hub, wait_online

GOOD = "Thông báo đúng của tỉnh"
E = ErrorCode
MIB = 2**20


def run(coro: Any) -> None:
    asyncio.run(coro)


# -- the hub's ear: every text frame a board sent to it ----------------------------------------


class TapSession(Session):
    """The hub's session of one board connection, keeping the text frames the board sent (so
    that a test can read the board's answer to a frame it sent past the hub's session)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heard: list[str | bytes] = []

    def receive_text(self, data: str | bytes, now: float) -> None:
        self.heard.append(data)
        super().receive_text(data, now)


@pytest.fixture(autouse=True)
def tap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signage.hub.channel, "Session", TapSession)


# -- the scene: a hub, a victim with good content, a bystander ----------------------------------


@dataclass
class Scene:
    rig: Rig
    victim: Board
    bystander: Board
    province: PrivateKey  # tinh-62, may sign for 62: the victim's publisher
    commune: PrivateKey  # xa-11111, may sign for 62/11111 only (trusted by the boards)
    neighbour: PrivateKey  # xa-99999, the bystander's publisher
    before: Programme = field(init=False)
    changes: int = field(init=False)
    pushes: int = 0

    def __post_init__(self) -> None:
        self.before = self.victim.sync.programme()
        self.changes = self.victim.hooks.changes

    @property
    def channel(self) -> BoardChannel:
        """The hub's connection to the victim (what a taken-over hub would write to)."""
        return self.rig.hub.channels["victim"]

    async def online(self) -> BoardChannel:
        """Return the victim's connection once it is in session: a board that received a
        broken document (bad signature, unreadable frame) hangs up and dials again to have it
        sent once more, so a case's next message waits for that."""
        channels, link = self.rig.hub.channels, self.victim.link

        def in_session() -> bool:
            if link.resyncing or link.stats.state != "ready" or "victim" not in channels:
                return False
            return channels["victim"].ready.is_set()

        await until(in_session, 15)
        return channels["victim"]

    async def push(self, kind: str, fields: Mapping[str, Any]) -> Acked:
        """Send a well-formed message through the hub's session; return the victim's ack."""
        channel = await self.online()
        ack = await asyncio.wait_for(channel.push(kind, fields), 10)
        await self.online()
        return ack

    def unplanned(self) -> int:
        """Return how many times the victim connected other than to resync."""
        stats = self.victim.link.stats
        return stats.connects - stats.resyncs

    async def raw(self, text: str | bytes, ref: str | None = None) -> dict[str, Any] | None:
        """Write ``text`` straight onto the victim's socket, past the hub's session; return the
        victim's answer to ``ref`` (None when no ref is given)."""
        channel = await self.online()
        await channel.ws.send(text)
        if ref is None:
            return None
        tap = channel.session
        assert isinstance(tap, TapSession)
        async with asyncio.timeout(5):
            while True:
                for heard in tap.heard:
                    with contextlib.suppress(ValueError):
                        said = json.loads(heard)
                        if said.get("type") == "ack" and said.get("ref") == ref:
                            return dict(said)
                await asyncio.sleep(0.01)

    async def unharmed(self) -> None:
        """The victim plays what it played, nothing more; the hub serves the bystander."""
        victim = self.victim
        assert victim.sync.store.versions() == {"tinh-62": 100}
        assert victim.sync.programme() == self.before
        assert victim.sync.programme().items[0].fields["title"] == GOOD
        assert victim.hooks.changes == self.changes
        assert victim.sync.alert_items(datetime.now(TZ)) == ()
        assert victim.hooks.alerts_seen == 0
        assert victim.hooks.commands == []
        assert not victim.sync.blanked()
        assert victim.task is not None and not victim.task.done(), "the victim's link stopped"
        self.pushes += 1
        version = 1000 + self.pushes
        news = signed_text_bundle(self.neighbour, version, "Tin của xã bên", area="62/99999")
        async with self.rig.publisher("xa-99999") as client:
            result = await client.push_bundle(news, self.rig.root, wait_s=10)
        assert outcomes(result) == {"bystander": "applied"}
        assert self.bystander.sync.store.versions() == {"xa-99999": version}
        status, _, _ = await asyncio.to_thread(self.rig.get, "/healthz")
        assert status == 200


def outcomes(result: Mapping[str, Any]) -> dict[str, str]:
    return {b["board"]: b["outcome"] for b in result["boards"]}


def refusal(result: Mapping[str, Any], board: str = "victim") -> str:
    """Return the error code a board's refusal carries in a publish result."""
    (row,) = [b for b in result["boards"] if b["board"] == board]
    assert row["outcome"] == "refused", row
    return str(row["error"]["code"])


@contextlib.asynccontextmanager
async def scene(root: Path, **config: Any) -> AsyncIterator[Scene]:
    async with running_hub(root, screenshot_every_s=0, **config) as rig:
        province = rig.add_publisher("tinh-62", "62")
        commune = rig.add_publisher("xa-11111", "62/11111")
        neighbour = rig.add_publisher("xa-99999", "62/99999")
        rig.add_board("victim", "62/23456")
        rig.add_board("bystander", "62/99999")
        for n in (1, 2):
            rig.add_board(f"raw{n}", "63/1")  # raw clients; nothing is published there
        victim = await rig.start_board("victim")
        bystander = await rig.start_board("bystander")
        await wait_online(rig, "victim", "bystander")
        async with rig.publisher("tinh-62") as client:
            first = signed_text_bundle(province, 100, GOOD, area="62/23456")
            result = await client.push_bundle(first, root, wait_s=10)
        assert outcomes(result) == {"victim": "applied"}
        await until(rig.hub.channels["victim"].ready.is_set)
        # Most cases here play a hub taken over: it sends the victim what it likes, and serves
        # any asset it holds (the real hub serves a board only assets its area's bundles name,
        # which test_a_board_gets_only_assets_its_area_publishes checks).
        rig.hub.asset_for = lambda area, sha256: rig.hub.asset_path(sha256)  # type: ignore[method-assign]
        yield Scene(rig, victim, bystander, province, commune, neighbour)


# -- documents and raw frames -------------------------------------------------------------------

ISSUED = "2026-11-26T17:00:00+07:00"


def bundle(
    key: PrivateKey,
    version: int,
    area: str = "62/23456",
    items: list[dict[str, Any]] | None = None,
    assets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a bundle document (data, not yet signed)."""
    return {
        "bundle": 1,
        "publisher": key.key_id,
        "version": version,
        "issued": ISSUED,
        "area": area,
        "items": items
        if items is not None
        else [{"id": "tb", "template": "announcement", "fields": {"title": "Giả", "body": "x"}}],
        "assets": assets or {},
    }


def signed(key: PrivateKey, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``doc`` signed by ``key`` as the envelope object a message embeds."""
    envelope: dict[str, Any] = json.loads(key.sign(bundle_to_json(doc)))
    return envelope


def photo_bundle(key: PrivateKey, version: int, name: str, data: bytes, media: str) -> bytes:
    """Return a signed bundle whose one item shows image ``data`` as asset ``name``."""
    item = {
        "id": "anh",
        "template": "news-photo",
        "fields": {"title": "Ảnh", "image": name, "caption": "Chú thích"},
    }
    ref = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "media_type": media}
    return key.sign(bundle_to_json(bundle(key, version, items=[item], assets={name: ref})))


def alert(key: PrivateKey, seq: int, area: str = "62/23456") -> bytes:
    now = datetime.now(TZ).replace(microsecond=0)
    return alert_document(
        publisher=key.key_id,
        seq=seq,
        identifier=f"bao-{seq}",
        headline="Bão số 9 đổ bộ: cấm ra khỏi nhà",
        description="Gió giật cấp 12.",
        severity="Extreme",
        expires=now + timedelta(hours=6),
        sent=now,
        area=area,
    )


def text_frame(kind: str, ident: str, **fields: Any) -> str:
    return json.dumps({"v": 1, "type": kind, "id": ident, **fields}, ensure_ascii=False)


@functools.cache
def bomb_png(side: int = 20_000) -> bytes:
    """Return a real decompression bomb: a 1-bit greyscale PNG of side x side pixels (400
    megapixels, 50 MB of pixel rows) in about 50 KB."""
    row = b"\0" * (1 + side // 8)  # filter byte, then the packed bits of one row
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


# -- raw clients at the hub ---------------------------------------------------------------------


async def raw_client(rig: Rig, board_id: str) -> ClientConnection:
    """Connect to /board with ``board_id``'s token, say hello and wait to be synced."""
    ws = await connect(
        f"{rig.url}/board",
        additional_headers={"Authorization": f"Bearer {rig.tokens[board_id]}"},
        max_size=None,
    )
    await ws.send(text_frame("hello", "r0", board=board_id, software="x", held={}, assets=[]))
    async with asyncio.timeout(5):
        while json.loads(await ws.recv()).get("type") != "synced":
            pass
    return ws


async def answer(ws: ClientConnection, ref: str) -> dict[str, Any]:
    """Return the hub's ack of ``ref`` (other frames are skipped)."""
    async with asyncio.timeout(5):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "ack" and message.get("ref") == ref:
                return dict(message)


async def closed_with(ws: ClientConnection) -> int | None:
    """Wait for the connection to close (reading what is left); return the close code."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    return ws.close_code


# == 1. signatures, scope, versions ==============================================================


def test_a_forged_signature_is_signature_invalid(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            stranger = PrivateKey.generate("tinh-62", "62")  # the province's id, not its key
            forged = signed(stranger, bundle(stranger, 200))
            ack = await s.push("bundle", {"signed": forged})
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_INVALID
            # The province's real signature over other bytes: the payload was swapped.
            genuine = signed(s.province, bundle(s.province, 201))
            genuine["payload"] = forged["payload"]
            ack = await s.push("bundle", {"signed": genuine})
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_INVALID
            # The hub refuses it too, before storing or relaying anything.
            async with s.rig.publisher("tinh-62") as client:
                with pytest.raises(HubError) as refused:
                    await client.push_bundle(
                        stranger.sign(bundle_to_json(bundle(stranger, 202))), tmp_path
                    )
            assert refused.value.code is E.SIGNATURE_INVALID
            # The province learns of the refusals from the board's reports.
            events = s.rig.hub.registry.recent_events
            await until(
                lambda: (
                    len([e for e in events("victim", 50) if e["kind"] == "bundle_refused"]) >= 2
                ),
                5,
            )
            codes = {
                e["data"]["error"]["code"]
                for e in events("victim", 50)
                if e["kind"] == "bundle_refused"
            }
            assert codes == {"signature.invalid"}
            await s.unharmed()

    run(scenario())


def test_a_key_outside_its_area_is_signature_out_of_scope(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            # xa-11111 is trusted, but only for commune 62/11111; the victim is in 62/23456.
            ack = await s.push("bundle", {"signed": signed(s.commune, bundle(s.commune, 5))})
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_OUT_OF_SCOPE
            whole = signed(s.commune, bundle(s.commune, 6, area="62"))  # the whole province
            ack = await s.push("bundle", {"signed": whole})
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_OUT_OF_SCOPE
            envelope = json.loads(s.commune.sign(alert(s.commune, 7)))
            ack = await s.push("alert", {"signed": envelope})
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_OUT_OF_SCOPE
            async with s.rig.publisher("xa-11111") as client:
                with pytest.raises(HubError) as refused:
                    await client.push_bundle(
                        s.commune.sign(bundle_to_json(bundle(s.commune, 8))), tmp_path
                    )
            assert refused.value.code is E.SIGNATURE_OUT_OF_SCOPE
            assert s.victim.sync.held()["seq"] == {}
            await s.unharmed()

    run(scenario())


def test_a_rollback_to_an_older_version_is_version_not_newer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            for version in (99, 100, 1):  # older, the same again (a replay), much older
                old = signed(s.province, bundle(s.province, version))
                ack = await s.push("bundle", {"signed": old})
                assert not ack.ok and ack.error, version
                assert ack.error["code"] == E.BUNDLE_VERSION_NOT_NEWER, version
            async with s.rig.publisher("tinh-62") as client:
                with pytest.raises(HubError) as refused:
                    older = s.province.sign(bundle_to_json(bundle(s.province, 50)))
                    await client.push_bundle(older, tmp_path)
            assert refused.value.code is E.BUNDLE_VERSION_NOT_NEWER
            # After a reconnect the hub offers nothing older either.
            await s.channel.ws.close()
            await until(lambda: s.victim.link.stats.connects >= 2, 5)
            await wait_online(s.rig, "victim")
            await s.unharmed()

    run(scenario())


def test_an_unsigned_alert_or_command_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            doc = alert(s.province, 10)
            # Signed, but by a key the board does not trust.
            rogue = PrivateKey.generate("ke-gian", "")
            ack = await s.push("alert", {"signed": json.loads(rogue.sign(doc))})
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_UNKNOWN_KEY
            # The province's key id with no valid signature.
            payload = base64.b64encode(doc).decode()
            unsigned = {"v": 1, "key": "tinh-62", "payload": payload, "sig": ""}
            ack = await s.push("alert", {"signed": unsigned})
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_INVALID
            # An envelope whose payload is the plain document, not base64.
            plain = {"v": 1, "key": "tinh-62", "payload": doc.decode(), "sig": ""}
            ack = await s.push("alert", {"signed": plain})
            assert not ack.ok and ack.error and ack.error["code"] == E.BUNDLE_MALFORMED
            # No envelope at all: the bare document where the envelope belongs, or no sig.
            bare = text_frame("alert", "x1", signed=json.loads(doc))
            reply = await s.raw(bare, "x1")
            assert reply and reply["error"]["code"] == E.MESSAGE_MALFORMED
            nosig = text_frame("alert", "x2", signed={"v": 1, "key": "tinh-62", "payload": payload})
            reply = await s.raw(nosig, "x2")
            assert reply and reply["error"]["code"] == E.MESSAGE_MALFORMED
            # A screen-changing command without its signature.
            reply = await s.raw(text_frame("command", "x3", name="blank"), "x3")
            assert reply and reply["error"]["code"] == E.MESSAGE_MALFORMED
            blank = command_document(
                publisher="tinh-62", seq=11, name="blank", area="62/23456", issued=datetime.now(TZ)
            )
            ack = await s.push(
                "command", {"name": "blank", "signed": json.loads(rogue.sign(blank))}
            )
            assert not ack.ok and ack.error and ack.error["code"] == E.SIGNATURE_UNKNOWN_KEY
            assert s.victim.sync.held()["seq"] == {}  # no seq was spent
            # The hub: another publisher's key through this token, a forged signature.
            async with s.rig.publisher("tinh-62") as client:
                with pytest.raises(HubError) as forbidden:
                    await client.publish("alert", rogue.sign(doc))
                assert forbidden.value.code is E.AUTH_FORBIDDEN
                stranger = PrivateKey.generate("tinh-62", "62")
                with pytest.raises(HubError) as forged:
                    await client.publish("alert", stranger.sign(doc))
                assert forged.value.code is E.SIGNATURE_INVALID
            assert s.rig.hub.snapshot()["alerts"] == []
            await s.unharmed()

    run(scenario())


# == 2. assets =================================================================================


def one_image_example(s: Scene, out: Path) -> tuple[bytes, str, bytes]:
    """Build and sign the one-image example as the province's version 300 into ``out``;
    return its envelope, its asset's sha256 and the asset's bytes."""
    envelope = signed_example(s.province, out, 300)
    (sha,) = [p.name for p in (out / "assets").iterdir()]
    return envelope, sha, (out / "assets" / sha).read_bytes()


def test_asset_bytes_that_do_not_match_the_hash_are_asset_hash_mismatch(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            out = tmp_path / "built"
            envelope, sha, good = one_image_example(s, out)
            # The hub's copy was swapped for other bytes of the same size (a hub taken over,
            # or its disk): the hub serves them, the board checks them.
            (s.rig.hub.assets_dir / sha).write_bytes(bytes(b ^ 0x5A for b in good))
            async with s.rig.publisher("tinh-62") as client:
                result = await client.push_bundle(envelope, out / "assets", wait_s=10)
            assert refusal(result) == E.ASSET_HASH_MISMATCH
            store = s.victim.sync.store
            assert not (store.assets / sha).exists()
            assert not (store.partial / sha).exists(), "the bad download is deleted"
            await s.unharmed()

    run(scenario())


def test_a_board_gets_only_assets_its_area_publishes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            del s.rig.hub.asset_for  # the real hub's rule, not the taken-over hub's
            out = tmp_path / "built"
            envelope = signed_example(s.neighbour, out, 300, area="62/99999")
            async with s.rig.publisher("xa-99999") as client:
                result = await client.push_bundle(envelope, out / "assets", wait_s=10)
            assert outcomes(result) == {"bystander": "applied"}
            sha = next(p.name for p in (out / "assets").iterdir())
            assert (s.bystander.sync.store.assets / sha).is_file()
            # A board token of another area (or a guess of a hash) gets nothing: the hub holds
            # the asset, but no bundle for 63/1 names it.
            ws = await raw_client(s.rig, "raw1")
            try:
                unpublished = hashlib.sha256(b"never published").hexdigest()
                for n, wanted in enumerate((sha, unpublished)):
                    await ws.send(text_frame("get_asset", f"g{n}", sha256=wanted, offset=0))
                    reply = await answer(ws, f"g{n}")
                    assert reply["ok"] is False
                    assert reply["error"]["code"] == E.ASSET_MISSING
            finally:
                await ws.close()
            await s.unharmed()

    run(scenario())


def test_an_asset_larger_than_declared_is_asset_size_mismatch(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            out = tmp_path / "built"
            envelope, sha, good = one_image_example(s, out)
            (s.rig.hub.assets_dir / sha).write_bytes(good + b"\0" * 4096)
            # The reference hub would not publish it (its size is checked there too), so it
            # comes straight through the victim's connection, as from a hub taken over.
            ack = await asyncio.wait_for(s.channel.deliver("bundle", "tinh-62@300", envelope), 10)
            assert not ack.ok and ack.error and ack.error["code"] == E.ASSET_SIZE_MISMATCH
            store = s.victim.sync.store
            assert not (store.assets / sha).exists()
            assert store.partial_size(sha) == 0
            await s.unharmed()

    run(scenario())


@pytest.mark.parametrize(
    ("image", "code"),
    [
        ("bomb", E.ASSET_IMAGE_TOO_LARGE),
        ("truncated", E.ASSET_IMAGE_BROKEN),
    ],
)
def test_images_that_would_not_decode_safely_are_refused(
    tmp_path: Path, image: str, code: ErrorCode
) -> None:
    if image == "bomb":
        name, media, data = "bom.png", "image/png", bomb_png()
        assert len(data) < 200_000  # 400 megapixels in a small file
    else:
        photo = (REPO / "examples" / "xa-sa-thay" / "dong-lua.jpg").read_bytes()
        name, media, data = "cut.jpg", "image/jpeg", photo[: len(photo) // 2]

    async def scenario() -> None:
        async with scene(tmp_path) as s:
            assets = tmp_path / "assets"
            assets.mkdir()
            (assets / hashlib.sha256(data).hexdigest()).write_bytes(data)
            envelope = photo_bundle(s.province, 300, name, data, media)
            async with s.rig.publisher("tinh-62") as client:
                result = await client.push_bundle(envelope, assets, wait_s=20)
            assert refusal(result) == code
            await s.unharmed()

    run(scenario())


# == 3. names that try to leave the store ========================================================

TRAVERSAL = ["../../etc/passwd", "/etc/passwd", "..", "a/b.jpg", "..\\..\\boot.ini", ".hidden"]


def test_path_traversal_names_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            sha = hashlib.sha256(b"x").hexdigest()
            ref = {"sha256": sha, "size": 1, "media_type": "image/png"}
            version = 200
            for name in TRAVERSAL:
                item = {
                    "id": "anh",
                    "template": "fullscreen-image",
                    "fields": {"image": name},
                }
                # The name in the manifest: the document is malformed.
                version += 1
                doc = bundle(s.province, version, items=[item], assets={name: ref})
                ack = await s.push("bundle", {"signed": signed(s.province, doc)})
                assert not ack.ok and ack.error, name
                assert ack.error["code"] == E.BUNDLE_MALFORMED, name
                assert f"assets.{name}:" in ack.error["message"], ack.error
                # Only in the image field: it names no asset of the manifest.
                version += 1
                doc = bundle(s.province, version, items=[item], assets={"anh.png": ref})
                ack = await s.push("bundle", {"signed": signed(s.province, doc)})
                assert not ack.ok and ack.error, name
                assert ack.error["code"] == E.CONTENT_INVALID, name
                assert ack.error.get("path") == "items[0].fields.image", ack.error
            # A hash that is a path.
            for digest in ("../../../../etc/passwd", "../" * 21 + "a", sha.upper()):
                version += 1
                bad = {"anh.png": {**ref, "sha256": digest}}
                doc = bundle(s.province, version, items=[], assets=bad)
                ack = await s.push("bundle", {"signed": signed(s.province, doc)})
                assert not ack.ok and ack.error and ack.error["code"] == E.BUNDLE_MALFORMED
            # A board asking the hub for a file by a path instead of a hash.
            ws = await raw_client(s.rig, "raw1")
            try:
                for n, digest in enumerate(["../registry.sqlite", "../../etc/passwd" + "a" * 48]):
                    await ws.send(text_frame("get_asset", f"g{n}", sha256=digest, offset=0))
                    reply = await answer(ws, f"g{n}")
                    assert reply["error"]["code"] == E.MESSAGE_MALFORMED
            finally:
                await ws.close()
            status, _, _ = await asyncio.to_thread(
                s.rig.get, "/screenshots/..%2F..%2Fhub%2Fregistry.png", s.rig.operator
            )
            assert status == 404
            # Nothing was written anywhere but the store, and nothing was staged.
            assert not any(p.name in ("passwd", "boot.ini") for p in tmp_path.rglob("*"))
            staged = sorted((s.victim.sync.store.bundles / "tinh-62").iterdir())
            assert [p.name for p in staged] == ["100"]
            await s.unharmed()

    run(scenario())


# == 4. frames too large, too deep, not Unicode, of unknown types ================================


def test_a_100_mb_message_closes_only_its_own_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            # At the hub: a board sends 100 MB. The WebSocket layer stops reading at the
            # largest frame a board ever sends (a control message or a screenshot chunk, about
            # 1 MiB, after inflating: the frame is compressed) and closes with 1009.
            ws = await raw_client(s.rig, "raw1")
            with contextlib.suppress(ConnectionClosed):
                await ws.send("x" * (100 * MIB))
            assert await closed_with(ws) == 1009
            # So does 2 MiB (publishers may send 24 MiB bundles; boards may not pin that much
            # at the hub). The next connection of the same token is served as usual.
            ws = await raw_client(s.rig, "raw1")
            with contextlib.suppress(ConnectionClosed):
                await ws.send(text_frame("heartbeat", "big", status={"pad": "x" * (2 * MIB)}))
            assert await closed_with(ws) == 1009
            ws = await raw_client(s.rig, "raw1")
            try:
                await ws.send(text_frame("heartbeat", "ok", status={}))
                assert (await answer(ws, "ok"))["ok"] is True
            finally:
                await ws.close()
            # At the board: the hub sends 100 MB. The board closes with 1009 and dials again.
            connects = s.victim.link.stats.connects
            with contextlib.suppress(ConnectionClosed):
                await s.raw("y" * (100 * MIB))
            await until(lambda: s.victim.link.stats.connects > connects, 10)
            assert "1009" in (s.victim.link.stats.last_disconnect_reason or "")
            await wait_online(s.rig, "victim")
            # Within the limit: a 2 MiB alert is too large for anything but a bundle.
            padded = text_frame(
                "alert", "big", signed={"v": 1, "key": "k", "payload": "x" * (2 * MIB), "sig": ""}
            )
            reply = await s.raw(padded, "big")
            assert reply and reply["error"]["code"] == E.MESSAGE_TOO_LARGE
            await s.unharmed()

    run(scenario())


def test_deeply_nested_json_is_message_malformed(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    deep_objects = '{"a":' * 100_000 + "1" + "}" * 100_000

    async def scenario() -> None:
        async with scene(tmp_path) as s:
            counters = s.rig.hub.counters
            ws = await raw_client(s.rig, "raw1")
            try:
                before = counters["fault:message.malformed"]
                for nested in (deep, deep_objects):
                    await ws.send('{"v":1,"type":"heartbeat","id":"n1","status":' + nested + "}")
                await ws.send(text_frame("heartbeat", "after", status={}))
                assert (await answer(ws, "after"))["ok"] is True
                assert counters["fault:message.malformed"] == before + 2
                # Deep, but within what the parser takes: stored and shown without harm.
                nested = '{"a":' * 900 + "1" + "}" * 900
                await ws.send('{"v":1,"type":"heartbeat","id":"n2","status":' + nested + "}")
                assert (await answer(ws, "n2"))["ok"] is True
                await s.rig.hub._flush()  # the registry write of what boards said
                status, _, body = await asyncio.to_thread(s.rig.get, "/api/boards", s.rig.operator)
                assert status == 200 and json.loads(body)["boards"]
            finally:
                await ws.close()
            # At the board, in a message and inside a signed document.
            unplanned = s.unplanned()
            await s.raw('{"v":1,"type":"alert","id":"n3","signed":' + deep + "}")
            await until(lambda: "nested too deeply" in (s.victim.link.stats.last_error or ""))
            doc = '{"bundle":1,"publisher":"tinh-62","version":200,"items":' + deep + "}"
            ack = await s.push("bundle", {"signed": json.loads(s.province.sign(doc.encode()))})
            assert not ack.ok and ack.error and ack.error["code"] == E.BUNDLE_MALFORMED
            assert "nested too deeply" in ack.error["message"]
            assert s.unplanned() == unplanned, "the link dropped other than to resync"
            await s.unharmed()

    run(scenario())


def test_invalid_utf8_closes_the_connection_and_nothing_else(tmp_path: Path) -> None:
    bad = b'{"v":1,"type":"heartbeat","id":"u1","status":{"x":"\xc3\x28 \xff"}}'

    async def scenario() -> None:
        async with scene(tmp_path) as s:
            # The WebSocket layer checks text frames and closes with 1007 (invalid data).
            ws = await raw_client(s.rig, "raw1")
            await ws.send(bad, text=True)
            assert await closed_with(ws) == 1007
            connects = s.victim.link.stats.connects
            await s.channel.ws.send(bad, text=True)
            await until(lambda: s.victim.link.stats.connects > connects, 10)
            assert "1007" in (s.victim.link.stats.last_disconnect_reason or "")
            await wait_online(s.rig, "victim")
            # Valid UTF-8 that is not Unicode text: an escaped half of a surrogate pair. It would
            # poison whatever is written from it (acks, the journal, the registry).
            ws = await raw_client(s.rig, "raw1")
            try:
                status = '{"v":1,"type":"heartbeat","id":"u2","status":{"\\udc80":"\\ud800"}}'
                await ws.send(status)
                assert (await answer(ws, "u2"))["error"]["code"] == E.MESSAGE_MALFORMED
                held = text_frame("hello", "u3", board="raw1", software="s", held={}, assets=[])
                held = held.replace('"held": {}', '"held": {"\\udc80": 1}')
                await ws.send(held)
                assert (await answer(ws, "u3"))["error"]["code"] == E.MESSAGE_MALFORMED
            finally:
                await ws.close()
            unplanned = s.unplanned()
            reply = await s.raw(held.replace("u3", "u4"), "u4")
            assert reply and reply["error"]["code"] == E.MESSAGE_MALFORMED
            welcome = (
                '{"v":1,"type":"welcome","id":"u5","session":"\\ud800","heartbeat_s":30,"time":"t"}'
            )
            reply = await s.raw(welcome, "u5")
            assert reply and reply["error"]["code"] == E.MESSAGE_MALFORMED
            # Signed by the province itself (a hub that relays without checking): refused
            # whole, so the refusal's text, the journal and the report stay Unicode.
            doc = json.dumps({**bundle(s.province, 200), "\udc80": 1}).encode()
            ack = await s.push("bundle", {"signed": json.loads(s.province.sign(doc))})
            assert not ack.ok and ack.error and ack.error["code"] == E.BUNDLE_MALFORMED
            assert s.unplanned() == unplanned, "the link dropped other than to resync"
            await s.rig.hub._flush()  # the registry's write of what boards said
            await s.unharmed()

    run(scenario())


def test_a_hub_speaking_broken_unicode_cannot_stop_the_link(tmp_path: Path) -> None:
    """A hub the board cannot trust names its session with an escaped half surrogate (the real
    hub could not send it): the board refuses it, and keeps dialling."""
    key = PrivateKey.generate("tinh-62", "62")
    hellos: list[str] = []
    answers: list[dict[str, Any]] = []

    async def hostile(ws: ServerConnection) -> None:
        hellos.append(str(await ws.recv()))
        await ws.send(
            '{"v":1,"type":"welcome","id":"h1","session":"\\ud800","heartbeat_s":5,"time":"t"}'
        )
        await ws.send('{"v":1,"type":"synced","id":"h2"}')
        with contextlib.suppress(TimeoutError, ConnectionClosed):
            async with asyncio.timeout(0.5):
                async for frame in ws:
                    answers.append(json.loads(frame))
        await ws.close()

    async def scenario() -> None:
        board = make_board(tmp_path / "board", "ws://127.0.0.1:9/none", Trust([key.public()]))
        board.sync.offer_bundle(signed_text_bundle(key, 100, GOOD), "offline")
        board.sync.settle()
        before = board.sync.programme()
        async with serve(hostile, "127.0.0.1", 0) as server:
            board.link.url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/board"
            await board.start()
            try:
                await until(lambda: len(hellos) >= 2, 10)
                assert board.task is not None and not board.task.done(), "the link stopped"
            finally:
                await board.stop()
        codes = [a["error"]["code"] for a in answers if a.get("ref") == "h1"]
        assert codes and set(codes) == {"message.malformed"}, answers
        assert board.sync.programme() == before

    run(scenario())


def test_unknown_message_types_are_message_unknown_type(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            ws = await raw_client(s.rig, "raw1")
            try:
                for n, kind in enumerate(["frobnicate", "publish", "missing", "", "HELLO", "ack "]):
                    await ws.send(text_frame(kind, f"t{n}"))
                    reply = await answer(ws, f"t{n}")
                    assert reply["error"]["code"] == E.MESSAGE_UNKNOWN_TYPE, kind
                # Known types a board may not send are refused as out of place.
                await ws.send(
                    text_frame(
                        "bundle", "t9", signed={"v": 1, "key": "k", "payload": "", "sig": ""}
                    )
                )
                assert (await answer(ws, "t9"))["error"]["code"] == E.SESSION_UNEXPECTED
            finally:
                await ws.close()
            for n, kind in enumerate(["frobnicate", "missing", "boards", "screenshot"]):
                reply = await s.raw(text_frame(kind, f"k{n}"), f"k{n}")
                assert reply and reply["error"]["code"] == E.MESSAGE_UNKNOWN_TYPE, kind
            hello = text_frame("hello", "k9", board="victim", software="x", held={}, assets=[])
            reply = await s.raw(hello, "k9")
            assert reply and reply["error"]["code"] == E.SESSION_UNEXPECTED
            reply = await s.raw(text_frame("command", "k10", name="format-disk"), "k10")
            assert reply and reply["error"]["code"] == E.COMMAND_UNKNOWN
            await s.unharmed()

    run(scenario())


# == 5. floods, slow clients, a token used twice ================================================


async def flood(ws: ClientConnection, frames: int) -> dict[str, dict[str, Any]]:
    """Send ``frames`` heartbeats as fast as the socket takes them, reading the answers
    meanwhile (or both ends block on full buffers); return the acks by ref once the hub has
    closed the connection."""
    replies: dict[str, dict[str, Any]] = {}

    async def reading() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                reply = json.loads(frame)
                if reply.get("type") == "ack":
                    replies[reply["ref"]] = reply

    reader = asyncio.create_task(reading())
    with contextlib.suppress(ConnectionClosed):
        for n in range(frames):
            await ws.send(text_frame("heartbeat", f"f{n}", status={"n": n}))
    await asyncio.wait_for(reader, 5)
    return replies


def test_a_flood_is_rate_limited_per_connection_and_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            flooder = await raw_client(s.rig, "raw1")
            calm = await raw_client(s.rig, "raw2")

            async def calmly() -> int:
                for n in range(300):  # within another connection's burst: all welcome
                    await calm.send(text_frame("heartbeat", f"c{n}", status={}))
                return sum([(await answer(calm, f"c{n}"))["ok"] for n in range(300)])

            started = asyncio.get_running_loop().time()
            replies, calm_ok, _ = await asyncio.gather(flood(flooder, 3000), calmly(), s.unharmed())
            assert calm_ok == 300
            limited = [r for r in replies.values() if not r["ok"]]
            assert {r["error"]["code"] for r in limited} == {"message.rate_limited"}
            assert len(limited) == 101  # past 100 faults the session is closed ...
            assert flooder.close_code == 1008  # ... and the socket, at once
            assert asyncio.get_running_loop().time() - started < 5
            assert all(replies[f"f{n}"]["ok"] for n in range(400))  # the burst passed
            assert s.rig.hub.counters["fault:message.rate_limited"] == 101  # then ignored
            await until(lambda: "raw1" not in s.rig.hub.channels, 2)
            await calm.close()
            await s.unharmed()

    run(scenario())


REQUEST = (
    b"GET /board HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
)


async def slowloris(port: int, data: bytes) -> float:
    """Send ``data`` a byte every 0.1 s (or nothing); return how long until the hub hung up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = asyncio.get_running_loop().time()
    try:
        for byte in data:
            if reader.at_eof():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)
        async with asyncio.timeout(10):
            await reader.read()
    except ConnectionError:
        pass
    finally:
        writer.close()
    return asyncio.get_running_loop().time() - started


async def deaf(port: int, token: str, opened: list[asyncio.StreamWriter]) -> tuple[float, int]:
    """Open a WebSocket with a board's token, then never speak and never answer (the socket
    goes into ``opened``, to be dropped); return how long until the hub's close frame came,
    and its code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.append(writer)
    key = base64.b64encode(hashlib.sha256(token.encode()).digest()[:16]).decode()
    headers = f"Sec-WebSocket-Key: {key}\r\nAuthorization: Bearer {token}\r\n\r\n"
    writer.write(REQUEST + headers.encode())
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5):
        frame = await reader.readexactly(4)  # a close frame: 0x88, length, code
    assert frame[0] == 0x88, frame
    return asyncio.get_running_loop().time() - started, int.from_bytes(frame[2:4], "big")


def test_slow_handshakes_and_silent_peers_are_cut_without_holding_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    real_serve = signage.hub.server.serve

    def quick_serve(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        kwargs["open_timeout"] = 1.0  # the hub's 20 s, shortened for the test
        return real_serve(*args, **kwargs)

    monkeypatch.setattr(signage.hub.server, "serve", quick_serve)
    monkeypatch.setattr(
        signage.hub.channel, "Limits", functools.partial(Limits, hello_timeout_s=1.0)
    )

    async def scenario() -> None:
        async with scene(tmp_path) as s:
            assert seen["open_timeout"] == 20  # docs/protocol.md §2
            port = s.rig.hub.port
            # Before the upgrade: the request a byte at a time, or nothing at all.
            slow = [slowloris(port, REQUEST) for _ in range(30)]
            silent = [slowloris(port, b"") for _ in range(10)]
            # After it, with a good token: never a hello, and never an answer to the close.
            # The hub's one loop over every session must not wait for them one by one.
            opened: list[asyncio.StreamWriter] = []
            deafs = [deaf(port, s.rig.tokens["raw2"], opened) for _ in range(4)]
            try:
                waits, dropped, _ = await asyncio.gather(
                    asyncio.gather(*slow, *silent), asyncio.gather(*deafs), s.unharmed()
                )
            finally:
                for writer in opened:
                    writer.transport.abort()
            assert all(0.9 <= wait < 5 for wait in waits), waits
            assert all(0.9 <= wait < 4 and code == 1008 for wait, code in dropped), dropped
            # A board that connects meanwhile is served as usual.
            await s.rig.stop_board("bystander")
            await s.rig.start_board("bystander")
            await wait_online(s.rig, "bystander")
            await s.unharmed()

    run(scenario())


class _Longest(Backoff):
    """The longest wait every time: an old link that died unnoticed does not come back soon."""

    def next(self) -> float:
        self.attempt += 1
        return 30.0


def test_one_board_token_used_twice_keeps_the_newer_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with scene(tmp_path) as s:
            s.victim.link.backoff = _Longest(s.victim.link.backoff.rng)
            older = s.channel
            twin = make_board(
                tmp_path / "twin",
                f"{s.rig.url}/board",
                s.rig.trust(),
                token=s.rig.tokens["victim"],
                board_id="victim",
            )
            await twin.start()
            try:
                await until(lambda: twin.link.stats.state == "ready", 5)
                assert s.rig.hub.counters["replaced_connections"] == 1
                assert s.rig.hub.channels["victim"] is not older
                await until(lambda: s.victim.link.stats.state == "offline", 5)
                assert "replaced" in (s.victim.link.stats.last_disconnect_reason or "")
                # The newer connection is served: it catches up with what the victim holds.
                await until(lambda: twin.sync.store.versions() == {"tinh-62": 100}, 5)
                assert set(s.rig.hub.channels) == {"bystander", "victim"}
                await s.unharmed()  # the older keeps playing its last good content
            finally:
                await twin.stop()

    run(scenario())
