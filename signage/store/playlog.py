"""The play log: every slide shown, with start, end, seconds and reason, in SQLite (WAL).

A row is written when a slide appears and completed when it is replaced. Completing a row also
puts a ``play`` report into the outbox, in the same transaction (a trigger); the link sends the
outbox to the hub and deletes entries only when the hub acknowledges them, so reports survive
days offline, crashes and power cuts, and none is lost or sent as a new one twice.

Each write is its own transaction with ``synchronous=FULL``, so a power cut loses at most the
slide on screen, and :meth:`PlayLog.recover` closes such a row at its planned end (or the
restart, if earlier), marked ``interrupted``. Daily aggregates per item are what a province
uses to evaluate boards.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from signage.errors import ErrorCode, StoreError

REASONS = ("scheduled", "emergency", "idle")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS plays (
    id INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL,
    template TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('scheduled', 'emergency', 'idle')),
    day TEXT NOT NULL,
    started REAL NOT NULL,
    planned_end REAL NOT NULL,
    ended REAL,
    seconds REAL,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS plays_day ON plays (day, item_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS play_report AFTER UPDATE OF ended ON plays
WHEN old.ended IS NULL AND new.ended IS NOT NULL
BEGIN
    INSERT INTO outbox (kind, at, data) VALUES ('play', new.ended, json_object(
        'item', new.item_id, 'template', new.template, 'reason', new.reason, 'day', new.day,
        'started', new.started, 'ended', new.ended, 'seconds', new.seconds,
        'interrupted', json(CASE WHEN new.interrupted THEN 'true' ELSE 'false' END)));
END;
"""


@dataclass(frozen=True, slots=True)
class Play:
    """One shown slide. ``ended`` and ``seconds`` are None while it is on screen."""

    row: int
    item_id: str
    template: str
    reason: str
    day: date
    started: datetime
    ended: datetime | None
    seconds: float | None
    interrupted: bool


@dataclass(frozen=True, slots=True)
class Report:
    """One outbox entry: ``seq`` numbers it for acknowledgement and de-duplication at the hub."""

    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Return the entry as it travels in a ``report`` message."""
        return {"seq": self.seq, "kind": self.kind, "at": self.at.isoformat(), "data": self.data}


@dataclass(frozen=True, slots=True)
class DailyPlays:
    """How often and how long one item played on one (local) day."""

    day: date
    item_id: str
    plays: int
    seconds: float


class PlayLog:
    """The play log in ``path``; safe to share between threads."""

    def __init__(self, path: Path, tz: ZoneInfo) -> None:
        self.path = path
        self.tz = tz
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                ErrorCode.STORE_FAILED, f"cannot open the play log: {exc}", path=str(path)
            ) from exc

    def close(self) -> None:
        """Close the database (further calls raise StoreError)."""
        with self._lock:
            self._db.close()

    def start(
        self, item_id: str, template: str, reason: str, started: datetime, planned_end: datetime
    ) -> int:
        """Record a slide that just appeared; return its row id for :meth:`end`.

        Raises ValueError for an unknown reason and StoreError when the disk refuses the write.
        """
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {reason!r}")
        day = started.astimezone(self.tz).date().isoformat()
        row = self._write(
            "INSERT INTO plays (item_id, template, reason, day, started, planned_end)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, template, reason, day, started.timestamp(), planned_end.timestamp()),
        )
        if row is None:
            raise StoreError(ErrorCode.STORE_FAILED, "insert gave no row id", path=str(self.path))
        return row

    def end(self, row: int, ended: datetime) -> None:
        """Complete row ``row``: the slide left the screen at ``ended``. Raises StoreError."""
        stamp = ended.timestamp()
        self._write(
            "UPDATE plays SET ended = max(started, ?), seconds = max(0, ? - started)"
            " WHERE id = ? AND ended IS NULL",
            (stamp, stamp, row),
        )

    def recover(self, now: datetime) -> int:
        """Close rows a crash left open, at their planned end or ``now`` if earlier.

        Returns how many rows were closed. Raises StoreError.
        """
        stamp = now.timestamp()
        with self._lock:
            try:
                cursor = self._db.execute(
                    "UPDATE plays SET ended = max(started, min(planned_end, ?)),"
                    " seconds = max(0, min(planned_end, ?) - started), interrupted = 1"
                    " WHERE ended IS NULL",
                    (stamp, stamp),
                )
                return cursor.rowcount
            except sqlite3.Error as exc:
                raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=str(self.path)) from exc

    def plays(self, since: datetime | None = None, limit: int = 10_000) -> list[Play]:
        """Return plays started at or after ``since`` (all if None), oldest first."""
        low = since.timestamp() if since is not None else float("-inf")
        rows = self._read(
            "SELECT id, item_id, template, reason, day, started, ended, seconds, interrupted"
            " FROM plays WHERE started >= ? ORDER BY id LIMIT ?",
            (low, limit),
        )
        return [
            Play(
                row=r[0],
                item_id=r[1],
                template=r[2],
                reason=r[3],
                day=date.fromisoformat(r[4]),
                started=datetime.fromtimestamp(r[5], self.tz),
                ended=datetime.fromtimestamp(r[6], self.tz) if r[6] is not None else None,
                seconds=r[7],
                interrupted=bool(r[8]),
            )
            for r in rows
        ]

    def daily(self, first: date, last: date) -> list[DailyPlays]:
        """Return plays and seconds per item and local day, for days ``first`` to ``last``."""
        rows = self._read(
            "SELECT day, item_id, count(*), coalesce(sum(seconds), 0) FROM plays"
            " WHERE day BETWEEN ? AND ? AND ended IS NOT NULL"
            " GROUP BY day, item_id ORDER BY day, item_id",
            (first.isoformat(), last.isoformat()),
        )
        return [DailyPlays(date.fromisoformat(r[0]), r[1], r[2], r[3]) for r in rows]

    def event(self, kind: str, at: datetime, **data: Any) -> int:
        """Put an event (``disconnect``, ``error``, ``start`` ...) into the outbox; return its seq.

        Raises StoreError.
        """
        seq = self._write(
            "INSERT INTO outbox (kind, at, data) VALUES (?, ?, ?)",
            (kind, at.timestamp(), json.dumps(data, ensure_ascii=False, default=str)),
        )
        return int(seq or 0)

    def pending(self, limit: int = 500) -> list[Report]:
        """Return the oldest ``limit`` outbox entries not yet acknowledged."""
        rows = self._read("SELECT seq, kind, at, data FROM outbox ORDER BY seq LIMIT ?", (limit,))
        return [
            Report(r[0], r[1], datetime.fromtimestamp(r[2], self.tz), json.loads(r[3]))
            for r in rows
        ]

    def pending_count(self) -> int:
        """Return how many outbox entries wait for the hub."""
        rows = self._read("SELECT count(*) FROM outbox", ())
        return int(rows[0][0])

    def acknowledge(self, seqs: list[int]) -> None:
        """Delete outbox entries the hub has acknowledged. Raises StoreError."""
        with self._lock:
            try:
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            except sqlite3.Error as exc:
                raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=str(self.path)) from exc

    def check(self) -> str:
        """Return SQLite's integrity verdict ("ok" when the file is sound)."""
        rows = self._read("PRAGMA integrity_check", ())
        return str(rows[0][0]) if rows else "no answer"

    def _write(self, sql: str, args: tuple[object, ...]) -> int | None:
        with self._lock:
            try:
                cursor = self._db.execute(sql, args)
                return cursor.lastrowid
            except sqlite3.Error as exc:
                raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=str(self.path)) from exc

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StoreError(ErrorCode.STORE_FAILED, str(exc), path=str(self.path)) from exc
