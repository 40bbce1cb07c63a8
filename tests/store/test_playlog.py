"""Tests of signage.store.PlayLog: rows, aggregates by local day, recovery, WAL, crash safety.

Times are explicit datetimes; the only real waiting is the crash test's random kill delay.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signage.errors import ErrorCode, StoreError
from signage.store import DailyPlays, Play, PlayLog

REPO = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# Saturday 21 November 2026, 08:30 in Vietnam (01:30 UTC).
T0 = datetime(2026, 11, 21, 8, 30, tzinfo=TZ)
S = timedelta(seconds=1)


@pytest.fixture()
def log(tmp_path: Path) -> Iterator[PlayLog]:
    playlog = PlayLog(tmp_path / "data" / "plays.sqlite", TZ)  # the folder is created
    yield playlog
    playlog.close()


def show(
    playlog: PlayLog,
    item_id: str,
    started: datetime,
    seconds: float,
    *,
    reason: str = "scheduled",
    planned: float | None = None,
) -> int:
    planned_end = started + (planned if planned is not None else seconds) * S
    row = playlog.start(item_id, "announcement", reason, started, planned_end)
    playlog.end(row, started + seconds * S)
    return row


# --- rows -----------------------------------------------------------------------------------------


def test_start_and_end_record_a_complete_row(log: PlayLog) -> None:
    row = log.start("tb-001", "announcement", "scheduled", T0, T0 + 15 * S)
    (open_play,) = log.plays()
    assert open_play == Play(
        row=row,
        item_id="tb-001",
        template="announcement",
        reason="scheduled",
        day=date(2026, 11, 21),
        started=T0,
        ended=None,
        seconds=None,
        interrupted=False,
    )
    log.end(row, T0 + 12.5 * S)
    (play,) = log.plays()
    assert play.ended == T0 + 12.5 * S
    assert play.seconds == pytest.approx(12.5)
    assert not play.interrupted
    assert play.started.tzinfo == TZ


def test_rows_get_increasing_ids_and_keep_their_reason(log: PlayLog) -> None:
    rows = [
        show(log, "a", T0, 10),
        show(log, "storm", T0 + 10 * S, 30, reason="emergency"),
        show(log, "clock", T0 + 40 * S, 60, reason="idle"),
    ]
    assert rows == sorted(rows) and len(set(rows)) == 3
    assert [(p.item_id, p.reason, p.seconds) for p in log.plays()] == [
        ("a", "scheduled", 10.0),
        ("storm", "emergency", 30.0),
        ("clock", "idle", 60.0),
    ]


def test_end_before_start_counts_zero_seconds(log: PlayLog) -> None:
    row = log.start("a", "announcement", "scheduled", T0, T0 + 10 * S)
    log.end(row, T0 - 5 * S)  # the clock stepped back while the slide was up
    (play,) = log.plays()
    assert play.ended == T0 and play.seconds == 0


def test_end_is_idempotent_and_ignores_unknown_rows(log: PlayLog) -> None:
    row = log.start("a", "announcement", "scheduled", T0, T0 + 10 * S)
    log.end(row, T0 + 8 * S)
    log.end(row, T0 + 30 * S)
    log.end(row + 1000, T0 + 30 * S)
    (play,) = log.plays()
    assert play.seconds == 8 and play.ended == T0 + 8 * S


@pytest.mark.parametrize("reason", ["manual", "", "Scheduled", "emergency "])
def test_unknown_reason_is_refused_and_writes_nothing(log: PlayLog, reason: str) -> None:
    with pytest.raises(ValueError, match="reason"):
        log.start("a", "announcement", reason, T0, T0 + 10 * S)
    assert log.plays() == []


@settings(max_examples=50, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([TZ, UTC]),
    ),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1)),
)
def test_times_round_trip_to_the_microsecond(started: datetime, length: timedelta) -> None:
    playlog = PlayLog(Path(":memory:"), TZ)
    try:
        row = playlog.start("a", "announcement", "scheduled", started, started + length)
        playlog.end(row, started + length)
        (play,) = playlog.plays()
        assert play.started == started
        assert play.ended == started + length
        assert play.seconds == pytest.approx(length.total_seconds(), abs=1e-5)
        assert play.day == started.astimezone(TZ).date()
    finally:
        playlog.close()


# --- days and aggregates --------------------------------------------------------------------------


def test_a_play_belongs_to_the_local_day_it_started(log: PlayLog) -> None:
    late = datetime(2026, 11, 20, 23, 59, tzinfo=TZ)  # 16:59 UTC, same date either way
    show(log, "a", late, 300)  # runs past local midnight: still Friday's play
    after_midnight_local = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)  # 00:30 Saturday local
    show(log, "a", after_midnight_local, 20)
    before_midnight_utc = datetime(2026, 11, 20, 23, 50, tzinfo=UTC)  # 06:50 Saturday local
    show(log, "b", before_midnight_utc, 15)
    days = [p.day for p in log.plays()]
    assert days == [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 21)]
    assert log.daily(date(2026, 11, 19), date(2026, 11, 22)) == [
        DailyPlays(date(2026, 11, 20), "a", 1, 300.0),
        DailyPlays(date(2026, 11, 21), "a", 1, 20.0),
        DailyPlays(date(2026, 11, 21), "b", 1, 15.0),
    ]


def test_the_day_follows_the_log_time_zone(tmp_path: Path) -> None:
    instant = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
    local = PlayLog(tmp_path / "vn.sqlite", TZ)
    utc = PlayLog(tmp_path / "utc.sqlite", ZoneInfo("UTC"))
    try:
        for playlog in (local, utc):
            show(playlog, "a", instant, 10)
        assert local.plays()[0].day == date(2026, 11, 21)
        assert utc.plays()[0].day == date(2026, 11, 20)
    finally:
        local.close()
        utc.close()


def test_daily_sums_per_item_and_day(log: PlayLog) -> None:
    friday = datetime(2026, 11, 20, 8, tzinfo=TZ)
    moment = friday
    for day in range(3):
        moment = friday + timedelta(days=day)
        for k in range(6):
            show(log, "a" if k % 3 else "p", moment + k * 20 * S, 10 + day)
    show(log, "storm", friday + timedelta(days=1, hours=5), 120, reason="emergency")
    open_row = log.start("a", "announcement", "scheduled", friday, friday + 10 * S)
    result = log.daily(date(2026, 11, 20), date(2026, 11, 22))
    assert result == [
        DailyPlays(date(2026, 11, 20), "a", 4, 40.0),
        DailyPlays(date(2026, 11, 20), "p", 2, 20.0),
        DailyPlays(date(2026, 11, 21), "a", 4, 44.0),
        DailyPlays(date(2026, 11, 21), "p", 2, 22.0),
        DailyPlays(date(2026, 11, 21), "storm", 1, 120.0),
        DailyPlays(date(2026, 11, 22), "a", 4, 48.0),
        DailyPlays(date(2026, 11, 22), "p", 2, 24.0),
    ]
    # Bounds are inclusive; a slide still on screen does not count yet.
    assert [d.item_id for d in log.daily(date(2026, 11, 21), date(2026, 11, 21))] == [
        "a",
        "p",
        "storm",
    ]
    assert log.daily(date(2026, 11, 23), date(2026, 11, 30)) == []
    assert log.daily(date(2026, 11, 22), date(2026, 11, 20)) == []
    log.end(open_row, friday + 7 * S)
    assert log.daily(date(2026, 11, 20), date(2026, 11, 20))[0] == DailyPlays(
        date(2026, 11, 20), "a", 5, 47.0
    )


def test_plays_since_is_inclusive_and_ordered(log: PlayLog) -> None:
    for k in range(10):
        show(log, f"i{k}", T0 + k * 10 * S, 10)
    assert [p.item_id for p in log.plays(since=T0 + 50 * S)] == ["i5", "i6", "i7", "i8", "i9"]
    assert log.plays(since=(T0 + 49 * S).astimezone(UTC))[0].item_id == "i5"
    assert log.plays(since=T0 + 91 * S) == []
    assert len(log.plays()) == 10
    assert [p.item_id for p in log.plays(limit=3)] == ["i0", "i1", "i2"]
    assert [p.item_id for p in log.plays(since=T0 + 20 * S, limit=2)] == ["i2", "i3"]


# --- the database file ----------------------------------------------------------------------------


def test_journal_is_wal_seen_from_another_connection(log: PlayLog) -> None:
    show(log, "a", T0, 10)
    other = sqlite3.connect(log.path)
    try:
        (mode,) = other.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"
        (count,) = other.execute("SELECT count(*) FROM plays").fetchone()
        assert count == 1  # committed, visible to another reader at once
    finally:
        other.close()
    assert log.check() == "ok"


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "plays.sqlite"
    first = PlayLog(path, TZ)
    show(first, "a", T0, 10)
    open_row = first.start("b", "announcement", "emergency", T0 + 10 * S, T0 + 40 * S)
    first.close()
    second = PlayLog(path, TZ)
    try:
        plays = second.plays()
        assert [(p.item_id, p.seconds) for p in plays] == [("a", 10.0), ("b", None)]
        second.end(open_row, T0 + 25 * S)
        row = show(second, "c", T0 + 25 * S, 5)
        assert row > open_row
        assert second.check() == "ok"
    finally:
        second.close()


def test_recover_closes_open_rows_at_planned_end_or_now(log: PlayLog) -> None:
    done = show(log, "done", T0, 10)
    short = log.start("short", "announcement", "scheduled", T0 + 10 * S, T0 + 20 * S)
    long = log.start("long", "announcement", "emergency", T0 + 20 * S, T0 + 3600 * S)
    future = log.start("future", "announcement", "scheduled", T0 + 500 * S, T0 + 510 * S)
    restart = T0 + 120 * S
    assert log.recover(restart) == 3
    plays = {p.row: p for p in log.plays()}
    assert not plays[done].interrupted and plays[done].seconds == 10
    assert plays[short].interrupted and plays[short].ended == T0 + 20 * S
    assert plays[short].seconds == 10
    assert plays[long].interrupted and plays[long].ended == restart
    assert plays[long].seconds == 100
    # A row "from the future" (clock stepped back before the restart) gets zero seconds.
    assert plays[future].ended == plays[future].started and plays[future].seconds == 0
    assert log.recover(restart + 3600 * S) == 0
    assert all(p.ended is not None and p.ended >= p.started for p in log.plays())
    log.end(long, T0 + 3000 * S)  # the row is closed: a late end changes nothing
    assert {p.row: p for p in log.plays()}[long].ended == restart


def test_recovered_rows_count_in_daily_totals(log: PlayLog) -> None:
    log.start("a", "announcement", "scheduled", T0, T0 + 30 * S)
    assert log.daily(T0.date(), T0.date()) == []
    log.recover(T0 + 60 * S)
    assert log.daily(T0.date(), T0.date()) == [DailyPlays(T0.date(), "a", 1, 30.0)]


def test_closed_log_raises_store_error(tmp_path: Path) -> None:
    playlog = PlayLog(tmp_path / "plays.sqlite", TZ)
    playlog.close()
    for call in (
        lambda: playlog.start("a", "announcement", "scheduled", T0, T0 + S),
        lambda: playlog.end(1, T0),
        playlog.plays,
        lambda: playlog.daily(T0.date(), T0.date()),
        lambda: playlog.recover(T0),
        playlog.check,
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert info.value.code is ErrorCode.STORE_FAILED


def test_unusable_paths_raise_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        PlayLog(blocker / "plays.sqlite", TZ)
    assert info.value.code is ErrorCode.STORE_FAILED
    assert "not-a-folder" in str(info.value)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(StoreError) as info:
        PlayLog(garbage, TZ)
    assert info.value.path == str(garbage)


def test_threads_can_share_one_log(log: PlayLog) -> None:
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for k in range(40):
                show(log, f"{name}-{k}", T0 + k * S, 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    plays = log.plays()
    assert len(plays) == 160 and len({p.item_id for p in plays}) == 160
    assert all(p.seconds == 1 for p in plays)


# --- crash consistency ----------------------------------------------------------------------------

CHILD = """
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo
from signage.store import PlayLog

path, run = Path(sys.argv[1]), int(sys.argv[2])
log = PlayLog(path, ZoneInfo("Asia/Ho_Chi_Minh"))
base = datetime(2026, 11, 21, tzinfo=timezone.utc) + timedelta(days=run)
print("ready", flush=True)
n = 0
while True:
    started = base + timedelta(seconds=10 * n)
    row = log.start(f"r{run}-{n}", "announcement", "scheduled", started,
                    started + timedelta(seconds=10))
    print("S", row, n, flush=True)
    log.end(row, started + timedelta(seconds=7.5))
    print("E", row, n, flush=True)
    n += 1
"""


def run_and_kill(path: Path, run: int, delay: float) -> list[tuple[str, int, int]]:
    """Start the child, let it write for ``delay`` seconds, SIGKILL it; return its lines."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    out = b""
    try:
        fd = child.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            ready_by = time.monotonic() + 20
            while b"\n" not in out:  # wait until it has opened the log
                assert selector.select(max(0.0, ready_by - time.monotonic())), "child hung"
                chunk = os.read(fd, 65536)
                assert chunk, child.stderr.read().decode()
                out += chunk
            kill_at = time.monotonic() + delay
            while (left := kill_at - time.monotonic()) > 0:
                if selector.select(left):
                    out += os.read(fd, 65536)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        out += child.stdout.read()
    finally:
        if child.poll() is None:  # pragma: no cover - only if an assertion fired
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    text = out.decode()
    lines = text.split("\n")[:-1]  # a torn last line (no newline) proves nothing
    assert lines[0] == "ready"
    parsed = []
    for line in lines[1:]:
        kind, row, n = line.split()
        parsed.append((kind, int(row), int(n)))
    return parsed


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "plays.sqlite"
    rng = random.Random(20261121)
    seen_rows: set[int] = set()
    total_committed = 0
    kills = 24
    began = time.monotonic()
    for run in range(kills):
        lines = run_and_kill(path, run, rng.uniform(0.005, 0.060))
        started = {row: n for kind, row, n in lines if kind == "S"}
        ended = {row for kind, row, _ in lines if kind == "E"}
        total_committed += len(started)

        playlog = PlayLog(path, TZ)
        try:
            assert playlog.check() == "ok"
            plays = playlog.plays(limit=1_000_000)
            by_row = {p.row: p for p in plays}
            assert len(by_row) == len(plays)
            names = [p.item_id for p in plays]
            assert len(names) == len(set(names)), "a row was written twice"
            # Every row the child reported as committed is there, as reported.
            for row, n in started.items():
                assert by_row[row].item_id == f"r{run}-{n}"
            for row in ended:
                assert by_row[row].ended is not None and not by_row[row].interrupted
                assert by_row[row].seconds == 7.5
            # Writes are sequential: this run's rows are a prefix r{run}-0 .. r{run}-m,
            # and at most its last row was left open.
            mine = [p for p in plays if p.item_id.startswith(f"r{run}-")]
            assert [p.item_id for p in mine] == [f"r{run}-{n}" for n in range(len(mine))]
            assert len(mine) >= len(started)
            still_open = [p for p in mine if p.ended is None]
            assert still_open in ([], mine[-1:])
            # Earlier runs were recovered already: nothing of theirs is open or changed.
            assert all(p.ended is not None for p in plays if p not in mine)
            assert seen_rows <= set(by_row)

            restart = datetime(2026, 11, 21, tzinfo=UTC) + timedelta(days=run + 1)
            assert playlog.recover(restart) == len(still_open)
            after = playlog.plays(limit=1_000_000)
            assert all(p.ended is not None and p.seconds is not None for p in after)
            assert all(p.ended >= p.started for p in after if p.ended is not None)
            for p in after:
                if p.row in {q.row for q in still_open}:
                    assert p.interrupted and p.seconds == 10  # closed at its planned end
            seen_rows = {p.row for p in after}
            assert playlog.check() == "ok"
        finally:
            playlog.close()
    assert total_committed > kills, "the child barely ran: the kills hit nothing"
    assert time.monotonic() - began < 20
