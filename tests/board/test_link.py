"""The real link against a real websockets server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

import signage.board.link as link_module
from signage.board.link import Backoff, check_url
from signage.errors import ConfigError, ErrorCode
from signage.hub.channel import BoardChannel
from signage.protocol import Chunk, PrivateKey, Trust
from tests.board.linkkit import (
    TZ,
    FakeCatalog,
    TestHub,
    make_board,
    signed_example,
    signed_text_bundle,
    until,
)


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate("tinh-62", "62")


@pytest.fixture
def trust(key: PrivateKey) -> Trust:
    return Trust([key.public()])


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_board_receives_verifies_and_applies_a_bundle_with_images(
    tmp_path: Path, key: PrivateKey, trust: Trust
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    catalog.put(signed_example(key, tmp_path / "hub", 100))

    async def scenario() -> None:
        async with TestHub(catalog).running() as hub:
            board = make_board(tmp_path / "board", hub.url, trust)
            await board.start()
            await asyncio.wait_for(board.hooks.changed.wait(), 10)
            assert board.sync.store.versions() == {"tinh-62": 100}
            programme = board.sync.programme()
            assert programme.items and all(i.id.startswith("tinh-62/") for i in programme.items)
            assert programme.ticker
            for path in programme.assets.values():
                assert path.is_file()
            # The heartbeat reaches the hub with the board's link statistics.
            await until(lambda: hub.latest().stats.heartbeats)
            status = hub.latest().stats.heartbeats[-1]
            assert status["board"] == "xa-sa-thay-01"
            assert status["link"]["state"] in ("sync", "ready")
            await board.stop()

    run(scenario())


def test_forged_and_rolled_back_bundles_are_refused_and_change_nothing(
    tmp_path: Path, key: PrivateKey, trust: Trust
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    catalog.put(signed_text_bundle(key, 200, "Bản đúng"))
    stranger = PrivateKey.generate("tinh-62", "62")  # same id, different key

    async def scenario() -> None:
        async with TestHub(catalog).running() as hub:
            board = make_board(tmp_path / "board", hub.url, trust)
            await board.start()
            await asyncio.wait_for(board.hooks.changed.wait(), 10)
            channel = hub.latest()
            forged = json.loads(signed_text_bundle(stranger, 300, "Giả mạo"))
            ack = await channel.push("bundle", {"signed": forged})
            assert not ack.ok and ack.error is not None
            assert ack.error["code"] == ErrorCode.SIGNATURE_INVALID
            # A bad signature from a hub that checks signatures means damage on the way: the
            # board dials again so that the next hello has the document sent once more.
            await until(lambda: hub.latest() is not channel)
            channel = hub.latest()
            await asyncio.wait_for(channel.ready.wait(), 10)
            assert board.link.stats.resyncs == 1 and board.link.stats.faults == 1
            assert "signature.invalid" in (board.link.stats.last_disconnect_reason or "")
            old = json.loads(signed_text_bundle(key, 150, "Bản cũ"))
            ack = await channel.push("bundle", {"signed": old})
            assert not ack.ok and ack.error is not None
            assert ack.error["code"] == ErrorCode.BUNDLE_VERSION_NOT_NEWER
            elsewhere = json.loads(signed_text_bundle(key, 400, "Xã khác", area="62/99999"))
            ack = await channel.push("bundle", {"signed": elsewhere})
            assert not ack.ok and ack.error is not None
            assert ack.error["code"] == ErrorCode.AREA_MISMATCH
            assert board.sync.store.versions() == {"tinh-62": 200}
            assert board.hooks.changes == 1
            title = board.sync.programme().items[0].fields["title"]
            assert title == "Bản đúng"
            newer = json.loads(signed_text_bundle(key, 500, "Bản mới"))
            ack = await channel.push("bundle", {"signed": newer})
            assert ack.ok and ack.result == {"publisher": "tinh-62", "version": 500}
            await board.stop()

    run(scenario())


class DroppingChannel(BoardChannel):
    """Sends 16 KiB chunks and cuts the connection after a few, the first two times."""

    drops = 0
    asked: ClassVar[list[tuple[str, int]]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, chunk_bytes=16 * 1024, **kwargs)  # type: ignore[arg-type]
        self.stats.asked = DroppingChannel.asked
        self.cut = False

    async def send_chunk(self, chunk: Chunk) -> None:
        if self.cut:
            return
        if DroppingChannel.drops < 2 and self.stats.chunks_sent >= 3:
            DroppingChannel.drops += 1
            self.cut = True
            self.ws.transport.abort()  # the TCP connection dies mid-asset, no close frame
            return
        await super().send_chunk(chunk)


def test_a_transfer_cut_mid_asset_resumes_and_applies_once(
    tmp_path: Path, key: PrivateKey, trust: Trust
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    catalog.put(signed_example(key, tmp_path / "hub", 100))
    DroppingChannel.drops = 0
    DroppingChannel.asked = []

    async def scenario() -> None:
        async with TestHub(catalog, DroppingChannel).running() as hub:
            board = make_board(tmp_path / "board", hub.url, trust)
            await board.start()
            await asyncio.wait_for(board.hooks.changed.wait(), 20)
            assert DroppingChannel.drops == 2
            assert board.link.stats.reconnects >= 2
            assert board.sync.store.versions() == {"tinh-62": 100}
            # Resumed, not restarted: later connections asked from where the download stood.
            offsets = [offset for _, offset in DroppingChannel.asked]
            assert offsets[0] == 0 and offsets[1] > 0 and offsets[2] > offsets[1]
            assert board.hooks.changes == 1
            for path in board.sync.programme().assets.values():
                assert path.is_file()
            await until(lambda: board.journal.pending_count() == 0)
            reported = [e["kind"] for c in hub.channels for e in c.stats.reports]
            assert reported.count("disconnected") == 2 and reported.count("bundle_applied") == 1
            await board.stop()

    run(scenario())


class DamagingChannel(BoardChannel):
    """Damages what it sends the first time round, as a plain ws:// line can: a flipped bit
    in a chunk's header (the rest of that asset never comes: the download stalls) or in a
    chunk's data (the asset fails its hash)."""

    damage = "header"
    damaged = 0

    async def send_chunk(self, chunk: Chunk) -> None:
        if DamagingChannel.damaged == 0 and chunk.offset == 0:
            DamagingChannel.damaged += 1
            if DamagingChannel.damage == "header":
                sha = f"{int(chunk.sha256[0], 16) ^ 1:x}" + chunk.sha256[1:]
                await super().send_chunk(Chunk(sha, chunk.offset, chunk.total, chunk.data))
                return  # and the rest of the asset is lost with that connection's stream
            flipped = bytes([chunk.data[0] ^ 0x40]) + chunk.data[1:]
            chunk = Chunk(chunk.sha256, chunk.offset, chunk.total, flipped)
        await super().send_chunk(chunk)


@pytest.mark.parametrize("damage", ["header", "data"])
def test_damage_in_transit_makes_the_board_dial_again_and_the_content_arrives(
    tmp_path: Path, key: PrivateKey, trust: Trust, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_module, "STALL_S", 1.0)  # 120 s on a board
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    catalog.put(signed_example(key, tmp_path / "hub", 100))
    DamagingChannel.damage, DamagingChannel.damaged = damage, 0

    async def scenario() -> None:
        async with TestHub(catalog, DamagingChannel).running() as hub:
            board = make_board(tmp_path / "board", hub.url, trust)
            await board.start()
            await asyncio.wait_for(board.hooks.changed.wait(), 20)
            assert DamagingChannel.damaged == 1
            assert board.sync.store.versions() == {"tinh-62": 100}
            stats = board.link.stats
            assert stats.resyncs == 1 and len(hub.channels) == 2, stats
            expected = "no asset data" if damage == "header" else "asset.hash_mismatch"
            assert expected in (stats.last_disconnect_reason or ""), stats
            assert stats.to_json()["resyncs"] == 1
            await board.stop()

    run(scenario())


def test_backoff_credit_keeps_a_flapping_link_dialling_soon() -> None:
    backoff = Backoff(random.Random(2))
    for _ in range(12):  # up for 45 s, then dropped, again and again
        backoff.next()
        backoff.credit(45.0)
    assert backoff.ceiling() == 1.0
    for _ in range(12):  # a hub that fails within a second of every hello
        backoff.next()
        backoff.credit(0.8)
    assert backoff.ceiling() == 300.0
    backoff.credit(25.0)  # two doublings off, not a reset
    assert backoff.ceiling() == 300.0 and backoff.attempt == 10
    backoff.credit(600.0)
    assert backoff.ceiling() == 1.0


class ShortLivedChannel(BoardChannel):
    """Hangs up as soon as the board is in session, having moved the board's clock on by
    ``up_s`` (how long the connection pretends to have lasted)."""

    up_s = 0.0
    clock: ClassVar[list[float]] = [0.0]

    async def run(self) -> None:
        async def hang_up() -> None:
            await until(lambda: self.stats.heartbeats)  # the board has had its welcome
            ShortLivedChannel.clock[0] += ShortLivedChannel.up_s
            self.ws.transport.abort()

        task = asyncio.create_task(hang_up())
        try:
            await super().run()
        finally:
            task.cancel()


@pytest.mark.parametrize(("up_s", "settles"), [(45.0, True), (0.0, False)])
def test_the_link_credits_time_up_against_its_backoff(
    tmp_path: Path, key: PrivateKey, trust: Trust, up_s: float, settles: bool
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    ShortLivedChannel.up_s, ShortLivedChannel.clock = up_s, [0.0]

    async def scenario() -> None:
        async with TestHub(catalog, ShortLivedChannel).running() as hub:
            board = make_board(
                tmp_path / "board", hub.url, trust, clock=lambda: ShortLivedChannel.clock[0]
            )
            await board.start()
            await until(lambda: len(hub.channels) >= 5, 20)
            await board.stop()
            if settles:  # each 45 s up pays for its drop: the waits stay at the base
                assert board.link.backoff.attempt <= 1
            else:
                assert board.link.backoff.attempt >= 4

    run(scenario())


def test_wrong_token_is_refused_and_the_board_backs_off(
    tmp_path: Path, key: PrivateKey, trust: Trust
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")

    async def scenario() -> None:
        async with TestHub(catalog).running() as hub:
            board = make_board(tmp_path / "board", hub.url, trust, token="wrong")
            await board.start()
            await until(lambda: hub.refused >= 2)
            assert not hub.channels
            assert "401" in (board.link.stats.last_error or "")
            await board.stop()

    run(scenario())


def test_reports_leave_the_outbox_only_when_acknowledged(
    tmp_path: Path, key: PrivateKey, trust: Trust
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")

    async def scenario() -> None:
        board = make_board(tmp_path / "board", "ws://127.0.0.1:9/none", trust)
        from datetime import datetime, timedelta

        from tests.board.linkkit import TZ

        start = datetime(2026, 11, 26, 8, 0, tzinfo=TZ)
        for n in range(1200):  # days offline: more than two report batches
            row = board.journal.start(f"i{n}", "announcement", "scheduled", start, start)
            board.journal.end(row, start + timedelta(seconds=10))
        assert board.journal.pending_count() == 1200
        async with TestHub(catalog).running() as hub:
            board.link.url = hub.url
            await board.start()
            await until(lambda: board.journal.pending_count() <= 1)  # "connected" may be new
            seqs = [entry["seq"] for entry in hub.latest().stats.reports]
            plays = [e for e in hub.latest().stats.reports if e["kind"] == "play"]
            assert len(plays) == 1200 and len(set(seqs)) == len(seqs)
            assert plays[0]["data"]["seconds"] == 10.0
            await board.stop()

    run(scenario())


def test_play_reports_wait_to_travel_together_and_events_do_not(
    tmp_path: Path, key: PrivateKey, trust: Trust
) -> None:
    """With report_hold_s, plays wait (up to the hold, or until REPORT_EAGER_ENTRIES) to go
    in one batch; the backlog at connecting and events go at once."""
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    clock = [0.0]
    start = datetime(2026, 11, 26, 8, 0, tzinfo=TZ)

    async def scenario() -> None:
        board = make_board(
            tmp_path / "board", "ws://127.0.0.1:9/none", trust, clock=lambda: clock[0],
            report_hold_s=30.0,
        )  # fmt: skip
        journal = board.journal

        def play(n: int) -> None:
            row = journal.start(f"i{n}", "announcement", "scheduled", start, start)
            journal.end(row, start + timedelta(seconds=10))

        def batches() -> list[int]:  # entries per report message, in order
            return [size for channel in hub.channels for size in channel.stats.batches]

        play(0)  # from before the connection: goes with the first batch
        async with TestHub(catalog).running() as hub:
            board.link.url = hub.url
            await board.start()
            await until(lambda: journal.pending_count() == 0)
            first = len(batches())
            for n in (1, 2, 3):  # three 10-second slides
                play(n)
                clock[0] += 10.0
                await asyncio.sleep(1.5)  # the link looks every second
                if n < 3:
                    assert journal.pending_count() == n, "a play went alone"
            assert journal.pending_count() == 3
            clock[0] += 10.0  # the first has waited 30 s since the link saw it
            await until(lambda: journal.pending_count() == 0)  # the three go together
            assert batches()[first:] == [3]
            journal.event("bundle_refused", start, error={"code": "x"})
            await until(lambda: journal.pending_count() == 0)  # an event does not wait
            for n in range(4, 4 + link_module.REPORT_EAGER_ENTRIES):
                play(n)
            await until(lambda: journal.pending_count() == 0)  # nor does a backlog
            assert batches()[-1] == link_module.REPORT_EAGER_ENTRIES
            await board.stop()

    run(scenario())


def test_alerts_and_signed_commands_over_the_link(
    tmp_path: Path, key: PrivateKey, trust: Trust
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")
    catalog.put(signed_text_bundle(key, 200, "Thông báo"))

    def alert(
        seq: int, identifier: str, msg_type: str = "Alert", refs: list[str] | None = None
    ) -> dict[str, object]:
        doc = {
            "alert": 1,
            "publisher": "tinh-62",
            "seq": seq,
            "identifier": identifier,
            "sent": "2026-11-26T17:00:00+07:00",
            "status": "Actual",
            "msgType": msg_type,
            "references": refs or [],
            "urgency": "Immediate",
            "severity": "Extreme",
            "certainty": "Observed",
            "expires": "2099-01-01T00:00:00+07:00",
            "headline": "Bão số 9 đổ bộ",
            "description": "Người dân không ra khỏi nhà.",
            "area": "62",
        }
        return json.loads(key.sign(json.dumps(doc, ensure_ascii=False).encode()))

    def command(seq: int, name: str) -> dict[str, object]:
        doc = {
            "command": 1,
            "publisher": "tinh-62",
            "seq": seq,
            "issued": "2026-11-26T17:05:00+07:00",
            "area": "62/23456",
            "name": name,
            "args": {},
        }
        return json.loads(key.sign(json.dumps(doc).encode()))

    async def scenario() -> None:
        async with TestHub(catalog).running() as hub:
            board = make_board(tmp_path / "board", hub.url, trust)
            await board.start()
            await asyncio.wait_for(board.hooks.changed.wait(), 10)
            channel = hub.latest()
            ack = await channel.push("alert", {"signed": alert(10, "bao-9")})
            assert ack.ok
            now = datetime.now(TZ)
            assert [i.id for i in board.sync.alert_items(now)] == ["alert:bao-9"]
            replay = await channel.push("alert", {"signed": alert(10, "bao-9")})
            assert not replay.ok and replay.error
            assert replay.error["code"] == ErrorCode.COMMAND_NOT_NEWER
            cancel = alert(11, "bao-9-huy", "Cancel", ["bao-9"])
            ack = await channel.push("alert", {"signed": cancel})
            assert ack.ok and board.sync.alert_items(now) == ()
            ack = await channel.push("command", {"name": "blank", "signed": command(12, "blank")})
            assert ack.ok and board.sync.blanked() and board.hooks.commands[-1][0] == "blank"
            replayed = command(12, "unblank")
            ack = await channel.push("command", {"name": "unblank", "signed": replayed})
            assert not ack.ok and board.sync.blanked()  # replayed seq: still blank
            # A fresh signed unblank sent under the name "restart" is refused, and not spent.
            unblank = command(13, "unblank")
            ack = await channel.push("command", {"name": "restart", "signed": unblank})
            assert not ack.ok and ack.error and ack.error["code"] == ErrorCode.COMMAND_INVALID
            assert all(name != "restart" for name, _ in board.hooks.commands)
            ack = await channel.push("command", {"name": "unblank", "signed": unblank})
            assert ack.ok and not board.sync.blanked()
            # Another publisher cannot withdraw this publisher's alert by its identifier.
            assert (await channel.push("alert", {"signed": alert(14, "bao-10")})).ok
            other = PrivateKey.generate("xa-23456", "62/23456")
            board.sync.trust = Trust([key.public(), other.public()])
            doc = {
                "alert": 1,
                "publisher": "xa-23456",
                "seq": 1,
                "identifier": "huy-bao-10",
                "sent": "2026-11-26T17:00:00+07:00",
                "status": "Actual",
                "msgType": "Cancel",
                "references": ["bao-10"],
                "urgency": "Immediate",
                "severity": "Extreme",
                "certainty": "Observed",
                "expires": "2099-01-01T00:00:00+07:00",
                "area": "62/23456",
            }
            foreign = json.loads(other.sign(json.dumps(doc).encode()))
            assert (await channel.push("alert", {"signed": foreign})).ok
            assert [i.id for i in board.sync.alert_items(now)] == ["alert:bao-10"]
            ack = await channel.push("command", {"name": "screenshot"})
            assert ack.ok and ack.result is not None
            shot = ack.result
            await until(lambda: shot["sha256"] in channel.stats.blobs)
            assert len(channel.stats.blobs[shot["sha256"]]) == shot["size"]
            await board.stop()

    from datetime import datetime

    from tests.board.linkkit import TZ

    run(scenario())


def test_backoff_has_full_jitter_and_caps_at_five_minutes() -> None:
    backoff = Backoff(random.Random(1))
    ceilings = []
    for _ in range(20):
        ceilings.append(backoff.ceiling())
        delay = backoff.next()
        assert 0 <= delay <= ceilings[-1]
    assert ceilings[:4] == [1.0, 2.0, 4.0, 8.0] and ceilings[-1] == 300.0
    backoff.reset()
    assert backoff.ceiling() == 1.0
    delays = [Backoff(random.Random(seed)).next() for seed in range(200)]
    assert min(delays) < 0.1 and max(delays) > 0.9  # spread over the whole range


@pytest.mark.parametrize(
    ("url", "insecure", "ok"),
    [
        ("wss://hub.tinh62.gov.vn/board", False, True),
        ("ws://127.0.0.1:8765/board", False, True),
        ("ws://localhost:8765/board", False, True),
        ("ws://[::1]:8765/board", False, True),
        ("ws://10.0.0.5:8765/board", False, False),
        ("ws://10.0.0.5:8765/board", True, True),
        ("http://hub/board", True, False),
        ("wss:///board", False, False),
    ],
)
def test_plain_ws_only_to_loopback_unless_allowed(url: str, insecure: bool, ok: bool) -> None:
    if ok:
        check_url(url, insecure)
    else:
        with pytest.raises(ConfigError):
            check_url(url, insecure)


def test_an_unexpected_error_costs_one_connection_not_the_link(
    tmp_path: Path, trust: Trust
) -> None:
    catalog = FakeCatalog(tmp_path / "hub" / "assets")

    async def scenario() -> None:
        async with TestHub(catalog).running() as hub:
            board = make_board(tmp_path / "board", hub.url, trust)
            real_status = board.hooks.status
            calls = {"n": 0}

            def flaky_status() -> dict[str, object]:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise RuntimeError("a bug in the agent")
                return real_status()

            board.hooks.status = flaky_status  # type: ignore[method-assign]
            await board.start()
            # The first heartbeat blows up inside the session: the link logs it, dials again,
            # and the next session's heartbeats reach the hub.
            await until(lambda: any(c.stats.heartbeats for c in hub.channels), 15)
            assert board.link.stats.reconnects >= 1
            assert "unexpected RuntimeError" in (board.link.stats.last_disconnect_reason or "")
            await board.stop()

    run(scenario())
