"""Power cuts under the board's storage layer: what a call reported as done survives the cut.

A child process (this file run as a script) works on a data dir that lives on a lazy mount
(tests/system/lazyfs.py: unsynced data is lost at a cut). It drives the real storage code the
way the board does: ContentStore (stage a bundle, fetch its assets chunk by chunk through the
resumable partial files or put them whole, finish, commit, drop abandoned downloads, evict),
PlayLog (slides started and closed, events, outbox entries read and acknowledged), the JSON
documents ``state`` and ``alerts`` (ContentStore.write_doc) and the service files of
signage.board.service (status snapshot and local blank switch, both by ``write_atomic``).
After each call returns, it prints what is now done to a pipe outside the mount.

At a random moment (seeded: ``SIGNAGE_POWERCUT_SEED`` replays the choices, every run prints its
seed) the power is cut and the child SIGKILLed at once, the mount comes back (the next boot)
and the data dir is checked:

- the committed pointer is readable and names a version at least as new as any the child
  reported committed (and never older than at the last check); its envelope is the one staged
  and every asset it names is there with its size and sha256; every stored asset hashes to its
  name; every download in progress is a prefix of its asset; every staged envelope is whole;
- the play log passes ``PRAGMA integrity_check``; every row reported started is there, every
  row reported closed is closed (not by recovery); no row seen before has gone or changed once
  closed; every outbox entry ever seen stays until acknowledged, acknowledged ones never come
  back, and every closed play has exactly one report (in the outbox or acknowledged);
- ``state.json`` and ``alerts.json`` parse and hold at least the last counter reported
  written, ``status.json`` too; the local blank switch is as last reported set (or as the call
  in flight at the cut left it).

Those durability checks are what a SIGKILL cannot test (tests/store/test_content.py): the page
cache survives a kill. ``SIGNAGE_POWERCUT_CUTS`` sets the number of cuts (a long run: 300).
The broken variants (os.fsync made a no-op in the child; the play log at synchronous=OFF) show
that the checks bite.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from signage.board.service import local_blank, read_status, set_local_blank, write_status
from signage.errors import StoreError
from signage.model import AssetRef, Bundle, parse_bundle
from signage.store import ContentStore, PlayLog
from tests.system.lazyfs import LazyMount

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

REPO = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PUBLISHER = "tinh-62"
QUOTA = 1_500_000  # bytes of assets: eviction runs
SIZES = (900, 6_000, 30_000, 120_000, 260_000)
CHUNKS = (8192, 32768, 65536)
CUTS = int(os.environ.get("SIGNAGE_POWERCUT_CUTS", "30"))
# Half the cuts land right after the k-th request of a kind (lazyfs arm), k drawn up to:
TRIGGERS = {"rename": 80, "fsync": 250, "write": 3000, "create": 80, "unlink": 40}


# -- the content: every version's bundle and assets follow from its number -------------------


@functools.lru_cache(maxsize=256)
def _blob(group: int, index: int) -> bytes:
    rng = random.Random(group * 1000 + index)
    return rng.randbytes(rng.choice(SIZES))


def _assets(version: int) -> dict[str, bytes]:
    """Asset name -> bytes of bundle ``version``: one to three images; every third version
    shares its first image with the version before (a download may resume across bundles)."""
    out: dict[str, bytes] = {}
    for index in range(1 + version % 3):
        group = version - 1 if index == 0 and version % 3 == 0 else version
        out[f"img-{index}.png"] = _blob(group, index)
    return out


def _sources(version: int) -> Iterator[tuple[int, int]]:
    for index in range(1 + version % 3):
        yield (version - 1 if index == 0 and version % 3 == 0 else version), index


def _refs(version: int) -> dict[str, AssetRef]:
    return {
        name: AssetRef(hashlib.sha256(data).hexdigest(), len(data), "image/png")
        for name, data in _assets(version).items()
    }


def _envelope(version: int) -> bytes:
    hashes = {name: ref.sha256 for name, ref in _refs(version).items()}
    return json.dumps({"version": version, "assets": hashes}, sort_keys=True).encode()


def _bundle(version: int) -> Bundle:
    return parse_bundle(
        {
            "bundle": 1,
            "publisher": PUBLISHER,
            "version": version,
            "issued": "2026-11-26T17:00:00+07:00",
            "area": "62",
            "items": [{"id": "a", "template": "text-only", "fields": {"body": "x"}}],
            "assets": {
                name: {"sha256": ref.sha256, "size": ref.size, "media_type": ref.media_type}
                for name, ref in _refs(version).items()
            },
        }
    )


def _count(doc: object) -> int:
    value = doc.get("n") if isinstance(doc, dict) else None
    return value if isinstance(value, int) else 0


# -- the child: the board's storage at work -------------------------------------------------


def _no_fsync(fd: FileDescriptorLike) -> None:
    """The deliberately broken variant's os.fsync."""


def _child(data: Path, seed: int, broken: str) -> None:  # pragma: no cover - a subprocess
    if broken == "no-fsync":
        os.fsync = _no_fsync
    rng = random.Random(seed)

    def say(*words: object) -> None:
        print(*words, flush=True)  # only once the call before returned

    store = ContentStore(data / "store", quota_bytes=QUOTA)
    log = PlayLog(data / "plays.sqlite", TZ)
    if broken == "sync-off":
        log._db.execute("PRAGMA synchronous=OFF")
    say("recovered", log.recover(datetime.now(TZ)))
    version = store.versions().get(PUBLISHER, 0) + 1
    shown = 0
    on_screen: int | None = None
    say("ready")
    while True:
        roll = rng.random()
        now = datetime.now(TZ)
        if roll < 0.35:
            version = _apply(store, version, rng, say)
        elif roll < 0.6:  # the next slide: the one on screen ends, a new one starts
            if on_screen is not None:
                log.end(on_screen, now)
                say("end", on_screen)
                on_screen = None
            if rng.random() < 0.85:
                item = f"it-{seed}-{shown}"
                shown += 1
                planned = now + timedelta(seconds=rng.choice([5, 10, 30]))
                reason = rng.choice(["scheduled", "emergency", "idle"])
                on_screen = log.start(item, "announcement", reason, now, planned)
                say("start", on_screen, item)
        elif roll < 0.7:
            say("event", log.event("probe", now, k=rng.randrange(1000)))
        elif roll < 0.8:  # the hub acknowledged the oldest entries
            entries = log.pending(rng.randrange(1, 30))
            if entries:
                items = [e.data.get("item") if e.kind == "play" else "-" for e in entries]
                say("pending", *(f"{e.seq}:{item}" for e, item in zip(entries, items, strict=True)))
                chosen = [e.seq for e in entries[: rng.randrange(1, len(entries) + 1)]]
                say("acking", *chosen)
                log.acknowledge(chosen)
                say("ack", *chosen)
        elif roll < 0.88:
            name = rng.choice(["state", "alerts"])
            n = _count(store.read_doc(name)) + 1
            body: dict[str, Any] = {"seq": {PUBLISHER: n}} if name == "state" else {"alerts": []}
            store.write_doc(name, {"n": n, **body})
            say("doc", name, n)
        elif roll < 0.95:
            previous = read_status(data)
            n = _count(previous[0]) + 1 if previous else 1
            write_status(data, {"n": n, "showing": f"{PUBLISHER}@{version - 1}"})
            say("status", n)
        else:
            state = f"on:b{seed}-{rng.randrange(10**6)}" if rng.random() < 0.5 else "off"
            say("blank-begin", state)
            set_local_blank(data, state != "off", state[3:], notify=False)
            say("blank", state)


def _apply(
    store: ContentStore, version: int, rng: random.Random, say: Callable[..., None]
) -> int:  # pragma: no cover - runs in the child
    """Stage bundle ``version``, fetch what it lacks as the link does, commit it; return the
    next version to apply (a bundle is sometimes superseded before its assets arrived)."""
    bundle = _bundle(version)
    store.stage(bundle, _envelope(version))
    say("staged", version)
    blobs = {hashlib.sha256(d).hexdigest(): d for d in _assets(version).values()}
    for ref in store.missing(bundle):
        data = blobs[ref.sha256]
        if rng.random() < 0.15:
            store.put_asset(ref, data)
            continue
        chunk = rng.choice(CHUNKS)
        for offset in range(store.partial_size(ref.sha256), len(data), chunk):
            if rng.random() < 0.03:
                say("abandoned", version)
                return version + 1
            store.append_partial(ref.sha256, offset, data[offset : offset + chunk])
        store.finish_partial(ref)
    store.commit(bundle)
    say("committed", version)
    needed = {ref.sha256 for ref in bundle.assets.values()}
    if rng.random() < 0.5:
        store.drop_partials(needed)
    store.evict(needed)
    return version + 1


# -- the parent: what the children reported, and the checks after each cut ----------------


@dataclass
class Ledger:
    """What the children reported done, and what the last check found on the disk."""

    committed: int = 0  # the newest version reported committed
    seen_version: int = 0  # the committed version found at the last check
    staged: int = 0
    started: dict[int, str] = field(default_factory=dict)  # play row -> item
    ended: set[int] = field(default_factory=set)
    outbox: dict[int, str] = field(default_factory=dict)  # seq -> play item, "-" for events
    acking: set[int] = field(default_factory=set)  # acknowledge() called, not known returned
    acked: set[int] = field(default_factory=set)
    acked_items: set[str] = field(default_factory=set)
    rows: dict[int, tuple[datetime | None, float | None]] = field(default_factory=dict)
    docs: dict[str, int] = field(default_factory=dict)
    status: int = 0
    blank: str = "off"
    blank_begun: str | None = None
    known: dict[str, tuple[int, int]] = field(default_factory=dict)  # asset hash -> source
    known_upto: int = 0

    def learn(self, lines: list[str], tally: Counter[str]) -> None:
        for line in lines:
            word, *rest = line.split()
            tally[word] += 1
            if word == "committed":
                self.committed = max(self.committed, int(rest[0]))
            elif word == "staged":
                self.staged = max(self.staged, int(rest[0]))
            elif word == "start":
                self.started[int(rest[0])] = rest[1]
            elif word == "end":
                self.ended.add(int(rest[0]))
            elif word == "event":
                self.outbox[int(rest[0])] = "-"
            elif word == "pending":
                for token in rest:
                    seq, item = token.split(":", 1)
                    self.outbox[int(seq)] = item
            elif word == "acking":
                for number in map(int, rest):
                    self.acking.add(number)
                    if self.outbox.get(number, "-") != "-":
                        self.acked_items.add(self.outbox[number])
            elif word == "ack":
                self.acked.update(map(int, rest))
                self.acking.difference_update(map(int, rest))
            elif word == "doc":
                self.docs[rest[0]] = max(self.docs.get(rest[0], 0), int(rest[1]))
            elif word == "status":
                self.status = max(self.status, int(rest[0]))
            elif word == "blank-begin":
                self.blank_begun = rest[0]
            elif word == "blank":
                self.blank, self.blank_begun = rest[0], None

    def source_of(self, sha256: str) -> bytes | None:
        """Return the bytes of the asset with hash ``sha256`` (any version staged so far)."""
        while self.known_upto < self.staged + 2:
            self.known_upto += 1
            for group, index in _sources(self.known_upto):
                self.known[hashlib.sha256(_blob(group, index)).hexdigest()] = (group, index)
        source = self.known.get(sha256)
        return _blob(*source) if source else None


class Checker:
    """Counts the invariants checked and keeps the failures."""

    def __init__(self, cut: int) -> None:
        self.cut = cut
        self.checks = 0
        self.failures: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        self.checks += 1
        if not ok:
            self.failures.append(f"cut {self.cut}: {what}")


def _check_content(data: Path, ledger: Ledger, check: Checker) -> None:
    store = ContentStore(data / "store", readonly=True)  # look, do not sweep
    try:
        version: int | None = store.versions().get(PUBLISHER, 0)
    except StoreError as exc:
        check.expect(False, f"the committed pointer is unreadable: {exc}")
        version = None
    if version is not None:
        check.expect(
            version >= ledger.committed,
            f"committed version {version}, but {ledger.committed} was reported committed",
        )
        check.expect(version >= ledger.seen_version, f"version went back to {version}")
        ledger.seen_version = max(ledger.seen_version, version)
    if version:
        try:
            envelope: bytes | None = store.envelope(PUBLISHER, version)
        except StoreError:
            envelope = None
        check.expect(envelope == _envelope(version), f"envelope of committed {version} wrong")
        for name, ref in _refs(version).items():
            path = store.asset_path(ref.sha256)
            held = path.read_bytes() if path.is_file() else b""
            check.expect(
                len(held) == ref.size and hashlib.sha256(held).hexdigest() == ref.sha256,
                f"asset {name} of committed version {version}: {len(held)} of {ref.size} bytes"
                + ("" if held else " (missing or empty)"),
            )
    for path in sorted(store.assets.glob("[!.]*")):  # .NAME.PID.part: scratch, swept at open
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        check.expect(digest == path.name, f"stored asset {path.name[:12]} does not match it")
    for path in sorted(store.partial.iterdir()):
        held = path.read_bytes()
        whole = ledger.source_of(path.name) if held else b""
        check.expect(
            whole is not None and whole.startswith(held),
            f"download {path.name[:12]} ({len(held)} bytes) is not a prefix of its asset",
        )
    staged = store.bundles / PUBLISHER
    for path in sorted(staged.iterdir()) if staged.is_dir() else []:
        if path.name.isdigit():
            check.expect(
                path.read_bytes() == _envelope(int(path.name)),
                f"staged envelope {path.name} is not whole",
            )
    for name in ("state", "alerts"):
        try:
            n = _count(store.read_doc(name))
        except StoreError as exc:
            check.expect(False, f"{name}.json is unreadable: {exc}")
            continue
        reported = ledger.docs.get(name, 0)
        check.expect(n >= reported, f"{name}.json holds {n}, {reported} was reported written")
        ledger.docs[name] = n


def _check_service(data: Path, ledger: Ledger, check: Checker) -> None:
    status = read_status(data)
    n = _count(status[0]) if status else 0
    check.expect(n >= ledger.status, f"status.json holds {n}, {ledger.status} reported written")
    ledger.status = n
    blank = local_blank(data)
    state = f"on:{blank.get('by')}" if blank else "off"
    allowed = {ledger.blank, ledger.blank_begun or ledger.blank}
    check.expect(state in allowed, f"local blank is {state}, expected one of {sorted(allowed)}")
    ledger.blank, ledger.blank_begun = state, None


def _check_playlog(data: Path, ledger: Ledger, check: Checker) -> None:
    log = PlayLog(data / "plays.sqlite", TZ)  # what the next boot opens
    try:
        verdict = log.check()
        plays = {p.row: p for p in log.plays(limit=10**7)}
        outbox = {r.seq: r for r in log.pending(10**7)}
    finally:
        log.close()
    check.expect(verdict == "ok", f"play log integrity: {verdict}")
    for row, item in ledger.started.items():
        play = plays.get(row)
        check.expect(play is not None and play.item_id == item, f"play {row} ({item}) is gone")
    for row in ledger.ended:
        play = plays.get(row)
        check.expect(
            play is not None and play.ended is not None and not play.interrupted,
            f"play {row} was reported closed but is not: {play}",
        )
    for row, (ended, seconds) in ledger.rows.items():
        play = plays.get(row)
        check.expect(play is not None, f"play {row} seen at the last check is gone")
        if play is not None and ended is not None:
            check.expect((play.ended, play.seconds) == (ended, seconds), f"play {row} changed")
    for seq in ledger.acked:
        check.expect(seq not in outbox, f"outbox entry {seq} was acknowledged but is back")
    for seq, item in ledger.outbox.items():
        if seq not in ledger.acked and seq not in ledger.acking:
            check.expect(seq in outbox, f"outbox entry {seq} ({item}) was lost")
    reports = Counter(str(r.data.get("item")) for r in outbox.values() if r.kind == "play")
    check.expect(all(n == 1 for n in reports.values()), "a play is in the outbox twice")
    for play in plays.values():
        if play.ended is not None:
            check.expect(
                play.item_id in reports or play.item_id in ledger.acked_items,
                f"closed play {play.row} ({play.item_id}) has no report",
            )
    # What is on the disk now is the base of the next round.
    ledger.rows = {row: (p.ended, p.seconds) for row, p in plays.items()}
    ledger.acked.update(seq for seq in ledger.acking if seq not in outbox)
    ledger.acking.clear()
    for seq, report in outbox.items():
        ledger.outbox[seq] = str(report.data.get("item")) if report.kind == "play" else "-"


@dataclass
class Run:
    seed: int
    cuts: int = 0
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)
    totals: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    scratch: int = 0  # write_atomic's temporary files left in the data dir by cuts

    def describe(self) -> str:
        t = self.tally
        return (
            f"seed {self.seed}: {self.cuts} cuts in {self.seconds:.1f} s;"
            f" {self.totals.get('bytes_discarded', 0):,} unsynced bytes discarded"
            f" ({self.totals.get('files_discarded', 0)} files),"
            f" {self.totals.get('fsyncs', 0):,} fsyncs,"
            f" {self.totals.get('bytes_synced', 0):,} bytes synced,"
            f" {self.totals.get('refused', 0)} requests refused after cuts;"
            f" {self.totals.get('armed_cut', 0)} cuts right after a chosen request;"
            f" children reported {t['committed']} commits ({t['abandoned']} abandoned),"
            f" {t['start']} plays started, {t['end']} closed, {t['event']} events,"
            f" {t['ack']} acknowledgements, {t['doc']} documents, {t['status']} status"
            f" snapshots, {t['blank']} blank switches;"
            f" {self.checks:,} invariants checked, {len(self.failures)} failures;"
            f" {self.scratch} scratch files of service.write_atomic left in the data dir"
        )


def run_powercuts(
    root: Path, cuts: int, seed: int, *, broken: str = "", stop_at_failure: bool = False
) -> Run:
    """Cut the power ``cuts`` times under a working child; check after every cut."""
    rng = random.Random(seed)
    run = Run(seed)
    ledger = Ledger()
    data = root / "mnt" / "data"
    began = time.monotonic()
    with LazyMount(root / "disk", root / "mnt") as fs:
        for cut in range(1, cuts + 1):
            check = Checker(cut)
            trigger: tuple[str, int] | None = None
            in_startup = rng.random() < 0.1
            delay = rng.uniform(0.0, 0.3) if in_startup else rng.uniform(0.02, 1.0)
            if rng.random() < 0.5:  # right after the k-th request of a kind, or at 1.5 s
                request = rng.choice(sorted(TRIGGERS))
                trigger, delay = (request, rng.randrange(1, TRIGGERS[request] + 1)), 1.5
            if broken:
                delay = max(delay, 0.3)  # let it do some work before the first check
            seed = rng.randrange(2**32)
            lines = _work_then_cut(fs, data, seed, broken, delay, in_startup, trigger)
            if isinstance(lines, str):
                check.expect(False, lines)
                lines = []
            ledger.learn(lines, run.tally)
            _check_content(data, ledger, check)
            _check_service(data, ledger, check)
            _check_playlog(data, ledger, check)
            run.cuts, run.checks = cut, run.checks + check.checks
            run.failures += check.failures
            if stop_at_failure and run.failures:
                break
        run.scratch = sum(1 for p in data.glob(".*.json.*") if p.is_file())
    run.totals = dict(fs.totals)
    run.seconds = time.monotonic() - began
    return run


def _work_then_cut(
    fs: LazyMount,
    data: Path,
    seed: int,
    broken: str,
    delay: float,
    in_startup: bool,
    trigger: tuple[str, int] | None,
) -> list[str] | str:
    """Run a child for ``delay`` seconds (from its start, or from when it is ready) or until
    the armed ``trigger`` cut the power, cut it (if still on), SIGKILL the child and boot
    again; return the child's lines (or why it failed by itself)."""
    data.mkdir(parents=True, exist_ok=True)
    if trigger is not None:
        fs.arm(*trigger)
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, __file__, "child", str(data), str(seed), broken],
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            text=True,
        )
        lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert child.stdout is not None
            for line in child.stdout:
                if line.endswith("\n"):  # a line torn by the kill proves nothing
                    lines.append(line[:-1])
                if line == "ready\n":
                    ready.set()
            ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if not in_startup and trigger is None:
            ready.wait(30)
        deadline = time.monotonic() + delay
        fired = False
        while not fired and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.01 if trigger else left))
            fired = trigger is not None and fs.stats()["cut"] == 1
        died = None if fired else child.poll()  # after a cut it may die of EIO: fine
        fs.cut_power(unmount=False)
        child.kill()
        child.wait()
        reader.join(30)
        assert child.stdout is not None
        child.stdout.close()
        fs.remount()
        if died is not None:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-1500:]
            return f"the child ended by itself ({died}) before the cut: {tail}"
    return [line for line in lines if line and line != "ready"]


def _seed() -> int:
    seed = int(os.environ.get("SIGNAGE_POWERCUT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"SIGNAGE_POWERCUT_SEED={seed}")
    return seed


@pytest.mark.usefixtures("lazy_ok")
def test_storage_keeps_what_it_reported_done_across_power_cuts(tmp_path: Path) -> None:
    run = run_powercuts(tmp_path, CUTS, _seed())
    print(run.describe())
    assert not run.failures, "\n".join([run.describe(), *run.failures[:20]])
    if CUTS >= 10:  # not vacuous: the cuts hit real work, and unsynced data was thrown away
        assert run.tally["committed"] >= 3 and run.tally["start"] >= 3, run.describe()
        assert run.tally["ack"] >= 1 and run.tally["doc"] >= 1, run.describe()
        assert run.totals["bytes_discarded"] > 0 and run.totals["armed_cut"] > 0, run.describe()


@pytest.mark.slow
@pytest.mark.usefixtures("lazy_ok")
@pytest.mark.parametrize("broken", ["no-fsync", "sync-off"])
def test_the_checks_catch_a_missing_fsync(tmp_path: Path, broken: str) -> None:
    """os.fsync made a no-op in the child (store and service files), or the play log at
    synchronous=OFF: the checks after a cut must find lost data within a few cuts."""
    run = run_powercuts(tmp_path, 6, _seed(), broken=broken, stop_at_failure=True)
    print(run.describe())
    print("\n".join(run.failures[:10]))
    assert run.failures, f"{broken}: no failure found in {run.cuts} cuts: {run.describe()}"
    assert not any("ended by itself" in f for f in run.failures[:1]), run.failures[0]


if __name__ == "__main__":  # the child: python test_powercut.py child DATA SEED [BROKEN]
    _child(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
