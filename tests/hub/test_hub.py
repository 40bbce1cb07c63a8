"""The reference hub with real boards on 127.0.0.1: scoped fan-out, catch-up, tokens, refused
input, reports, alerts, commands, screenshots, the operator's JSON and metrics."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from signage.board.link import Backoff
from signage.errors import ErrorCode, HubError, StoreError
from signage.hub.client import PublisherClient
from signage.hub.publish import alert_document, cancel_document, command_document
from signage.hub.server import Hub, HubConfig
from signage.protocol import MAX_CONTROL_BYTES
from tests.board.linkkit import TZ, make_board, signed_example, signed_text_bundle, until
from tests.hub.hubkit import NOW, Rig, running_hub, wait_online

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def outcomes_of(result: Mapping[str, Any]) -> dict[str, str]:
    return {b["board"]: b["outcome"] for b in result["boards"]}


async def http_get(rig: Rig, path: str, token: str | None = None) -> tuple[int, bytes]:
    status, _, body = await asyncio.to_thread(rig.get, path, token)
    return status, body


# -- a raw board client, to send what a real board never would --------------------------------


async def raw_board(rig: Rig, board_id: str) -> ClientConnection:
    """Connect to /board with ``board_id``'s token and say hello; return once welcomed."""
    ws = await connect(
        f"{rig.url}/board",
        additional_headers={"Authorization": f"Bearer {rig.tokens[board_id]}"},
        max_size=None,
    )
    hello = {"board": board_id, "software": "raw-test", "held": {}, "assets": []}
    await ws.send(json.dumps({"v": 1, "type": "hello", "id": "r0", **hello}))
    while True:  # welcome, then synced (nothing to sync for these boards)
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] == "synced":
            return ws


async def answer_to(ws: ClientConnection, ref: str, timeout: float = 5.0) -> dict[str, Any]:
    """Return the ack answering ``ref`` (skipping other frames)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str):
                message = json.loads(frame)
                if message.get("type") == "ack" and message.get("ref") == ref:
                    return dict(message)


def frame(message_type: str, ident: str, /, **fields: Any) -> str:
    return json.dumps({"v": 1, "type": message_type, "id": ident, **fields})


# -- 1. fan-out and catch-up ---------------------------------------------------------------------


def test_a_commune_publisher_reaches_only_its_own_commune(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path) as rig:
            xa_a = rig.add_publisher("xa-23456", "62/23456")
            xa_b = rig.add_publisher("xa-11111", "62/11111")
            for board_id, area in (("a1", "62/23456"), ("a2", "62/23456"), ("b1", "62/11111")):
                rig.add_board(board_id, area)
                await rig.start_board(board_id)
            await wait_online(rig, "a1", "a2", "b1")
            async with rig.publisher("xa-23456") as client:
                envelope = signed_text_bundle(xa_a, 10, "Thông báo xã", area="62/23456")
                result = await client.push_bundle(envelope, tmp_path, wait_s=10)
            outcomes = {b["board"]: b["outcome"] for b in result["boards"]}
            assert outcomes == {"a1": "applied", "a2": "applied"}
            assert rig.boards["b1"].sync.store.versions() == {}
            # A commune's key cannot publish for another commune, even through its own token.
            async with rig.publisher("xa-11111") as client:
                stray = signed_text_bundle(xa_b, 11, "Sai địa bàn", area="62/23456")
                with pytest.raises(HubError) as refused:
                    await client.push_bundle(stray, tmp_path, wait_s=5)
                assert refused.value.code is ErrorCode.SIGNATURE_OUT_OF_SCOPE
                # ... nor pass on a document signed by someone else.
                borrowed = signed_text_bundle(xa_a, 12, "Mượn khoá", area="62/23456")
                with pytest.raises(HubError) as forbidden:
                    await client.push_bundle(borrowed, tmp_path, wait_s=5)
                assert forbidden.value.code is ErrorCode.AUTH_FORBIDDEN
            assert rig.boards["a1"].sync.store.versions() == {"xa-23456": 10}

    run(scenario())


def test_offline_boards_catch_up_with_bundles_and_their_images(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            tinh = rig.add_publisher("tinh-62", "62")
            for board_id, area in (("k1", "62/23456"), ("k2", "62/11111"), ("k3", "62/23456")):
                rig.add_board(board_id, area)
            await rig.start_board("k1")
            await rig.start_board("k2")
            await wait_online(rig, "k1", "k2")
            async with rig.publisher("tinh-62") as client:
                text = signed_text_bundle(tinh, 10, "Thông báo của tỉnh", area="62")
                result = await client.push_bundle(text, tmp_path, wait_s=10)
            assert outcomes_of(result) == {"k1": "applied", "k2": "applied", "k3": "offline"}
            assert result["summary"] == {"applied": 2, "offline": 1}
            assert rig.boards["k1"].sync.store.versions() == {"tinh-62": 10}

            k3 = await rig.start_board("k3")
            await until(lambda: k3.sync.store.versions() == {"tinh-62": 10}, 5)

            # A bundle with images: its assets go to the hub first, then to every board, and
            # to a board that connects later straight from the hub's store.
            out = tmp_path / "built"
            photos = signed_example(tinh, out, 20, area="62")
            async with rig.publisher("tinh-62") as client:
                result = await client.push_bundle(photos, out / "assets", wait_s=10)
            assert outcomes_of(result) == {"k1": "applied", "k2": "applied", "k3": "applied"}
            hashes = {p.name for p in (out / "assets").iterdir()}
            assert hashes, "the example has images"
            assert hashes <= {p.name for p in rig.hub.assets_dir.iterdir()}

            rig.add_board("k4", "62/99999")
            k4 = await rig.start_board("k4")
            await until(lambda: k4.sync.store.versions() == {"tinh-62": 20}, 5)
            asked = {sha for sha, offset in rig.hub.channels["k4"].stats.asked if offset == 0}
            assert asked == hashes
            assert all((k4.sync.store.assets / sha).is_file() for sha in hashes)
            assert k4.link.stats.assets_received == len(hashes)
            programme = k4.sync.programme()
            assert programme.source == "tinh-62@20"
            assert [i.id for i in programme.items] == [
                i.id for i in rig.boards["k1"].sync.programme().items
            ]
            assert set(programme.assets) == hashes

    run(scenario())


# -- 2. tokens -----------------------------------------------------------------------------------


def test_wrong_tokens_are_refused_everywhere(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            rig.add_publisher("tinh-62", "62")
            rig.add_board("t1", "62/23456")
            rig.add_board("t2", "62/23456")
            good = rig.tokens["t1"]
            kind, ident, secret = good.split(":")
            wrong_secret = f"{kind}:{ident}:{'A' * len(secret)}"
            counters = rig.hub.counters

            # A garbled token and a wrong secret: refused at the handshake, again and again.
            garbled = await rig.start_board("t1", token="garbled-token-0123456789")
            await until(lambda: counters["auth_failures"] >= 2, 5)
            assert garbled.link.stats.connects == 0
            assert "401" in (garbled.link.stats.last_error or "")
            await rig.stop_board("t1")
            before = counters["auth_failures"]
            wrong = await rig.start_board("t1", token=wrong_secret)
            await until(lambda: counters["auth_failures"] >= before + 2, 5)
            assert wrong.link.stats.connects == 0
            assert "t1" not in rig.hub.channels
            await rig.stop_board("t1")

            # A board's token is not a publisher's, and a publisher's needs its own secret.
            for token in (good, rig.tokens["tinh-62"][:-4] + "AAAA", "publisher:tinh-62:"):
                with pytest.raises(HubError) as refused:
                    async with PublisherClient(rig.url, token):
                        pass
                assert refused.value.code is ErrorCode.AUTH_FAILED

            # Board t1's token with hello board "t2": welcomed never; the good t1 is not
            # disturbed by the misconfigured one.
            t1 = await rig.start_board("t1")
            await wait_online(rig, "t1")
            channel = rig.hub.channels["t1"]
            impostor = make_board(
                tmp_path / "impostor", f"{rig.url}/board", rig.trust(), token=good, board_id="t2"
            )
            await impostor.start()
            try:
                await until(lambda: counters["hello_refused"] >= 2, 5)
                assert impostor.link.stats.state != "ready"
                assert "t2" not in rig.hub.channels
                assert "t2" not in rig.hub.live or rig.hub.live["t2"].connected_since is None
            finally:
                await impostor.stop()
            assert rig.hub.channels.get("t1") is channel, "the good board was disconnected"
            assert t1.link.stats.connects == 1

            # Operator pages: no token, a board's, a publisher's: 401; the operator's: 200.
            for path in ("/", "/api/boards", "/metrics", "/api/reports/plays"):
                for token in (None, good, rig.tokens["tinh-62"], wrong_secret):
                    status, _ = await http_get(rig, path, token)
                    assert status == 401, (path, token)
                status, _ = await http_get(rig, path, rig.operator)
                assert status == 200, path
            status, _ = await http_get(rig, f"/login?token={good}")
            assert status == 401
            assert (await http_get(rig, "/healthz"))[0] == 200

    run(scenario())


# -- 3. refused input ----------------------------------------------------------------------------


def test_malformed_and_oversized_messages_are_refused_without_harm(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            tinh = rig.add_publisher("tinh-62", "62")
            rig.add_board("good", "62/23456")
            rig.add_board("raw", "63/1")  # nothing is published for it
            good = await rig.start_board("good")
            await wait_online(rig, "good")
            counters = rig.hub.counters
            ws = await raw_board(rig, "raw")
            try:
                refused = {
                    "m1": (frame("heartbeat", "m1", status="not an object"), "message.malformed"),
                    "m2": (frame("frobnicate", "m2"), "message.unknown_type"),
                    "m3": (
                        json.dumps({"v": 2, "type": "heartbeat", "id": "m3", "status": {}}),
                        "message.unsupported_version",
                    ),
                    "m4": (just_over_control_limit("m4"), "message.too_large"),
                    "m5": (
                        frame("get_asset", "m5", sha256="0" * 63, offset=0),
                        "message.malformed",
                    ),
                    "m6": (
                        frame("hello", "m6", board="raw", software="x", held={}, assets=[]),
                        "session.unexpected",
                    ),
                }
                for ident, (text, code) in refused.items():
                    await ws.send(text)
                    answer = await answer_to(ws, ident)
                    assert answer["ok"] is False
                    assert answer["error"]["code"] == code, ident

                # No id can be read from these: refused with no answer, and counted.
                faults = counters["faults"]
                await ws.send('{"v": 1, "type": "heartbeat", "id": "n1", "status": {')
                await ws.send('{"v":1,"type":"heartbeat","id":"n2","status":' + "[" * 100_000)
                nested = "[" * 100_000 + "]" * 100_000
                await ws.send('{"v":1,"type":"heartbeat","id":"n3","status":' + nested + "}")
                await ws.send(b"\xff\xfe not a chunk, not UTF-8 \xc3\x28")
                await ws.send(b"SGB1" + b"\0" * 60)  # a chunk header that says total 0
                await ws.send(frame("heartbeat", "ok1", status={"board": "raw"}))
                answer = await answer_to(ws, "ok1")
                assert answer["ok"] is True
                assert counters["faults"] == faults + 5
                assert counters["fault:message.malformed"] >= 4

                # Meanwhile the good board is served as usual.
                async with rig.publisher("tinh-62") as client:
                    envelope = signed_text_bundle(tinh, 10, "Vẫn nhận bình thường", area="62")
                    result = await client.push_bundle(envelope, tmp_path, wait_s=10)
                assert outcomes_of(result) == {"good": "applied"}
                assert good.sync.store.versions() == {"tinh-62": 10}
                assert "raw" in rig.hub.channels

                # A board never sends a bundle-sized frame: the hub does not buffer one for it
                # (publishers may send 24 MiB) but closes that connection, and only that one.
                await ws.send(frame("heartbeat", "big", status={"pad": "x" * (2 * 2**20)}))
                with pytest.raises(ConnectionClosed) as closed:
                    await answer_to(ws, "big")
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
                await until(lambda: "raw" not in rig.hub.channels)
                async with rig.publisher("tinh-62") as client:
                    envelope = signed_text_bundle(tinh, 11, "Vẫn nhận sau đó", area="62")
                    result = await client.push_bundle(envelope, tmp_path, wait_s=10)
                assert outcomes_of(result) == {"good": "applied"}
            finally:
                await ws.close()

    run(scenario())


def just_over_control_limit(ident: str) -> str:
    """A heartbeat one byte over MAX_CONTROL_BYTES: refused with a coded answer, not a close."""
    text = frame("heartbeat", ident, status={"pad": ""})
    return frame("heartbeat", ident, status={"pad": "x" * (MAX_CONTROL_BYTES + 1 - len(text))})


def test_a_flood_is_rate_limited_and_other_boards_are_unaffected(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            tinh = rig.add_publisher("tinh-62", "62")
            rig.add_board("good", "62/23456")
            rig.add_board("flood", "63/1")
            good = await rig.start_board("good")
            await wait_online(rig, "good")
            ws = await raw_board(rig, "flood")
            try:
                for n in range(600):
                    await ws.send(frame("heartbeat", f"f{n}", status={"n": n}))
                answers: dict[str, dict[str, Any]] = {}
                async with asyncio.timeout(5):
                    while len(answers) < 600:
                        message = json.loads(await ws.recv())
                        if message["type"] == "ack":
                            answers[message["ref"]] = message
                limited = [a for a in answers.values() if not a["ok"]]
                assert {a["error"]["code"] for a in limited} == {"message.rate_limited"}
                # A burst of 500 (one went to the hello), then 50/s: the rest of 600 is refused,
                # less what the bucket refilled while the hub read them.
                assert 10 <= len(limited) <= 101
                assert all(answers[f"f{n}"]["ok"] for n in range(400))  # the burst passes
                assert rig.hub.counters["fault:message.rate_limited"] == len(limited)
            finally:
                await ws.close()
            async with rig.publisher("tinh-62") as client:
                envelope = signed_text_bundle(tinh, 10, "Sau trận lụt tin nhắn", area="62")
                result = await client.push_bundle(envelope, tmp_path, wait_s=10)
            assert outcomes_of(result)["good"] == "applied"
            assert good.sync.store.versions() == {"tinh-62": 10}

    run(scenario())


def test_a_publisher_sending_garbage_gets_error_acks_and_stays_connected(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            rig.add_publisher("tinh-62", "62")
            rig.add_board("p1", "62/23456")
            async with connect(
                f"{rig.url}/publish",
                additional_headers={"Authorization": f"Bearer {rig.tokens['tinh-62']}"},
            ) as ws:
                bad_envelope = {"v": 1, "key": "tinh-62", "payload": "AAAA", "sig": "AAAA"}
                refused = {
                    "q1": (frame("frobnicate", "q1"), "message.unknown_type"),
                    "q2": (frame("publish", "q2", kind="poster", signed={}), "message.malformed"),
                    "q3": (
                        json.dumps({"v": 7, "type": "boards", "id": "q3"}),
                        "message.unsupported_version",
                    ),
                    "q4": (frame("missing", "q4", sha256=["xyz"]), "message.malformed"),
                    "q5": (frame("heartbeat", "q5", status={}), "message.unknown_type"),
                    "q6": (frame("screenshot", "q6", board="p1"), "board.offline"),
                    "q7": (frame("screenshot", "q7", board="khong-co"), "board.unknown"),
                    "q8": (
                        frame("publish", "q8", kind="bundle", signed=bad_envelope),
                        "signature.invalid",
                    ),
                    "q9": (
                        frame("boards", "q9", pad="x" * (2 * 2**20)),
                        "message.too_large",
                    ),
                }
                for ident, (text, code) in refused.items():
                    await ws.send(text)
                    answer = await answer_to(ws, ident)
                    assert answer["ok"] is False, ident
                    assert answer["error"]["code"] == code, (ident, answer["error"])
                await ws.send("not json at all")
                await ws.send(b"\x00\x01 not a chunk")
                await ws.send(frame("boards", "ok1"))
                answer = await answer_to(ws, "ok1")
                assert answer["ok"] is True
                assert [b["id"] for b in answer["result"]["boards"]] == ["p1"]

    run(scenario())


# -- 4. reports ----------------------------------------------------------------------------------


def play(board: Any, item: str, start: str, seconds: float) -> None:
    started = datetime.fromisoformat(start).replace(tzinfo=TZ)
    ended = started + timedelta(seconds=seconds)
    row = board.journal.start(item, "announcement", "scheduled", started, ended)
    board.journal.end(row, ended)


def test_play_reports_arrive_and_export_as_csv(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            for board_id, area in (("r1", "62/23456"), ("r2", "62/11111"), ("x1", "64/55555")):
                rig.add_board(board_id, area)
                await rig.start_board(board_id)
            await wait_online(rig, "r1", "r2", "x1")
            r1, r2, x1 = (rig.boards[b] for b in ("r1", "r2", "x1"))
            play(r1, "tinh-62/tb-1", "2026-11-26T08:00:00", 10.0)
            play(r1, "tinh-62/tb-1", "2026-11-26T09:00:00", 12.5)
            play(r1, "tinh-62/tb-2", "2026-11-26T09:00:12.5", 8.0)
            # Crosses midnight: counts for the day it started.
            play(r1, "tinh-62/tb-1", "2026-11-26T23:59:55", 10.0)
            play(r1, "tinh-62/tb-1", "2026-11-27T07:00:00", 5.0)
            play(r2, "tinh-62/tb-1", "2026-11-26T10:00:00", 30.0)
            play(x1, "tinh-64/tb-9", "2026-11-26T10:00:00", 20.0)
            await until(lambda: all(b.journal.pending_count() == 0 for b in (r1, r2, x1)), 5)
            assert rig.hub.counters["report_entries"] >= 7

            async def rows(query: str) -> list[dict[str, str]]:
                status, body = await http_get(rig, f"/api/reports/plays?{query}", rig.operator)
                assert status == 200, body
                return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))

            got = await rows("from=2026-11-26&to=2026-11-27&area=62")
            table = {(r["board"], r["day"], r["item"]): (r["plays"], r["seconds"]) for r in got}
            assert table == {
                ("r1", "2026-11-26", "tinh-62/tb-1"): ("3", "32.5"),
                ("r1", "2026-11-26", "tinh-62/tb-2"): ("1", "8.0"),
                ("r1", "2026-11-27", "tinh-62/tb-1"): ("1", "5.0"),
                ("r2", "2026-11-26", "tinh-62/tb-1"): ("1", "30.0"),
            }
            assert {r["area"] for r in got} == {"62/23456", "62/11111"}
            one_day = await rows("from=2026-11-27&to=2026-11-27&area=62/23456")
            assert [(r["board"], r["plays"]) for r in one_day] == [("r1", "1")]
            everything = await rows("from=2026-11-26&to=2026-11-26")
            assert {r["board"] for r in everything} == {"r1", "r2", "x1"}
            for query in ("from=2026-13-01", "to=26/11/2026", "from=yesterday"):
                status, _ = await http_get(rig, f"/api/reports/plays?{query}", rig.operator)
                assert status == 400, query

    run(scenario())


def test_reports_sent_again_are_stored_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path) as rig:
            rig.add_board("d1", "62/23456")
            registry = rig.hub.registry
            data = {"item": "tinh-62/tb-1", "day": "2026-11-26", "seconds": 10.0}
            entries = [
                {"seq": 1, "kind": "start", "at": "2026-11-26T08:00:00+07:00", "data": {}},
                {"seq": 2, "kind": "play", "at": "2026-11-26T08:00:10+07:00", "data": data},
            ]
            assert registry.add_reports("d1", entries, NOW) == 2
            assert registry.add_reports("d1", entries, NOW + 5) == 0
            # A wiped board starts again at seq 1, at another time: a new entry.
            again = [{**entries[1], "seq": 1, "at": "2026-11-26T09:00:10+07:00"}]
            assert registry.add_reports("d1", again, NOW + 9) == 1
            (row,) = registry.plays("2026-11-26", "2026-11-26", "")
            assert (row.plays, row.seconds) == (2, 20.0)

    run(scenario())


# -- 5. alerts and commands ----------------------------------------------------------------------


def test_alerts_reach_boards_late_comers_and_cancels_withdraw_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            tinh = rig.add_publisher("tinh-62", "62")
            for board_id in ("e1", "e2", "e3", "e4", "e5"):
                rig.add_board(board_id, "62/23456")
            rig.add_board("far", "63/1")
            await rig.start_board("e1")
            await rig.start_board("e2")
            await rig.start_board("far")
            await wait_online(rig, "e1", "e2", "far")
            now = datetime.now(TZ).replace(microsecond=0)
            alert = alert_document(
                publisher="tinh-62",
                seq=1,
                identifier="62-bao-9",
                headline="Bão số 9 đổ bộ: cấm ra khỏi nhà từ 18 giờ",
                description="Gió giật cấp 12, mưa rất to.",
                severity="Extreme",
                expires=now + timedelta(hours=6),
                sent=now,
                area="62",
            )
            signed_alert = tinh.sign(alert)
            async with rig.publisher("tinh-62") as client:
                result = await client.publish("alert", signed_alert, wait_s=5)
                assert result["identifier"] == "62-bao-9"
                assert outcomes_of(result) == {
                    "e1": "applied",
                    "e2": "applied",
                    "e3": "offline",
                    "e4": "offline",
                    "e5": "offline",
                }
                for board_id in ("e1", "e2"):
                    items = rig.boards[board_id].sync.alert_items(datetime.now(TZ))
                    assert [i.id for i in items] == ["alert:62-bao-9"]
                assert rig.boards["far"].sync.alert_items(datetime.now(TZ)) == ()
                shown = rig.hub.snapshot()["alerts"]
                assert [(a["identifier"], a["headline"]) for a in shown] == [
                    ("62-bao-9", "Bão số 9 đổ bộ: cấm ra khỏi nhà từ 18 giờ")
                ]

                # A board that connects later gets the alert at hello.
                e3 = await rig.start_board("e3")
                await until(lambda: len(e3.sync.alert_items(datetime.now(TZ))) == 1, 5)

                # The same document again is a replay: refused by the hub itself.
                with pytest.raises(HubError) as replay:
                    await client.publish("alert", signed_alert, wait_s=5)
                assert replay.value.code is ErrorCode.COMMAND_NOT_NEWER

                await rig.stop_board("e2")  # offline through the cancel
                cancel = cancel_document(
                    publisher="tinh-62",
                    seq=2,
                    identifier="62-bao-9-huy",
                    references=["62-bao-9"],
                    sent=now + timedelta(minutes=1),
                    area="62",
                )
                result = await client.publish("alert", tinh.sign(cancel), wait_s=5)
                assert outcomes_of(result) == {
                    "e1": "applied",
                    "e2": "offline",
                    "e3": "applied",
                    "e4": "offline",
                    "e5": "offline",
                }
                for board_id in ("e1", "e3"):
                    assert rig.boards[board_id].sync.alert_items(datetime.now(TZ)) == ()
                assert rig.hub.snapshot()["alerts"] == []

                # e2 held the alert while offline: it gets the cancel when it comes back.
                e2 = await rig.start_board("e2")
                await until(lambda: e2.sync.alert_items(datetime.now(TZ)) == (), 5)
                assert e2.sync.held()["seq"] == {"tinh-62": 2}

                # e4 never saw the alert: it is sent neither the alert nor the cancel.
                e4 = await rig.start_board("e4")
                await wait_online(rig, "e4")
                await until(lambda: e4.link.stats.state == "ready", 5)
                assert e4.hooks.alerts_seen == 0
                assert e4.sync.held()["seq"] == {}

                # A signed command: carried out by the boards online, the others are offline.
                blank = command_document(
                    publisher="tinh-62", seq=3, name="blank", area="62/23456", issued=now
                )
                result = await client.publish("command", tinh.sign(blank), wait_s=5)
                assert result["name"] == "blank"
                assert outcomes_of(result) == {
                    "e1": "applied",
                    "e2": "applied",
                    "e3": "applied",
                    "e4": "applied",
                    "e5": "offline",
                }
                for board_id in ("e1", "e2", "e3", "e4"):
                    assert rig.boards[board_id].hooks.commands == [("blank", {})]
                    assert rig.boards[board_id].sync.blanked()
                assert rig.boards["far"].hooks.commands == []
                with pytest.raises(HubError) as replay:
                    await client.publish("command", tinh.sign(blank), wait_s=5)
                assert replay.value.code is ErrorCode.COMMAND_NOT_NEWER

    run(scenario())


# -- 6. screenshots and the boards list ----------------------------------------------------------


def test_screenshots_and_the_boards_each_token_may_see(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            rig.add_publisher("xa-23456", "62/23456")
            for board_id, area in (("s1", "62/23456"), ("s2", "62/23456"), ("s3", "62/11111")):
                rig.add_board(board_id, area)
            s1 = await rig.start_board("s1")
            await rig.start_board("s3")
            await wait_online(rig, "s1", "s3")
            expected = await s1.hooks.screenshot()
            assert expected.startswith(PNG_MAGIC) and len(expected) > 256 * 2**10
            async with rig.publisher("xa-23456") as client:
                assert await client.screenshot("s1") == expected
                with pytest.raises(HubError) as offline:
                    await client.screenshot("s2")
                assert offline.value.code is ErrorCode.BOARD_OFFLINE
                with pytest.raises(HubError) as outside:
                    await client.screenshot("s3")
                assert outside.value.code is ErrorCode.BOARD_UNKNOWN
                mine = await client.boards()
            assert sorted(b["id"] for b in mine) == ["s1", "s2"]
            assert {b["id"]: b["online"] for b in mine} == {"s1": True, "s2": False}
            async with PublisherClient(rig.url, rig.operator) as operator:
                everyone = await operator.boards()
                assert [b["id"] for b in everyone] == ["s1", "s2", "s3"]
                assert await operator.screenshot("s3") == expected

            status, body = await http_get(rig, "/screenshots/s1.png", rig.operator)
            assert (status, body) == (200, expected)
            assert (await http_get(rig, "/screenshots/s1.png"))[0] == 401
            assert (await http_get(rig, "/screenshots/s2.png", rig.operator))[0] == 404
            assert (await http_get(rig, "/screenshots/..%2Fregistry.png", rig.operator))[0] == 404
            row = next(b for b in rig.hub.snapshot()["boards"] if b["id"] == "s1")
            assert row["screenshot"] == "/screenshots/s1.png"

    run(scenario())


# -- 7. the operator's JSON and metrics ----------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^{}]*\})? (\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Return sample -> value of Prometheus text, checking HELP/TYPE come before each family."""
    declared: dict[str, set[str]] = {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# "):
            word, name = line.split(" ")[1:3]
            assert word in ("HELP", "TYPE"), line
            declared.setdefault(name, set()).add(word)
            if word == "TYPE":
                assert line.split(" ")[3] in ("counter", "gauge"), line
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a sample line: {line!r}"
        name = match.group(1)
        assert declared.get(name) == {"HELP", "TYPE"}, f"{name} sampled before HELP and TYPE"
        samples[name + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_status_json_and_metrics(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            tinh = rig.add_publisher("tinh-62", "62")
            for board_id in ("j1", "j2", "j3"):
                rig.add_board(board_id, "62/23456")
            await rig.start_board("j1")
            await rig.start_board("j2")
            await wait_online(rig, "j1", "j2")
            async with rig.publisher("tinh-62") as client:
                envelope = signed_text_bundle(tinh, 10, "Bản tin", area="62")
                await client.push_bundle(envelope, tmp_path, wait_s=10)
            live = rig.hub.live
            await until(lambda: all(live[b].last_heartbeat is not None for b in ("j1", "j2")), 5)

            status, body = await http_get(rig, "/api/boards", rig.operator)
            assert status == 200
            snapshot = json.loads(body)
            rows = {row["id"]: row for row in snapshot["boards"]}
            assert {b: r["online"] for b, r in rows.items()} == {
                "j1": True,
                "j2": True,
                "j3": False,
            }
            for board_id in ("j1", "j2"):
                row = rows[board_id]
                assert row["versions"] == {"tinh-62": 10}
                assert isinstance(row["last_heartbeat"], float)
                assert isinstance(row["connected_since"], float)
                assert row["software"] and row["board_time"]
                assert row["name"] == f"Bảng {board_id}" and row["area"] == "62/23456"
            assert rows["j3"]["last_heartbeat"] is None and rows["j3"]["versions"] == {}
            assert snapshot["hub"]["software"]

            status, body = await http_get(rig, "/metrics", rig.operator)
            assert status == 200
            samples = parse_metrics(body.decode("utf-8"))
            assert samples["signage_hub_boards_online"] == 2 == len(rig.hub.channels)
            assert samples["signage_hub_boards_registered"] == 3
            assert samples["signage_hub_heartbeats_total"] >= 2
            assert samples['signage_hub_published_total{kind="bundle"}'] == 1
            assert samples['signage_hub_acks_total{result="ok"}'] == 2
            await rig.stop_board("j2")
            await until(lambda: len(rig.hub.channels) == 1, 5)
            samples = parse_metrics((await http_get(rig, "/metrics", rig.operator))[1].decode())
            assert samples["signage_hub_boards_online"] == 1

    run(scenario())


# -- 8. one token twice --------------------------------------------------------------------------


class _Longest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_one_board_token_used_twice_keeps_the_newer_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            tinh = rig.add_publisher("tinh-62", "62")
            rig.add_board("twin", "62/23456")
            older = await rig.start_board("twin")
            # The older one waits long before it dials again, so the newer one keeps the seat.
            older.link.backoff = Backoff(_Longest(), base=30.0)
            await wait_online(rig, "twin")
            newer = make_board(
                tmp_path / "newer",
                f"{rig.url}/board",
                rig.trust(),
                token=rig.tokens["twin"],
                board_id="twin",
            )
            await newer.start()
            try:
                await until(lambda: newer.link.stats.state == "ready", 5)
                assert rig.hub.counters["replaced_connections"] >= 1
                assert list(rig.hub.channels) == ["twin"]
                channel = rig.hub.channels["twin"]
                assert newer.link._ws is not None
                assert channel.ws.remote_address[1] == newer.link._ws.local_address[1]
                await until(lambda: older.link.stats.state == "offline", 5)
                assert "replaced" in (older.link.stats.last_disconnect_reason or "")
                async with rig.publisher("tinh-62") as client:
                    envelope = signed_text_bundle(tinh, 10, "Cho bảng mới", area="62")
                    result = await client.push_bundle(envelope, tmp_path, wait_s=10)
                assert outcomes_of(result) == {"twin": "applied"}
                assert newer.sync.store.versions() == {"tinh-62": 10}
                assert older.sync.store.versions() == {}
            finally:
                await newer.stop()

    run(scenario())


def test_report_batches_share_one_fsync_and_none_is_acked_before_its_own(tmp_path: Path) -> None:
    """Group commit: the report batches of a moment are acknowledged after one registry sync
    that began after they were written, never after an earlier sync still running."""

    async def scenario() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "hub"))
        started: list[threading.Event] = []
        release: list[threading.Event] = []

        def slow_sync() -> None:  # on the worker thread, like the real one
            started.append(threading.Event())
            release.append(threading.Event())
            started[-1].set()
            assert release[-1].wait(10)

        hub.registry.sync = slow_sync  # type: ignore[method-assign]
        first = [asyncio.create_task(hub.durable()) for _ in range(50)]
        await until(lambda: started and started[0].is_set())
        assert len(started) == 1  # fifty callers, one sync
        late = asyncio.create_task(hub.durable())  # written while that sync runs
        await asyncio.sleep(0.01)
        release[0].set()
        await asyncio.gather(*first)
        await asyncio.sleep(0.1)
        assert not late.done()  # the first sync began before its write: not enough
        await until(lambda: len(started) == 2)
        release[1].set()
        await asyncio.wait_for(late, 5)

        def broken() -> None:
            raise StoreError(ErrorCode.STORE_FAILED, "registry sync failed: EIO")

        hub.registry.sync = broken  # type: ignore[method-assign]
        waiters = [asyncio.create_task(hub.durable()) for _ in range(3)]
        for waiter in waiters:  # each batch is refused, and the boards send it again
            with pytest.raises(StoreError):
                await waiter
        hub.registry.close()

    run(scenario())
