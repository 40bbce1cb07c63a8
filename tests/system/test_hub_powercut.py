"""Power cuts under the hub's registry: what the hub acknowledged survives.

The hub writes report batches without waiting for the disk and acknowledges them only after
``Registry.sync()`` (one fsync of the SQLite WAL for every batch of the last moment: group
commit); publishes commit with ``synchronous=FULL``. A child process (this file run as a
script) does that on a registry that lives on a lazy mount (tests/system/lazyfs.py: unsynced
data is lost at a cut), printing what it would acknowledge only after the call that makes it
durable returned. At a random moment the power is cut and the child SIGKILLed; after the next
boot every report it acknowledged and every bundle it accepted must be in the registry, which
must pass SQLite's integrity check. Enough reports go through for SQLite's automatic
checkpoints to run between syncs, which is what the WAL-fsync argument in
``SqliteRegistry.sync`` depends on.

The broken variant acknowledges without calling ``sync()``: the same checks must then find
lost reports, or the cut does not bite. ``SIGNAGE_POWERCUT_HUB_CUTS`` sets the number of cuts.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from signage.hub.registry import SqliteRegistry, StoredBundle
from tests.system.lazyfs import LazyMount

REPO = Path(__file__).resolve().parents[2]
CUTS = int(os.environ.get("SIGNAGE_POWERCUT_HUB_CUTS", "8"))
BOARD = "kt-01"
PAD = "x" * 600  # a report entry of about a kilobyte: checkpoints come every ~4,000 entries


def _child(data: Path, seed: int, broken: bool) -> None:  # pragma: no cover - a subprocess
    rng = random.Random(seed)
    registry = SqliteRegistry(data / "registry.sqlite")
    if registry.board(BOARD) is None:
        registry.add_board(BOARD, "Bảng chợ", "62/23456", time.time())
    db = sqlite3.connect(data / "registry.sqlite")
    seq = int(db.execute("SELECT coalesce(max(seq), 0) FROM reports").fetchone()[0])
    version = int(db.execute("SELECT coalesce(max(version), 0) FROM bundles").fetchone()[0])
    db.close()
    print("ready", flush=True)
    while True:
        for _ in range(rng.randint(1, 8)):  # the batches of one group commit
            entries = [
                {"seq": seq + n, "kind": "play", "at": f"t{seq + n}",
                 "data": {"item": "tinh-62/v1-a", "day": "2026-12-04", "seconds": 10, "pad": PAD}}
                for n in range(1, rng.randint(2, 20))
            ]  # fmt: skip
            registry.add_reports(BOARD, entries, time.time())
            seq += len(entries)
        if not broken:
            registry.sync()
        print(f"acked {seq}", flush=True)
        if rng.random() < 0.1:
            version += 1
            envelope = json.dumps({"v": version}).encode()
            registry.put_bundle(StoredBundle("tinh-62", version, "62", (), envelope, time.time()))
            print(f"bundle {version}", flush=True)


def _life(fs: LazyMount, data: Path, seed: int, broken: bool, rng: random.Random) -> list[str]:
    """Run a child for a while, cut the power, kill it, boot again; return its lines."""
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            [sys.executable, __file__, "child", str(data), str(seed), "broken" if broken else ""],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + 30
        while child.poll() is None and time.monotonic() < deadline:
            out.seek(0)
            if b"ready\n" in out.read():
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.1, 1.5))
        died = child.poll()
        fs.cut_power(unmount=False)
        child.kill()
        child.wait()
        fs.remount()
        out.seek(0)
        text = out.read().decode(errors="replace")
    assert died is None, f"the child ended by itself ({died}):\n{text[-2000:]}"
    return [line for line in text.split("\n")[:-1] if line and line != "ready"]  # whole lines


def _check(data: Path, lines: list[str], acked: int, bundles: int) -> tuple[int, int, list[str]]:
    """Return the highest acked seq and bundle version reported so far, and what was lost."""
    for line in lines:
        word, number = line.split(" ", 1)
        if word == "acked":
            acked = max(acked, int(number))
        elif word == "bundle":
            bundles = max(bundles, int(number))
    db = sqlite3.connect(data / "registry.sqlite")
    try:
        problems = []
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            problems.append(f"integrity: {integrity}")
        have = {row[0] for row in db.execute("SELECT seq FROM reports")}
        lost = [seq for seq in range(1, acked + 1) if seq not in have]
        if lost:
            problems.append(f"{len(lost)} acknowledged reports lost (seq {lost[0]}...{lost[-1]})")
        top = db.execute("SELECT coalesce(max(version), 0) FROM bundles").fetchone()[0]
        if top < bundles:
            problems.append(f"bundle {bundles} accepted, the registry has {top}")
    finally:
        db.close()
    return acked, bundles, problems


def _run(root: Path, cuts: int, seed: int, broken: bool) -> tuple[list[str], int, int]:
    rng = random.Random(seed)
    data = root / "m"
    acked = bundles = 0
    problems: list[str] = []
    with LazyMount(root / "b", data) as fs:
        for cut in range(1, cuts + 1):
            lines = _life(fs, data, rng.randrange(2**32), broken, rng)
            acked, bundles, found = _check(data, lines, acked, bundles)
            problems += [f"cut {cut}: {p}" for p in found]
            if found and broken:
                break
    return problems, acked, bundles


@pytest.mark.usefixtures("lazy_ok")
def test_what_the_hub_acknowledged_survives_a_power_cut(tmp_path: Path) -> None:
    seed = int(os.environ.get("SIGNAGE_POWERCUT_SEED") or random.SystemRandom().randrange(2**32))
    problems, acked, bundles = _run(tmp_path, CUTS, seed, broken=False)
    print(f"hub power cuts: seed {seed}, {CUTS} cuts, {acked} reports and {bundles} bundles")
    assert not problems, f"seed {seed}: {problems}"
    assert acked > 5_000, "too few reports for checkpoints to run between syncs"


@pytest.mark.usefixtures("lazy_ok")
def test_acknowledging_before_the_sync_loses_reports(tmp_path: Path) -> None:
    problems, _, _ = _run(tmp_path, 6, 4, broken=True)
    assert any("acknowledged reports lost" in p for p in problems), problems


if __name__ == "__main__":  # the child: python test_hub_powercut.py child DATA SEED [broken]
    _child(Path(sys.argv[2]), int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "broken")
