"""The hub's SQLite registry: tokens, conflicts, scopes, pruning and a second process."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from signage.errors import ErrorCode, HubError
from signage.hub.registry import Principal, SqliteRegistry, StoredAlert, StoredBundle
from signage.protocol import PrivateKey

NOW = 1_764_150_000.0
DAY = 86_400.0


@pytest.fixture
def registry(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "registry.sqlite")


def database_bytes(folder: Path) -> bytes:
    """Every byte SQLite wrote: the file, its write-ahead log and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def test_tokens_are_shown_once_and_only_their_hash_is_stored(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "registry.sqlite")
    board = registry.add_board("kt-01", "Bảng chợ Sa Thầy", "62/23456", NOW)
    publisher = registry.add_publisher(PrivateKey.generate("tinh-62", "62").public(), "62", NOW)
    operator = registry.add_operator("van-hanh", NOW)
    tokens = {"board": board, "publisher": publisher, "operator": operator}
    secrets = {}
    for kind, token in tokens.items():
        got_kind, _, secret = token.split(":")
        assert got_kind == kind and len(secret) >= 40
        secrets[kind] = secret
    assert len(set(secrets.values())) == 3
    stored = database_bytes(tmp_path)
    for secret in secrets.values():
        assert secret.encode() not in stored
    with sqlite3.connect(tmp_path / "registry.sqlite") as db:
        (digest,) = db.execute("SELECT token_hash FROM boards WHERE id = 'kt-01'").fetchone()
    assert digest == hashlib.sha256(secrets["board"].encode()).hexdigest()
    registry.close()


def test_authenticate_refuses_every_wrong_token(registry: SqliteRegistry) -> None:
    token = registry.add_board("kt-01", "Bảng 1", "62/23456", NOW)
    registry.add_board("kt-02", "Bảng 2", "62/23456", NOW)
    operator = registry.add_operator("van-hanh", NOW)
    _, _, secret = token.split(":")
    assert registry.authenticate(token) == Principal("board", "kt-01")
    assert registry.authenticate(operator) == Principal("operator", "van-hanh")
    wrong = [
        f"board:kt-01:{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",  # wrong secret
        f"board:kt-02:{secret}",  # another board's id
        f"board:kt-99:{secret}",  # unknown id
        f"publisher:kt-01:{secret}",  # wrong kind
        f"operator:kt-01:{secret}",
        f"admin:kt-01:{secret}",  # no such kind
        f"board:kt-01:{secret}:extra",
        f"board::{secret}",
        "board:kt-01:short",
        secret,
        "",
        ":::",
        "board:kt-01:" + "x" * 600,
        "board:kt-01:' OR '1'='1' --xxxxxxxxxxxxxxxx",
        f" {token}",
    ]
    for candidate in wrong:
        assert registry.authenticate(candidate) is None, candidate
    new = registry.set_board_token("kt-01")
    assert registry.authenticate(token) is None
    assert registry.authenticate(new) == Principal("board", "kt-01")
    with pytest.raises(HubError) as unknown:
        registry.set_board_token("kt-99")
    assert unknown.value.code is ErrorCode.BOARD_UNKNOWN


def test_duplicates_and_bad_names_are_refused(registry: SqliteRegistry) -> None:
    registry.add_board("kt-01", "Bảng 1", "62/23456", NOW)
    with pytest.raises(HubError) as board:
        registry.add_board("kt-01", "Bảng khác", "62/11111", NOW)
    assert board.value.code is ErrorCode.REGISTRY_CONFLICT
    assert registry.board("kt-01") is not None
    assert registry.board("kt-01").name == "Bảng 1"  # type: ignore[union-attr]
    key = PrivateKey.generate("tinh-62", "62").public()
    registry.add_publisher(key, "62", NOW)
    with pytest.raises(HubError) as publisher:
        registry.add_publisher(key, "62/23456", NOW)
    assert publisher.value.code is ErrorCode.REGISTRY_CONFLICT
    registry.add_operator("van-hanh", NOW)
    with pytest.raises(HubError) as operator:
        registry.add_operator("van-hanh", NOW)
    assert operator.value.code is ErrorCode.REGISTRY_CONFLICT
    with pytest.raises(HubError) as bad_id:
        registry.add_board("KT 01", "Bảng", "62", NOW)
    assert bad_id.value.code is ErrorCode.CONFIG_INVALID
    with pytest.raises(HubError) as area:
        registry.add_board("kt-02", "Bảng", "62/xã-1", NOW)
    assert area.value.code is ErrorCode.CONFIG_INVALID
    with pytest.raises(HubError) as name:
        registry.add_board("kt-03", "  ", "62", NOW)
    assert name.value.code is ErrorCode.CONFIG_INVALID
    assert [b.id for b in registry.boards()] == ["kt-01"]


def test_a_publisher_is_limited_to_its_keys_area(registry: SqliteRegistry) -> None:
    commune = PrivateKey.generate("xa-23456", "62/23456").public()
    for outside in ("62", "62/11111", "", "63/23456"):
        with pytest.raises(HubError) as refused:
            registry.add_publisher(commune, outside, NOW)
        assert refused.value.code is ErrorCode.SIGNATURE_OUT_OF_SCOPE
    assert registry.publishers() == []
    province = PrivateKey.generate("tinh-62", "62").public()
    registry.add_publisher(province, "62/23456/", NOW)  # narrower than its key: allowed
    record = registry.publisher("tinh-62")
    assert record is not None and record.area == "62/23456"
    assert record.key.key == province.key


def bundle(publisher: str, version: int, *assets: str) -> StoredBundle:
    return StoredBundle(publisher, version, "62", assets, b'{"v":1}', NOW)


def alert(identifier: str, seq: int, expires: float) -> StoredAlert:
    return StoredAlert(identifier, "tinh-62", seq, "Alert", (), "62", expires, b"{}", NOW)


def test_prune_keeps_what_boards_may_still_need(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "registry.sqlite")
    registry.add_publisher(PrivateKey.generate("tinh-62", "62").public(), "62", NOW)
    registry.add_board("kt-01", "Bảng 1", "62/23456", NOW)
    for version in range(1, 6):
        registry.put_bundle(bundle("tinh-62", version, f"{version:064x}", "f" * 64))
    registry.put_bundle(bundle("xa-1", 7, "e" * 64))
    registry.put_alert(alert("cu", 1, NOW - 1))
    registry.put_alert(alert("moi", 2, NOW + DAY))
    play = {"item": "tinh-62/tb-1", "day": "2026-01-01", "seconds": 10.0}
    old = [{"seq": 1, "kind": "play", "at": "2026-01-01T08:00:00+07:00", "data": play}]
    new = [{"seq": 2, "kind": "connected", "at": "2026-03-01T08:00:00+07:00", "data": {}}]
    registry.add_reports("kt-01", old, NOW - 100 * DAY)
    registry.add_reports("kt-01", new, NOW - DAY)

    kept = registry.prune(NOW, 90 * DAY)

    assert kept == sorted([f"{v:064x}" for v in (3, 4, 5)] + ["e" * 64, "f" * 64])
    with sqlite3.connect(tmp_path / "registry.sqlite") as db:
        versions = db.execute("SELECT publisher, version FROM bundles ORDER BY 1, 2").fetchall()
    assert versions == [("tinh-62", 3), ("tinh-62", 4), ("tinh-62", 5), ("xa-1", 7)]
    assert [(b.publisher, b.version) for b in registry.bundles()] == [("tinh-62", 5), ("xa-1", 7)]
    assert [a.identifier for a in registry.alerts(0.0)] == ["moi"]
    assert [e["seq"] for e in registry.recent_events("kt-01", 10)] == [2]
    # The daily sums outlive the raw reports.
    (row,) = registry.plays("2026-01-01", "2026-01-01", "62")
    assert (row.board, row.plays, row.seconds) == ("kt-01", 1, 10.0)
    # The pruned report can come again (a board that was offline for months): it is new then.
    assert registry.add_reports("kt-01", old, NOW) == 1
    assert registry.prune(NOW, 90 * DAY) == kept
    registry.close()


def test_plays_are_filtered_by_area_and_days(registry: SqliteRegistry) -> None:
    registry.add_board("a", "Bảng A", "62/23456", NOW)
    registry.add_board("b", "Bảng B", "620/1", NOW)
    for board_id in ("a", "b"):
        for seq, day in enumerate(("2026-11-25", "2026-11-26", "2026-11-27"), start=1):
            data = {"item": "p/x", "day": day, "seconds": 5}
            entry = {"seq": seq, "kind": "play", "at": f"{day}T10:00:00+07:00", "data": data}
            registry.add_reports(board_id, [entry], NOW)
    rows = registry.plays("2026-11-26", "2026-11-27", "62")
    assert [(r.board, r.day) for r in rows] == [("a", "2026-11-26"), ("a", "2026-11-27")]
    assert len(registry.plays("2026-11-25", "2026-11-27", "")) == 6
    # A play entry with a bad shape is kept as a report but not summed.
    odd = {"seq": 9, "kind": "play", "at": "x", "data": {"item": 5, "day": "2026-11-26"}}
    assert registry.add_reports("a", [odd], NOW) == 1
    assert len(registry.plays("2026-11-26", "2026-11-26", "62/23456")) == 1


def test_a_second_registry_on_the_same_file_sees_the_first(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    hub = SqliteRegistry(path)
    cli = SqliteRegistry(path)  # e.g. `signage hub board add` while the hub runs
    token = cli.add_board("kt-01", "Bảng 1", "62/23456", NOW)
    assert [b.id for b in hub.boards()] == ["kt-01"]
    assert hub.authenticate(token) == Principal("board", "kt-01")
    key = PrivateKey.generate("tinh-62", "62").public()
    hub.add_publisher(key, "62", NOW)
    assert [p.id for p in cli.publishers()] == ["tinh-62"]
    cli.remove_board("kt-01")
    assert hub.board("kt-01") is None and hub.authenticate(token) is None
    with pytest.raises(HubError) as gone:
        hub.remove_board("kt-01")
    assert gone.value.code is ErrorCode.BOARD_UNKNOWN
    cli.close()
    hub.close()


def test_removing_a_publisher_withdraws_its_documents(registry: SqliteRegistry) -> None:
    registry.add_publisher(PrivateKey.generate("tinh-62", "62").public(), "62", NOW)
    registry.put_bundle(bundle("tinh-62", 1, "a" * 64))
    registry.put_alert(alert("bao", 5, NOW + DAY))
    record = registry.publisher("tinh-62")
    assert record is not None and record.last_seq == 5
    registry.note_seq("tinh-62", 3)  # never lowers
    assert registry.publisher("tinh-62").last_seq == 5  # type: ignore[union-attr]
    registry.remove_publisher("tinh-62")
    assert registry.bundles() == [] and registry.alerts(0.0) == []
    with pytest.raises(HubError) as gone:
        registry.remove_publisher("tinh-62")
    assert gone.value.code is ErrorCode.PUBLISHER_UNKNOWN


def test_sync_makes_report_batches_durable_by_fsyncing_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = SqliteRegistry(tmp_path / "registry.sqlite")
    registry.add_board("kt-01", "Bảng chợ", "62/23456", NOW)
    synced: list[str] = []
    fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    entry = {"seq": 1, "kind": "start", "at": "2026-11-26T17:00:01+07:00", "data": {}}
    assert registry.add_reports("kt-01", [entry], NOW) == 1
    assert synced == []  # committed without waiting for the disk: many batches a second
    registry.sync()
    assert synced == [str(tmp_path / "registry.sqlite-wal")]
    # What sync() made durable is the committed batch: another connection sees it.
    db = sqlite3.connect(tmp_path / "registry.sqlite")
    assert db.execute("SELECT count(*) FROM reports").fetchone()[0] == 1
    db.close()
    registry.close()
