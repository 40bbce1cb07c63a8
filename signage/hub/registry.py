"""The hub's registry: boards, publishers, operators, signed documents and reports.

:class:`Registry` is the interface the hub uses; :class:`SqliteRegistry` keeps it in one SQLite
file (WAL) in the hub's data dir. A province that outgrows one file can put a shared database
behind the same interface.

Tokens are made here and shown once. A token reads ``KIND:ID:SECRET`` (``board:kt-01:…``),
so the hub finds the principal by id and compares the SHA-256 of the secret with the stored
one in constant time; the secret itself (256 random bits) is never stored.

What the hub acknowledges survives a power cut: publishes and token changes commit with
``synchronous=FULL``; report batches, many a second from thousands of boards, commit without
waiting for the disk and the hub acknowledges them after :meth:`Registry.sync`, which it runs
for all the batches of the last moment at once (group commit).

Reports are de-duplicated by (board, seq, at): an ack lost after the hub stored a batch makes
the board send it again, and a board whose data dir was wiped starts its seq at 1 again with
new times. Play reports are also summed per board, item and day as they arrive, so the figures
a province evaluates boards by survive the pruning of raw reports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from signage.errors import ErrorCode, HubError, StoreError
from signage.protocol import PublicKey, area_within, check_key_id

TOKEN_KINDS = ("board", "publisher", "operator")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS boards (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    area TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL,
    last_heartbeat REAL,
    status TEXT,
    versions TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS publishers (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    area TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created REAL NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS operators (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bundles (
    publisher TEXT NOT NULL,
    version INTEGER NOT NULL,
    area TEXT NOT NULL,
    assets TEXT NOT NULL,
    envelope BLOB NOT NULL,
    received REAL NOT NULL,
    PRIMARY KEY (publisher, version)
);
CREATE TABLE IF NOT EXISTS alerts (
    identifier TEXT PRIMARY KEY,
    publisher TEXT NOT NULL,
    seq INTEGER NOT NULL,
    msg_type TEXT NOT NULL,
    refs TEXT NOT NULL,
    area TEXT NOT NULL,
    expires REAL NOT NULL,
    envelope BLOB NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    board TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    received REAL NOT NULL,
    UNIQUE (board, seq, at)
);
CREATE INDEX IF NOT EXISTS reports_received ON reports (received);
CREATE TABLE IF NOT EXISTS plays (
    board TEXT NOT NULL,
    item TEXT NOT NULL,
    day TEXT NOT NULL,
    plays INTEGER NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (board, item, day)
);
"""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to: ``kind`` is board, publisher or operator."""

    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class BoardRecord:
    """A registered board and what the hub last knew of it."""

    id: str
    name: str
    area: str
    created: float
    last_seen: float | None = None
    last_heartbeat: float | None = None
    status: Mapping[str, Any] | None = None
    versions: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class PublisherRecord:
    """A registered publisher: its public key and the area prefix it may publish for."""

    id: str
    key: PublicKey
    area: str
    last_seq: int = 0


@dataclass(frozen=True, slots=True)
class StoredBundle:
    """A signed bundle as the hub keeps it: ``assets`` are the sha256 of its manifest."""

    publisher: str
    version: int
    area: str
    assets: tuple[str, ...]
    envelope: bytes
    received: float


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """A signed alert as the hub keeps it (``expires`` in Unix seconds)."""

    identifier: str
    publisher: str
    seq: int
    msg_type: str
    references: tuple[str, ...]
    area: str
    expires: float
    envelope: bytes
    received: float


@dataclass(frozen=True, slots=True)
class BoardSeen:
    """What the hub learnt of a board since the last flush (written in one transaction)."""

    id: str
    last_seen: float
    last_heartbeat: float | None
    status: Mapping[str, Any] | None
    versions: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class PlayRow:
    """Plays of one item on one board on one (board-local) day."""

    board: str
    area: str
    item: str
    day: str
    plays: int
    seconds: float


class Registry(Protocol):
    """What the hub keeps. Every method raises StoreError (store.failed) when storage fails."""

    def add_board(self, board_id: str, name: str, area: str, now: float) -> str:
        """Register a board; return its token (shown once). HubError registry.conflict if the
        id is taken."""

    def set_board_token(self, board_id: str) -> str:
        """Make a new token for a board (the old one stops working); HubError board.unknown."""

    def remove_board(self, board_id: str) -> None:
        """Forget a board; HubError board.unknown."""

    def boards(self) -> list[BoardRecord]:
        """Return every board, by id."""

    def board(self, board_id: str) -> BoardRecord | None:
        """Return one board, or None."""

    def areas(self) -> dict[str, str]:
        """Return board id -> area of every board (cheap: no status)."""

    def add_publisher(self, key: PublicKey, area: str, now: float) -> str:
        """Register a publisher by its public key (its id is the key's id), limited to
        ``area``, which must lie inside the key's own area. Returns its token."""

    def remove_publisher(self, publisher_id: str) -> None:
        """Forget a publisher and withdraw its documents; HubError publisher.unknown."""

    def publishers(self) -> list[PublisherRecord]:
        """Return every publisher, by id."""

    def publisher(self, publisher_id: str) -> PublisherRecord | None:
        """Return one publisher, or None."""

    def add_operator(self, name: str, now: float) -> str:
        """Register an operator (status page, all boards); return the token."""

    def authenticate(self, token: str) -> Principal | None:
        """Return who ``token`` belongs to, or None (never says why)."""

    def put_bundle(self, bundle: StoredBundle) -> None:
        """Keep a signed bundle (the newest few per publisher are kept)."""

    def bundles(self) -> list[StoredBundle]:
        """Return the newest bundle of each publisher."""

    def put_alert(self, alert: StoredAlert) -> None:
        """Keep a signed alert and raise its publisher's last seq."""

    def alerts(self, now: float) -> list[StoredAlert]:
        """Return the alerts that have not expired at ``now``, by seq."""

    def note_seq(self, publisher_id: str, seq: int) -> None:
        """Remember the last seq a publisher used (alerts and commands share one counter)."""

    def save_seen(self, seen: Iterable[BoardSeen]) -> None:
        """Write what the hub learnt of boards since the last call."""

    def add_reports(self, board_id: str, entries: Sequence[Mapping[str, Any]], now: float) -> int:
        """Keep a board's report entries, skipping those already kept; return how many were
        new. Play entries are also added to the daily sums. Durable only after :meth:`sync`."""

    def sync(self) -> None:
        """Make every transaction committed so far survive a power cut. Safe to call from
        another thread than the one writing."""

    def recent_events(self, board_id: str, limit: int) -> list[dict[str, Any]]:
        """Return the board's latest non-play report entries, newest first."""

    def plays(self, first_day: str, last_day: str, area: str) -> list[PlayRow]:
        """Return the daily play sums of boards inside ``area`` from ``first_day`` to
        ``last_day`` (ISO dates, inclusive), by board, day and item."""

    def prune(self, now: float, keep_reports_s: float) -> list[str]:
        """Drop expired alerts, raw reports older than ``keep_reports_s`` and old bundle
        versions; return the asset hashes the kept bundles need (any other may be deleted)."""

    def close(self) -> None:
        """Close the storage."""


def make_token(kind: str, ident: str) -> tuple[str, str]:
    """Return a new token for ``kind`` ``ident`` and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return f"{kind}:{ident}:{secret}", _digest(secret)


def split_token(token: str) -> tuple[str, str, str] | None:
    """Return (kind, id, secret) of a well-formed token, or None."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] not in TOKEN_KINDS or not parts[1] or len(parts[2]) < 20:
        return None
    return parts[0], parts[1], parts[2]


def _digest(secret: str) -> str:
    # The secret is 256 random bits: a plain hash is as strong as a slow one here.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_area(area: str) -> str:
    area = area.strip("/")
    if area and not all(part.isalnum() and part.isascii() for part in area.split("/")):
        raise HubError(
            ErrorCode.CONFIG_INVALID, "expected an area path such as 62/23456", path=area
        )
    return area


_BOARD_ID = re.compile(r"[a-z0-9._-]{1,64}")
_TABLE_OF = {"board": "boards", "publisher": "publishers", "operator": "operators"}
_KEEP_VERSIONS = 3  # per publisher: the newest and two before it


class SqliteRegistry:
    """The registry in one SQLite file. Safe to use from one thread at a time; the hub uses it
    from its event loop, the ``signage hub board|publisher`` commands from their own process
    (SQLite's locking keeps the two apart)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path, timeout=10.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: what the hub acknowledges (a publish, a report batch the board then
            # deletes, a token) must survive a power cut; save_seen's heartbeat state alone is
            # written with NORMAL (see _write).
            self._db.execute("PRAGMA synchronous=FULL")
            self._synchronous = "FULL"
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.Error as exc:
            raise StoreError(
                ErrorCode.STORE_FAILED, f"cannot open the registry: {exc}", path=str(path)
            ) from exc

    # -- principals ---------------------------------------------------------------------------

    def add_board(self, board_id: str, name: str, area: str, now: float) -> str:
        if not _BOARD_ID.fullmatch(board_id):
            raise HubError(
                ErrorCode.CONFIG_INVALID,
                "a board id is 1-64 of a-z 0-9 . _ - (board.id in the board's board.toml)",
                path="id",
            )
        if not name.strip():
            raise HubError(ErrorCode.CONFIG_INVALID, "a board needs a name", path="name")
        token, digest = make_token("board", board_id)
        self._insert(
            "INSERT INTO boards (id, name, area, token_hash, created) VALUES (?, ?, ?, ?, ?)",
            (board_id, name.strip(), _check_area(area), digest, now),
            f"board {board_id!r} exists",
        )
        return token

    def set_board_token(self, board_id: str) -> str:
        token, digest = make_token("board", board_id)
        with self._write() as db:
            changed = db.execute(
                "UPDATE boards SET token_hash = ? WHERE id = ?", (digest, board_id)
            ).rowcount
        if not changed:
            raise HubError(ErrorCode.BOARD_UNKNOWN, f"no board {board_id!r}")
        return token

    def remove_board(self, board_id: str) -> None:
        with self._write() as db:
            changed = db.execute("DELETE FROM boards WHERE id = ?", (board_id,)).rowcount
        if not changed:
            raise HubError(ErrorCode.BOARD_UNKNOWN, f"no board {board_id!r}")

    def boards(self) -> list[BoardRecord]:
        rows = self._read(
            "SELECT id, name, area, created, last_seen, last_heartbeat, status, versions"
            " FROM boards ORDER BY id"
        )
        return [_board(row) for row in rows]

    def board(self, board_id: str) -> BoardRecord | None:
        rows = self._read(
            "SELECT id, name, area, created, last_seen, last_heartbeat, status, versions"
            " FROM boards WHERE id = ?",
            (board_id,),
        )
        return _board(rows[0]) if rows else None

    def areas(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self._read("SELECT id, area FROM boards")}

    def add_publisher(self, key: PublicKey, area: str, now: float) -> str:
        area = _check_area(area)
        if not area_within(area, key.area):
            raise HubError(
                ErrorCode.SIGNATURE_OUT_OF_SCOPE,
                f"key {key.key_id!r} may sign only for {key.area or '(all)'!r}, not {area!r}",
            )
        token, digest = make_token("publisher", key.key_id)
        self._insert(
            "INSERT INTO publishers (id, key, area, token_hash, created) VALUES (?, ?, ?, ?, ?)",
            (key.key_id, key.to_json(), area, digest, now),
            f"publisher {key.key_id!r} exists",
        )
        return token

    def remove_publisher(self, publisher_id: str) -> None:
        with self._write() as db:
            changed = db.execute("DELETE FROM publishers WHERE id = ?", (publisher_id,)).rowcount
            db.execute("DELETE FROM bundles WHERE publisher = ?", (publisher_id,))
            db.execute("DELETE FROM alerts WHERE publisher = ?", (publisher_id,))
        if not changed:
            raise HubError(ErrorCode.PUBLISHER_UNKNOWN, f"no publisher {publisher_id!r}")

    def publishers(self) -> list[PublisherRecord]:
        rows = self._read("SELECT id, key, area, last_seq FROM publishers ORDER BY id")
        return [_publisher(row) for row in rows]

    def publisher(self, publisher_id: str) -> PublisherRecord | None:
        rows = self._read(
            "SELECT id, key, area, last_seq FROM publishers WHERE id = ?", (publisher_id,)
        )
        return _publisher(rows[0]) if rows else None

    def add_operator(self, name: str, now: float) -> str:
        check_key_id(name)
        token, digest = make_token("operator", name)
        self._insert(
            "INSERT INTO operators (id, token_hash, created) VALUES (?, ?, ?)",
            (name, digest, now),
            f"operator {name!r} exists",
        )
        return token

    def authenticate(self, token: str) -> Principal | None:
        parts = split_token(token)
        if parts is None:
            return None
        kind, ident, secret = parts
        rows = self._read(f"SELECT token_hash FROM {_TABLE_OF[kind]} WHERE id = ?", (ident,))
        expected = rows[0][0] if rows else "0" * 64
        # Compared even when the id is unknown, so timing does not tell which ids exist.
        if hmac.compare_digest(_digest(secret), expected) and rows:
            return Principal(kind, ident)
        return None

    # -- signed documents ---------------------------------------------------------------------

    def put_bundle(self, bundle: StoredBundle) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO bundles VALUES (?, ?, ?, ?, ?, ?)",
                (
                    bundle.publisher,
                    bundle.version,
                    bundle.area,
                    json.dumps(list(bundle.assets)),
                    bundle.envelope,
                    bundle.received,
                ),
            )

    def bundles(self) -> list[StoredBundle]:
        rows = self._read(
            "SELECT publisher, version, area, assets, envelope, received FROM bundles b"
            " WHERE version = (SELECT MAX(version) FROM bundles WHERE publisher = b.publisher)"
            " ORDER BY publisher"
        )
        return [
            StoredBundle(row[0], row[1], row[2], tuple(json.loads(row[3])), bytes(row[4]), row[5])
            for row in rows
        ]

    def put_alert(self, alert: StoredAlert) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.identifier,
                    alert.publisher,
                    alert.seq,
                    alert.msg_type,
                    json.dumps(list(alert.references)),
                    alert.area,
                    alert.expires,
                    alert.envelope,
                    alert.received,
                ),
            )
            db.execute(
                "UPDATE publishers SET last_seq = MAX(last_seq, ?) WHERE id = ?",
                (alert.seq, alert.publisher),
            )

    def alerts(self, now: float) -> list[StoredAlert]:
        rows = self._read(
            "SELECT identifier, publisher, seq, msg_type, refs, area, expires, envelope, received"
            " FROM alerts WHERE expires > ? ORDER BY seq",
            (now,),
        )
        return [
            StoredAlert(
                row[0],
                row[1],
                row[2],
                row[3],
                tuple(json.loads(row[4])),
                row[5],
                row[6],
                bytes(row[7]),
                row[8],
            )
            for row in rows
        ]

    def note_seq(self, publisher_id: str, seq: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE publishers SET last_seq = MAX(last_seq, ?) WHERE id = ?",
                (seq, publisher_id),
            )

    # -- what boards tell ---------------------------------------------------------------------

    def save_seen(self, seen: Iterable[BoardSeen]) -> None:
        rows = [
            (
                s.last_seen,
                s.last_heartbeat,
                None if s.status is None else json.dumps(s.status, ensure_ascii=False),
                json.dumps(dict(s.versions)),
                s.id,
            )
            for s in seen
        ]
        if not rows:
            return
        with self._write(durable=False) as db:  # rewritten every 5 s; a cut loses seconds
            db.executemany(
                "UPDATE boards SET last_seen = ?, last_heartbeat = COALESCE(?, last_heartbeat),"
                " status = COALESCE(?, status), versions = ? WHERE id = ?",
                rows,
            )

    def add_reports(self, board_id: str, entries: Sequence[Mapping[str, Any]], now: float) -> int:
        added = 0
        with self._write(durable=False) as db:  # the hub acks after sync(): group commit
            for entry in entries:
                data = entry.get("data", {})
                cursor = db.execute(
                    "INSERT OR IGNORE INTO reports VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        board_id,
                        entry["seq"],
                        entry["at"],
                        entry["kind"],
                        json.dumps(data, ensure_ascii=False),
                        now,
                    ),
                )
                if cursor.rowcount == 0:
                    continue  # sent again after a lost ack
                added += 1
                if entry["kind"] == "play":
                    item, day, seconds = data.get("item"), data.get("day"), data.get("seconds")
                    if (
                        isinstance(item, str)
                        and isinstance(day, str)
                        and isinstance(seconds, int | float)
                        and not isinstance(seconds, bool)
                    ):
                        db.execute(
                            "INSERT INTO plays VALUES (?, ?, ?, 1, ?) ON CONFLICT"
                            " (board, item, day) DO UPDATE SET plays = plays + 1,"
                            " seconds = seconds + excluded.seconds",
                            (board_id, item[:200], day[:10], max(0.0, float(seconds))),
                        )
        return added

    def recent_events(self, board_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT seq, at, kind, data FROM reports WHERE board = ? AND kind != 'play'"
            " ORDER BY received DESC, seq DESC LIMIT ?",
            (board_id, limit),
        )
        return [
            {"seq": row[0], "at": row[1], "kind": row[2], "data": json.loads(row[3])}
            for row in rows
        ]

    def plays(self, first_day: str, last_day: str, area: str) -> list[PlayRow]:
        rows = self._read(
            "SELECT p.board, b.area, p.item, p.day, p.plays, p.seconds FROM plays p"
            " JOIN boards b ON b.id = p.board WHERE p.day BETWEEN ? AND ?"
            " ORDER BY p.board, p.day, p.item",
            (first_day, last_day),
        )
        return [PlayRow(*row) for row in rows if area_within(row[1], area)]

    def prune(self, now: float, keep_reports_s: float) -> list[str]:
        with self._write() as db:
            db.execute("DELETE FROM alerts WHERE expires <= ?", (now,))
            db.execute("DELETE FROM reports WHERE received < ?", (now - keep_reports_s,))
            db.execute(
                "DELETE FROM bundles WHERE (SELECT COUNT(*) FROM bundles n"
                " WHERE n.publisher = bundles.publisher AND n.version > bundles.version) >= ?",
                (_KEEP_VERSIONS,),
            )
            kept = {
                sha
                for (assets,) in db.execute("SELECT assets FROM bundles")
                for sha in json.loads(assets)
            }
        return sorted(kept)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- inside -------------------------------------------------------------------------------

    def _insert(self, sql: str, params: tuple[Any, ...], conflict: str) -> None:
        try:
            with self._write() as db:
                db.execute(sql, params)
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise HubError(ErrorCode.REGISTRY_CONFLICT, conflict) from None
            raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return list(self._db.execute(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(ErrorCode.STORE_FAILED, f"registry read failed: {exc}") from exc

    def sync(self) -> None:
        # With journal_mode=WAL and synchronous=NORMAL a commit is written to the WAL file
        # without an fsync; SQLite fsyncs the WAL before a checkpoint copies it into the
        # database, and the database before the WAL is reused. So fsyncing the WAL now makes
        # every frame committed before this call durable, in the WAL or in the database. It
        # needs no connection, so it runs on a worker thread while the hub goes on writing.
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return  # nothing committed since the last checkpoint emptied it
        except OSError as exc:
            raise StoreError(ErrorCode.STORE_FAILED, f"registry sync failed: {exc}") from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StoreError(ErrorCode.STORE_FAILED, f"registry sync failed: {exc}") from exc
        finally:
            os.close(fd)

    def _write(self, durable: bool = True) -> _Transaction:
        return _Transaction(self, "FULL" if durable else "NORMAL")


class _Transaction:
    """``with registry._write() as db``: one transaction under the registry's lock, with
    sqlite3 errors turned into StoreError."""

    def __init__(self, registry: SqliteRegistry, synchronous: str) -> None:
        self.registry = registry
        self.synchronous = synchronous

    def __enter__(self) -> sqlite3.Connection:
        registry = self.registry
        registry._lock.acquire()
        try:
            if registry._synchronous != self.synchronous:
                registry._db.execute(f"PRAGMA synchronous={self.synchronous}")
                registry._synchronous = self.synchronous
            registry._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # locked by another process for longer than the timeout
            registry._lock.release()
            raise StoreError(ErrorCode.STORE_FAILED, f"registry write failed: {exc}") from exc
        return registry._db

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        db = self.registry._db
        try:
            if exc is None:
                db.commit()
            else:
                db.rollback()
        finally:
            self.registry._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(ErrorCode.STORE_FAILED, f"registry write failed: {exc}") from exc


def _board(row: tuple[Any, ...]) -> BoardRecord:
    return BoardRecord(
        id=row[0],
        name=row[1],
        area=row[2],
        created=row[3],
        last_seen=row[4],
        last_heartbeat=row[5],
        status=None if row[6] is None else json.loads(row[6]),
        versions=json.loads(row[7]),
    )


def _publisher(row: tuple[Any, ...]) -> PublisherRecord:
    return PublisherRecord(row[0], PublicKey.from_json(row[1]), row[2], row[3])
