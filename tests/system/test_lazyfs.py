"""The power-cut model itself (tests/system/lazyfs.py): what is not fsync'ed is lost at a cut,
what is fsync'ed stays, and what the mount shows before the cut is what was written.

Each test mounts its own daemon; the file skips when FUSE cannot be used here.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.lazyfs import LazyMount


@pytest.fixture()
def lazy(tmp_path: Path, lazy_ok: None) -> Iterator[LazyMount]:
    with LazyMount(tmp_path / "backing", tmp_path / "mnt") as fs:
        yield fs


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def test_unsynced_writes_are_lost_and_later_writes_refused(lazy: LazyMount) -> None:
    mnt, backing = lazy.mountpoint, lazy.backing
    (mnt / "old.txt").write_bytes(b"old content")
    _fsync(mnt / "old.txt")
    (mnt / "new.txt").write_bytes(b"hello")
    with open(mnt / "old.txt", "r+b") as out:
        out.write(b"NEW")
    # The daemon saw the write at once (no kernel writeback cache), and the mount shows it.
    figures = lazy.stats()
    assert figures["dirty_bytes"] > 0 and figures["bytes_written"] >= 8
    assert (mnt / "new.txt").read_bytes() == b"hello"
    assert (mnt / "new.txt").stat().st_size == 5
    assert (mnt / "old.txt").read_bytes() == b"NEW content"
    assert (backing / "new.txt").read_bytes() == b""  # not on the disk yet
    late = open(mnt / "new.txt", "ab")  # noqa: SIM115 - written after the cut
    cut = lazy.cut_power(unmount=False)
    with pytest.raises(OSError):
        late.write(b"after the cut")
        late.flush()
    with pytest.raises(OSError):
        late.close()
    lazy.unmount()
    assert cut["bytes_discarded"] >= 8 and cut["files_discarded"] == 2
    assert lazy.totals["refused"] >= 1
    assert (backing / "new.txt").read_bytes() == b""  # the name stays, the data is gone
    assert (backing / "old.txt").read_bytes() == b"old content"
    lazy.remount()  # the next boot sees the disk
    assert (mnt / "old.txt").read_bytes() == b"old content"


def test_fsynced_data_survives(lazy: LazyMount) -> None:
    mnt, backing = lazy.mountpoint, lazy.backing
    with open(mnt / "a", "wb") as out:
        out.write(b"fsync")
        out.flush()
        os.fsync(out.fileno())
    with open(mnt / "b", "wb") as out:
        out.write(b"fdatasync")
        out.flush()
        os.fdatasync(out.fileno())
    (mnt / "c").write_bytes(b"synced through another, read-only handle")
    _fsync(mnt / "c")
    fd = os.open(mnt / "d", os.O_WRONLY | os.O_CREAT | os.O_SYNC)
    os.write(fd, b"O_SYNC")
    os.close(fd)
    (mnt / "e").write_bytes(b"never synced")
    os.mkdir(mnt / "folder")
    lazy.cut_power()
    assert (backing / "a").read_bytes() == b"fsync"
    assert (backing / "b").read_bytes() == b"fdatasync"
    assert (backing / "c").read_bytes() == b"synced through another, read-only handle"
    assert (backing / "d").read_bytes() == b"O_SYNC"
    assert (backing / "e").read_bytes() == b""
    assert (backing / "folder").is_dir()  # metadata is durable at once in this model


def test_clean_unmount_and_sync_all_keep_everything(lazy: LazyMount) -> None:
    mnt, backing = lazy.mountpoint, lazy.backing
    (mnt / "one").write_bytes(b"1" * 10_000)
    lazy.sync_all()
    assert (backing / "one").read_bytes() == b"1" * 10_000
    (mnt / "two").write_bytes(b"2")
    lazy.unmount()  # a clean shutdown, not a cut
    assert (backing / "two").read_bytes() == b"2"


def test_an_armed_cut_lands_right_after_the_chosen_request(lazy: LazyMount) -> None:
    mnt, backing = lazy.mountpoint, lazy.backing
    for name in "abc":
        (mnt / name).write_bytes(name.encode())
        _fsync(mnt / name)
    (mnt / "dirty").write_bytes(b"never synced")
    lazy.arm("rename", 2)
    os.rename(mnt / "a", mnt / "a2")
    assert lazy.stats()["cut"] == 0
    os.rename(mnt / "b", mnt / "b2")  # reaches the disk, and the caller hears so
    assert lazy.stats()["cut"] == 1
    with pytest.raises(OSError):
        os.rename(mnt / "c", mnt / "c2")
    lazy.unmount()
    assert sorted(p.name for p in backing.iterdir()) == ["a2", "b2", "c", "dirty"]
    assert (backing / "b2").read_bytes() == b"b" and (backing / "dirty").read_bytes() == b""
    assert lazy.totals["armed_cut"] == 1


def test_rename_without_fsync_leaves_an_empty_file(lazy: LazyMount) -> None:
    """The classic bug: write a temporary file, rename it over the old one, no fsync."""
    mnt, backing = lazy.mountpoint, lazy.backing
    (mnt / "config.json").write_bytes(b'{"version": 1}')
    _fsync(mnt / "config.json")
    (mnt / "config.json.tmp").write_bytes(b'{"version": 2}')
    os.replace(mnt / "config.json.tmp", mnt / "config.json")
    assert (mnt / "config.json").read_bytes() == b'{"version": 2}'
    (mnt / "safe.json.tmp").write_bytes(b'{"version": 2}')
    _fsync(mnt / "safe.json.tmp")
    os.replace(mnt / "safe.json.tmp", mnt / "safe.json")
    lazy.cut_power()
    assert (backing / "config.json").read_bytes() == b""  # neither the old nor the new
    assert (backing / "safe.json").read_bytes() == b'{"version": 2}'
    assert sorted(p.name for p in backing.iterdir()) == ["config.json", "safe.json"]


def test_the_cache_follows_the_file_across_renames_links_and_unlinks(lazy: LazyMount) -> None:
    mnt, backing = lazy.mountpoint, lazy.backing
    (mnt / "a").write_bytes(b"dirty a")
    os.rename(mnt / "a", mnt / "b")
    assert (mnt / "b").read_bytes() == b"dirty a"
    (mnt / "a").write_bytes(b"a new file under the old name")
    os.link(mnt / "b", mnt / "b-link")
    with open(mnt / "b-link", "ab") as out:
        out.write(b" + more")
    assert (mnt / "b").read_bytes() == b"dirty a + more"
    _fsync(mnt / "b-link")  # one inode: syncing through either name syncs both
    (mnt / "doomed").write_bytes(b"x" * 50_000)
    held = open(mnt / "doomed", "rb")  # noqa: SIM115 - read after the unlink
    os.unlink(mnt / "doomed")
    assert held.read() == b"x" * 50_000  # an open, unlinked file still reads its data
    held.close()
    (mnt / "victim").write_bytes(b"dirty victim")
    (mnt / "winner").write_bytes(b"winner")
    _fsync(mnt / "winner")
    os.replace(mnt / "winner", mnt / "victim")  # the dirty file loses its last name
    assert (mnt / "victim").read_bytes() == b"winner"
    figures = lazy.cut_power()
    assert (backing / "b").read_bytes() == b"dirty a + more"
    assert (backing / "b-link").read_bytes() == b"dirty a + more"
    assert (backing / "a").read_bytes() == b""
    assert (backing / "victim").read_bytes() == b"winner"
    assert not (backing / "doomed").exists()
    # Only "a" had unsynced data at the cut: the unlinked and replaced files were forgotten.
    assert figures["files_discarded"] == 1


def test_random_writes_truncates_appends_and_handles_match_a_model(lazy: LazyMount) -> None:
    """Random write/truncate/O_APPEND/O_TRUNC/fsync sequences on several handles of one file,
    against a bytearray: the mount shows every write, the disk after the cut the last fsync."""
    seed = int(os.environ.get("SIGNAGE_LAZYFS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"SIGNAGE_LAZYFS_SEED={seed}")
    rng = random.Random(seed)
    path = lazy.mountpoint / "file"
    path.write_bytes(b"")
    now, durable = bytearray(), b""
    fds = [os.open(path, os.O_RDWR), os.open(path, os.O_RDWR), os.open(path, os.O_RDONLY)]
    append = os.open(path, os.O_WRONLY | os.O_APPEND)
    for step in range(400):
        action = rng.choice(["write", "write", "far", "truncate", "append", "otrunc", "fsync"])
        if action in ("write", "far"):
            offset = rng.randrange(len(now) + 1) if action == "write" else len(now) + 9000
            data = rng.randbytes(rng.choice([1, 100, 4096, 5000, 20_000]))
            os.pwrite(rng.choice(fds[:2]), data, offset)
            now.extend(bytes(max(0, offset + len(data) - len(now))))
            now[offset : offset + len(data)] = data
        elif action == "truncate":
            length = rng.randrange(len(now) + 6000)
            os.ftruncate(rng.choice(fds[:2]), length)
            now = now[:length] + bytearray(max(0, length - len(now)))
        elif action == "append":
            data = rng.randbytes(rng.randrange(1, 7000))
            os.write(append, data)
            now += data
        elif action == "otrunc" and rng.random() < 0.3:
            os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))
            now = bytearray()
        elif action == "fsync":
            os.fsync(rng.choice(fds))  # the read-only handle too
            durable = bytes(now)
        assert os.fstat(fds[2]).st_size == len(now), (step, action)
        if step % 10 == 0 or action == "fsync":
            assert os.pread(fds[2], len(now) + 10, 0) == now, (step, action)
    assert path.read_bytes() == now
    lazy.cut_power(unmount=False)
    for fd in [*fds, append]:
        os.close(fd)
    lazy.unmount()
    assert (lazy.backing / "file").read_bytes() == durable


_SQLITE_WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=" + sys.argv[2])
db.execute("PRAGMA wal_autocheckpoint=40")  # checkpoints (and WAL restarts) during the run
db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
n = 0
while True:
    n += 1
    db.execute("INSERT INTO t (id, body) VALUES (?, ?)", (n, "x" * (n % 700)))
    if n % 5 == 0:
        db.execute("DELETE FROM t WHERE id = ?", (n - 3,))
        print("deleted", n - 3, flush=True)
    print("committed", n, flush=True)
"""


def _sqlite_cut(lazy: LazyMount, synchronous: str) -> tuple[set[int], set[int], set[int], str]:
    """Run a writer child until it committed 300 rows, cut the power while it runs, and return
    (committed, deleted, rows found after the cut, integrity verdict)."""
    db = lazy.mountpoint / "plays.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", _SQLITE_WRITER, str(db), synchronous],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    committed: set[int] = set()
    deleted: set[int] = set()
    enough = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            what, number = line.split()
            (committed if what == "committed" else deleted).add(int(number))
            if len(committed) >= 300:
                enough.set()
        enough.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert enough.wait(60), "the writer did not get going"
    lazy.cut_power(unmount=False)  # while it writes: then the child dies with the machine
    child.kill()
    child.wait()
    reader.join()
    lazy.remount()
    check = sqlite3.connect(db, isolation_level=None)
    try:
        verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
        try:
            found = {row[0] for row in check.execute("SELECT id FROM t")}
        except sqlite3.OperationalError:  # the table itself was never synced
            found = set()
    finally:
        check.close()
    return committed, deleted, found, verdict


def test_sqlite_wal_with_synchronous_full_keeps_every_commit(lazy: LazyMount) -> None:
    started = time.monotonic()
    committed, deleted, found, verdict = _sqlite_cut(lazy, "FULL")
    assert verdict == "ok"
    assert committed - deleted <= found, sorted(committed - deleted - found)[:10]
    assert not (deleted & found), sorted(deleted & found)[:10]
    assert lazy.totals["fsyncs"] > 300 and time.monotonic() - started < 30


def test_sqlite_with_synchronous_off_loses_commits(lazy: LazyMount) -> None:
    """The cut bites: without fsync, rows the writer saw committed are gone after it."""
    committed, deleted, found, verdict = _sqlite_cut(lazy, "OFF")
    assert verdict == "ok"
    lost = committed - deleted - found
    assert len(lost) >= 100, (len(committed), len(found))
    assert lazy.totals["bytes_discarded"] > 0
