"""Network faults end to end (issue 7, item 2): boards reach a real hub through a fault proxy
(tests/system/faultproxy.py) that drops, refuses, delays, truncates and corrupts, and the hub is
restarted under them. Whatever the link does, a board shows only signed and complete content,
never goes back to an older version, reconnects with backoff instead of storming, resumes its
downloads and converges on the newest bundle once the link is good again; a real headless
player keeps showing slides, never a black frame, while its link flaps.

The default run takes about a minute. ``SIGNAGE_NETFAULT_S=600`` makes every fault phase last
that long (docs/reliability.md has the figures of such a run); ``SIGNAGE_NETFAULT_SEED`` picks
another seed for the proxy, the publishers' images and the boards' jitter.

Time is scaled for the in-process boards: their backoff is 0.05 s doubling up to 2 s (a real
board: 1 s up to 300 s), so that a few seconds of faults hold several reconnects and the board
comes back within seconds of the link. The real player in the last test has the real backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import random
import re
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from signage.board.folder import Programme
from signage.board.link import Backoff
from signage.errors import SignageError
from signage.hub import server as server_module
from signage.hub.channel import BoardChannel
from signage.hub.publish import build_bundle
from signage.hub.server import Hub, HubConfig
from signage.layout import LayoutLibrary
from signage.model import AssetRef
from signage.protocol import PrivateKey, Trust, accept_bundle
from signage.store import ContentStore
from tests.board.linkkit import ISSUED, TZ, Board, Hooks, library, make_board, signed_text_bundle
from tests.hub.hubkit import Rig
from tests.system.faultproxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("SIGNAGE_NETFAULT_S", "0") or 0)
SEED = int(os.environ.get("SIGNAGE_NETFAULT_SEED", "20261204"))
OUT = os.environ.get("SIGNAGE_NETFAULT_OUT")  # append each test's figures (JSON lines) here
AREA = "62/23456"
BACKOFF_BASE_S = 0.05  # scaled: a real board waits 1 s doubling up to 300 s
BACKOFF_CAP_S = 2.0
BLACK_LEVEL = 12  # a pixel this dark (0-255 luma) counts as black


def phase(default_s: float) -> float:
    """Return how long a fault phase lasts: ``default_s``, or SIGNAGE_NETFAULT_S when set."""
    return SECONDS if SECONDS > 0 else default_s


def report(name: str, figures: dict[str, Any]) -> None:
    """Print a test's figures (pytest -s shows them) and append them to SIGNAGE_NETFAULT_OUT."""
    line = json.dumps({"test": name, "seed": SEED, "fault_s": SECONDS or None, **figures})
    print(f"\nnetfault {line}")
    if OUT:
        with open(OUT, "a", encoding="utf-8") as out:
            out.write(line + "\n")


# -- the hub, restartable on its port and data dir -----------------------------------------------


class HubSite:
    """A real hub on 127.0.0.1 that can be stopped and started again on the same port and data
    dir, with a hubkit Rig (tokens, keys, publishers) that follows it."""

    def __init__(self, root: Path, **config: Any) -> None:
        settings = {
            "host": "127.0.0.1",
            "port": 0,
            "data_dir": root / "hub",
            "heartbeat_s": 5,
            "screenshot_every_s": 0,
            **config,
        }
        self.config = HubConfig(**settings)
        self.rig = Rig(Hub(self.config), root)
        self.running = False
        self.restarts = 0

    @property
    def hub(self) -> Hub:
        return self.rig.hub

    @property
    def port(self) -> int:
        return self.hub.port

    async def start(self) -> None:
        await self.hub.start()
        self.config = dataclasses.replace(self.config, port=self.hub.port)
        self.running = True

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await self.hub.stop()

    async def restart(self, down_s: float = 0.3) -> Hub:
        """Stop the hub, wait ``down_s``, start a new one on the same port and data dir."""
        await self.stop()
        await asyncio.sleep(down_s)
        self.rig.hub = Hub(self.config)
        await self.start()
        self.restarts += 1
        return self.hub


@contextlib.asynccontextmanager
async def hub_site(root: Path, **config: Any) -> AsyncIterator[HubSite]:
    site = HubSite(root, **config)
    await site.start()
    try:
        yield site
    finally:
        for board_id in list(site.rig.boards):
            await site.rig.stop_board(board_id)
        await site.stop()


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> list[BoardChannel]:
    """Every BoardChannel the hub opens (the hub forgets them when their board goes away)."""
    opened: list[BoardChannel] = []

    class Recorded(BoardChannel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(server_module, "BoardChannel", Recorded)
    return opened


# -- content --------------------------------------------------------------------------------------


class Publisher:
    """Builds bundles of noise PNGs (new bytes for every version unless shared) and pushes them
    through the hub's /publish, a fresh connection each time (the hub may have restarted)."""

    def __init__(self, site: HubSite, key: PrivateKey, root: Path, side: int = 300) -> None:
        self.site = site
        self.key = key
        self.root = root
        self.side = side
        self.library: LayoutLibrary = library()
        self.version = 0
        self.pushed: list[tuple[int, float]] = []  # version, when (monotonic)
        self.sources: dict[tuple[int, int], int] = {}  # (version, image) -> version of its bytes

    def build(self, version: int, images: int, shared: int) -> tuple[bytes, Path]:
        """Return the signed bundle ``version`` and its assets folder. Its first ``shared``
        images are the previous version's, byte for byte; the others are new noise."""
        folder = self.root / f"src-{version}"
        folder.mkdir(parents=True, exist_ok=True)
        items = []
        for index in range(images):
            source = self.sources.get((version - 1, index), version) if index < shared else version
            self.sources[(version, index)] = source
            rng = random.Random(f"{SEED}/{self.key.key_id}/{source}/{index}")
            side = self.side + 16 * index
            noise = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
            noise.save(folder / f"nhieu-{index}.png", compress_level=1)
            items.append(
                {
                    "id": f"anh-v{version}-{index}",
                    "template": "fullscreen-image",
                    "duration_s": 1,
                    "fields": {"image": f"nhieu-{index}.png"},
                }
            )
        items.append(
            {
                "id": f"tin-v{version}",
                "template": "news-photo",
                "duration_s": 1,
                "fields": {
                    "title": f"Bản tin thử đường truyền số {version}",
                    "image": "nhieu-0.png",
                    "caption": "Ảnh nhiễu: mỗi phiên bản một ảnh mới.",
                },
            }
        )
        (folder / "items.json").write_text(json.dumps(items, ensure_ascii=False), "utf-8")
        built = self.root / "built" / f"bundle-{version}.json"
        built.parent.mkdir(parents=True, exist_ok=True)
        build_bundle(
            folder,
            built,
            publisher=self.key.key_id,
            version=version,
            area=AREA,
            issued=ISSUED,
            library=self.library,
            tz=TZ,
        )
        return self.key.sign(built.read_bytes()), built.parent / "assets"

    async def push(self, images: int = 2, shared: int = 0) -> tuple[int, dict[str, str]]:
        """Build and publish the next version; return it and the per-board outcomes."""
        self.version += 1
        envelope, assets = await asyncio.to_thread(self.build, self.version, images, shared)
        async with self.site.rig.publisher(self.key.key_id) as client:
            result = await client.push_bundle(envelope, assets)
        self.pushed.append((self.version, time.monotonic()))
        return self.version, {b["board"]: b["outcome"] for b in result["boards"]}


class TextPublisher:
    """Publishes small signed text bundles (no assets)."""

    def __init__(self, site: HubSite, key: PrivateKey) -> None:
        self.site = site
        self.key = key
        self.version = 0

    async def push(self) -> int:
        self.version += 1
        envelope = signed_text_bundle(self.key, self.version, f"Thông báo số {self.version}", AREA)
        async with self.site.rig.publisher(self.key.key_id) as client:
            await client.publish("bundle", envelope)
        return self.version


# -- watching a board -----------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RecordingBackoff(Backoff):
    """The link's own Backoff, noting every wait it hands out and every doubling a connection
    that stayed up paid back."""

    def __init__(self, rng: random.Random, base: float, cap: float) -> None:
        super().__init__(rng, base=base, cap=cap)
        self.waits: list[tuple[float, int, float, float]] = []  # at, attempt, ceiling, delay
        self.credited = 0

    def next(self) -> float:
        attempt, ceiling = self.attempt, self.ceiling()
        delay = super().next()
        self.waits.append((time.monotonic(), attempt, ceiling, delay))
        return delay

    def credit(self, seconds_up: float) -> None:
        before = self.attempt
        super().credit(seconds_up)
        self.credited += before - self.attempt


class CheckingHooks(Hooks):
    """The board's hooks, checking each programme the link hands over: every asset it names is
    on disk with the right hash, and it is what the store has committed."""

    def __init__(self, board: Board) -> None:
        super().__init__(board.sync)
        self.problems: list[str] = []
        self.versions_seen: list[dict[str, int]] = []

    async def content_changed(self) -> None:
        await super().content_changed()
        programme: Programme = self.programme
        versions = dict(self.sync.store.versions())
        self.versions_seen.append(versions)
        for sha, path in programme.assets.items():
            if not Path(path).is_file() or sha256_of(Path(path)) != sha:
                self.problems.append(f"programme {programme.source} names a bad asset {sha}")
        expected = ", ".join(f"{p}@{v}" for p, v in sorted(versions.items()))
        if programme.source != expected:
            self.problems.append(f"programme {programme.source!r} is not the store's {expected!r}")
        for item in programme.items:
            image = item.fields.get("image")
            if isinstance(image, str) and image not in programme.assets:
                self.problems.append(f"{item.id} shows {image}, not in the programme's assets")


class Auditor:
    """Looks at a board's store from outside, every few milliseconds while the faults go on:
    every committed bundle verifies against the board's trust, every asset it names is stored
    with its hash, and no publisher's version ever goes back."""

    def __init__(self, store: ContentStore, trust: Trust) -> None:
        self.store = store
        self.trust = trust
        self.verified: set[str] = set()
        self.last: dict[str, int] = {}
        self.problems: list[str] = []
        self.samples = 0
        self.commits = 0  # version changes seen
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        store = self.store
        versions = dict(store.versions())
        for publisher, version in versions.items():
            if version < self.last.get(publisher, 0):
                self.problems.append(f"{publisher} went back from {self.last[publisher]}")
            try:
                envelope = store.envelope(publisher, version)
            except SignageError:
                if store.versions().get(publisher) != version:
                    continue  # a newer commit dropped this envelope between the two reads
                self.problems.append(f"{publisher}@{version} committed without its envelope")
                continue
            try:
                bundle = accept_bundle(envelope, self.trust, {}, TZ, AREA)
            except SignageError as exc:
                self.problems.append(f"{publisher}@{version} committed but does not verify: {exc}")
                continue
            for ref in bundle.assets.values():
                self._asset(publisher, version, ref)
            if version != self.last.get(publisher):
                self.commits += 1
        for publisher in self.last:
            if publisher not in versions:
                self.problems.append(f"{publisher} disappeared from the committed pointer")
        self.last = versions
        self.samples += 1

    def _asset(self, publisher: str, version: int, ref: AssetRef) -> None:
        if ref.sha256 in self.verified:
            return
        path = self.store.asset_path(ref.sha256)
        try:
            data = path.read_bytes()
        except OSError:
            self.problems.append(f"{publisher}@{version} committed without asset {ref.sha256}")
            return
        if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
            self.problems.append(f"{publisher}@{version}: asset {ref.sha256} has wrong bytes")
            return
        self.verified.add(ref.sha256)

    async def _run(self, period_s: float) -> None:
        while True:
            try:
                self.check()
            except Exception as exc:  # the audit itself must not die silently
                self.problems.append(f"audit failed: {exc!r}")
            await asyncio.sleep(period_s)

    def start(self, period_s: float = 0.02) -> None:
        self._task = asyncio.create_task(self._run(period_s))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.check()


class LogCounter(logging.Handler):
    """Counts the board's and hub's warnings by their event (first words of the message)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: Counter[str] = Counter()
        self.link_down: Counter[str] = Counter()  # why the board's connections ended
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.events[" ".join(message.split()[:2])] += 1
        if message.startswith("link down reason="):
            reason = message.removeprefix("link down reason=").rsplit(" retry_in_s=", 1)[0]
            self.link_down[reason[:60]] += 1
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


@contextlib.contextmanager
def counting_logs() -> Iterator[LogCounter]:
    counter = LogCounter()
    loggers = [logging.getLogger(name) for name in ("signage", "websockets")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(counter)
        logger.setLevel(logging.INFO)
    try:
        yield counter
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(counter)
            logger.setLevel(level)


def loop_errors() -> list[str]:
    """Record what the event loop would print as unhandled (a task's lost exception...)."""
    errors: list[str] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(f"{context.get('message')}: {context.get('exception')!r}")

    asyncio.get_running_loop().set_exception_handler(handler)
    return errors


def start_board(site: HubSite, board_id: str, url: str) -> tuple[Board, CheckingHooks]:
    rig = site.rig
    board = make_board(
        rig.root / "boards" / board_id,
        url,
        rig.trust(),
        area=rig.areas[board_id],
        token=rig.tokens[board_id],
        board_id=board_id,
    )
    board.link.backoff = RecordingBackoff(
        random.Random(f"{SEED}/{board_id}"), BACKOFF_BASE_S, BACKOFF_CAP_S
    )
    hooks = CheckingHooks(board)
    board.hooks = hooks
    board.link.hooks = hooks
    rig.boards[board_id] = board  # stopped with the hub
    return board, hooks


async def until(
    predicate: Callable[[], bool], timeout: float, what: str, board: Board | None = None
) -> float:
    """Wait for ``predicate``; return how long it took. Fails the test after ``timeout``,
    saying where ``board`` stands."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            state = "" if board is None else f"; the board: {describe(board)}"
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{state}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def describe(board: Board) -> str:
    """Return where a board's link and store stand, for a failure message."""
    store = board.sync.store
    return json.dumps(
        {
            "versions": dict(store.versions()),
            "pending": {p: w.bundle.version for p, w in board.sync.pending.items()},
            "requested": sorted(s[:8] for s in board.link._requested),
            "partial": {p.name[:8]: p.stat().st_size for p in store.partial.iterdir()},
            "link": board.link.stats.to_json(),
            "last_error": str(board.sync.last_error),
        }
    )


def check_backoff(proxy: FaultProxy, backoff: RecordingBackoff, end: float) -> dict[str, Any]:
    """Check that the board dialled only after the waits its Backoff handed out, that every
    attempt after the first followed a connection the proxy cut (no storm, no self-inflicted
    drops), and that the waits are spread over [0, ceiling] (full jitter). Return figures."""
    attempts = [r for r in proxy.records if r.opened <= end]
    waits = [w for w in backoff.waits if w[0] <= end]
    # The n-th wait comes after the n-th attempt ended and before the (n+1)-th attempt.
    assert len(waits) <= len(attempts) <= len(waits) + 1, (len(attempts), len(waits))
    for (at, _, _, delay), attempt in zip(waits, attempts[1:], strict=False):
        assert attempt.opened >= at + delay - 0.01, "dialled before its backoff wait was over"
    ended_by_fault = sum(
        1
        for r in attempts
        if r.reason in ("dropped", "truncated", "refused", "upstream_failed", "stopped")
    )
    assert len(attempts) - 1 <= ended_by_fault, [r.reason for r in attempts]
    for _, attempt, ceiling, delay in waits:
        assert ceiling == min(backoff.cap, backoff.base * 2.0**attempt)
        assert 0.0 <= delay <= ceiling
    spread = [delay / ceiling for _, _, ceiling, delay in waits]
    if len(spread) >= 30:  # long runs
        assert 0.25 <= statistics.fmean(spread) <= 0.75, spread
        assert min(spread) < 0.3 and max(spread) > 0.7, spread
    return {
        "attempts": len(attempts),
        "waits": len(waits),
        "wait_mean_s": round(statistics.fmean(w[3] for w in waits), 3) if waits else 0.0,
        "wait_share_of_ceiling": round(statistics.fmean(spread), 3) if spread else None,
        "backoff_credited": backoff.credited,
    }


def asked_offsets(channels: list[BoardChannel], board_id: str) -> list[tuple[str, int]]:
    return [a for c in channels if c.stats.board == board_id for a in c.stats.asked]


def check_resumes(asked: list[tuple[str, int]]) -> int:
    """Check that each asset's download was asked for from a point that never goes back (no
    asset failed its hash here); return how many requests resumed (offset > 0)."""
    stand: dict[str, int] = {}
    for sha, offset in asked:
        assert offset >= stand.get(sha, 0), f"{sha} asked from {offset} after {stand[sha]}"
        stand[sha] = offset
    return sum(1 for _, offset in asked if offset > 0)


async def check_store(board: Board) -> None:
    """Check a board's store at rest, once it has converged: what is committed verifies (the
    auditor's checks), and no download in progress is left behind, as superseded bundles'
    used to be, for good."""
    # The commit that the test saw lands before the worker thread forgets the waiting bundle.
    await until(lambda: not board.sync.pending, 10, "no bundle waiting", board)
    check_resting_store(board.sync.store, board.sync.trust)


def check_resting_store(store: ContentStore, trust: Trust) -> None:
    auditor = Auditor(store, trust)
    auditor.check()
    assert not auditor.problems, auditor.problems
    left = [(p.name, p.stat().st_size) for p in store.partial.iterdir()]
    assert not left, f"abandoned downloads left on disk: {left}"


# -- 0. the proxy itself --------------------------------------------------------------------------


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A stand-in hub: answers the request head with a 101, then echoes every byte."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _exchange(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send a request head and ``payload``; return what comes back until the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /board HTTP/1.1\r\nHost: x\r\n\r\n" + payload)
    await writer.drain()
    received = b""
    head = len(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    with contextlib.suppress(OSError, TimeoutError):
        while len(received) < head + len(payload):
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                break
            received += data
    writer.close()
    return received


def test_the_fault_proxy_does_what_it_says_and_repeats_itself() -> None:
    payload = random.Random(1).randbytes(120_000)

    async def scenario() -> None:
        server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with FaultProxy("127.0.0.1", port, seed=5) as proxy:
                assert (await _exchange(proxy.port, payload)).endswith(payload)

                proxy.faults.corrupt_rate = 1e-3
                first = await _exchange(proxy.port, payload)
                assert first.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")  # never hit
                body = first[-len(payload) :]
                flipped = sum(1 for a, b in zip(body, payload, strict=True) if a != b)
                assert flipped > 50 and proxy.counters.bytes_corrupted >= flipped
            async with FaultProxy("127.0.0.1", port, seed=5) as again:
                await _exchange(again.port, payload)  # connection 1, clean
                again.faults.corrupt_rate = 1e-3
                assert await _exchange(again.port, payload) == first  # the seed decides
            async with FaultProxy("127.0.0.1", port, seed=6) as other:
                await _exchange(other.port, payload)
                other.faults.corrupt_rate = 1e-3
                assert await _exchange(other.port, payload) != first

                other.clean()
                other.faults.truncate_bytes = (40_000, 40_000)
                cut = await _exchange(other.port, payload)
                assert len(cut) <= 40_000 and other.records[-1].reason == "truncated"
                assert other.records[-1].up <= 40_000

                other.clean()
                other.faults.latency_s = 0.15
                other.faults.bandwidth_bps = 400_000
                started = time.monotonic()
                assert (await _exchange(other.port, payload)).endswith(payload)
                # Two trips of 150 ms, and 120 kB each way at 400 kB/s.
                assert time.monotonic() - started >= 0.3 + 0.3

                other.clean()
                other.refuse_for(math.inf)
                assert await _exchange(other.port, payload) == b""
                assert other.records[-1].reason == "refused"
                other.accept_again()

                reader, writer = await asyncio.open_connection("127.0.0.1", other.port)
                writer.write(b"GET / HTTP/1.1\r\n\r\n")
                await reader.readuntil(b"\r\n\r\n")
                assert other.drop_all() == 1
                assert await asyncio.wait_for(reader.read(), 5) == b""
                writer.close()
                assert other.counters.dropped == 1 and other.counters.refused == 1
        finally:
            server.close()

    asyncio.run(scenario())


# -- 1. drops every few seconds while bundles with assets are pushed ----------------------------


def test_drops_every_few_seconds_backoff_resume_converge_never_partial(
    tmp_path: Path, channels: list[BoardChannel]
) -> None:
    fault_s = phase(8.0)

    async def scenario() -> dict[str, Any]:
        errors = loop_errors()
        async with hub_site(tmp_path) as site:
            rig = site.rig
            key = rig.add_publisher("tinh-62", "62")
            rig.add_board("xa-01", AREA)
            publisher = Publisher(site, key, tmp_path / "publisher", side=410)
            async with FaultProxy("127.0.0.1", site.port, seed=SEED) as proxy:
                board, hooks = start_board(site, "xa-01", proxy.url())
                store = board.sync.store
                auditor = Auditor(board.sync.store, rig.trust())
                backoff = board.link.backoff
                assert isinstance(backoff, RecordingBackoff)
                proxy.faults.latency_s = 0.02
                proxy.faults.bandwidth_bps = 400_000  # a version's ~1 MB takes ~2.7 s
                await board.start()
                auditor.start()
                half_fetched = lambda: any(p.stat().st_size for p in store.partial.iterdir())  # noqa: E731
                # A drop for sure in the middle of an asset, past its first chunk: it resumes.
                await publisher.push()
                await until(half_fetched, 20, "a first chunk")
                proxy.drop_all()
                await until(
                    lambda: any(offset for _, offset in asked_offsets(channels, "xa-01")),
                    20,
                    "a download resumed",
                )
                await until(lambda: store.versions() == {"tinh-62": 1}, 20, "version 1")
                # A download cut for sure and superseded while the board is away: the next
                # version has new bytes, the half-fetched ones are of no use any more.
                await publisher.push()
                await until(half_fetched, 20, "a first chunk")
                proxy.refuse_for(math.inf)
                proxy.drop_all()
                await publisher.push()
                proxy.accept_again()
                proxy.drop_every(2.5, jitter=0.3)
                faults_end = time.monotonic() + fault_s
                while (left := faults_end - time.monotonic()) > 0:
                    await asyncio.sleep(min(4.0, max(0.0, left - 0.5)))
                    if faults_end - time.monotonic() > 0.2:
                        await publisher.push()  # the last one just before the faults stop
                    else:
                        await asyncio.sleep(max(0.0, faults_end - time.monotonic()))
                during = auditor.commits
                proxy.clean()
                cleaned = time.monotonic()
                newest = publisher.version
                converge_s = await until(  # on the screen: the programme was handed over
                    lambda: hooks.versions_seen[-1:] == [{"tinh-62": newest}],
                    BACKOFF_CAP_S + 30,
                    f"the newest version {newest}",
                    board,
                )
                await until(lambda: board.journal.pending_count() == 0, 15, "the outbox sent")
                assert board.task is not None and not board.task.done()
                await auditor.stop()
                stats = board.link.stats
                asked = asked_offsets(channels, "xa-01")
                figures = {
                    "fault_s": round(fault_s, 1),
                    "versions_pushed": newest,
                    "commits_during_faults": during,
                    "commits": auditor.commits,
                    "drops": proxy.counters.dropped,
                    "reconnects": stats.reconnects,
                    "asset_requests": len(asked),
                    "resumed_requests": check_resumes(asked),
                    "bytes_down": proxy.counters.bytes_down,
                    "converge_s": round(converge_s, 2),
                    "audits": auditor.samples,
                    **check_backoff(proxy, backoff, cleaned),
                }
                assert not auditor.problems, auditor.problems
                assert not hooks.problems, hooks.problems
                await check_store(board)
                applied = [v["tinh-62"] for v in hooks.versions_seen]
                assert applied == sorted(set(applied)) and applied[-1] == newest
                assert hooks.programme.source == f"tinh-62@{newest}"
                assert stats.reconnects >= 3 and proxy.counters.dropped >= 3
                assert figures["resumed_requests"] >= 1, "no download resumed from its offset"
                assert not errors, errors
                return figures

    figures = asyncio.run(scenario())
    report("drops", figures)


# -- 2. the hub restarted under a running board ---------------------------------------------------


def test_hub_restarts_board_reconnects_and_gets_what_was_published_meanwhile(
    tmp_path: Path, channels: list[BoardChannel]
) -> None:
    fault_s = phase(0.0)  # long runs: restart again and again for this long

    async def cycle(
        site: HubSite, proxy: FaultProxy, board: Board, publisher: Publisher, abrupt: bool
    ) -> dict[str, Any]:
        """Publish a version and restart the hub in the middle of its download (``abrupt``:
        the hub's host vanishes and the link with it; else the hub closes its connections as
        ``systemctl restart`` makes it). While the hub is away and the board held off, publish
        the next version, which keeps the half-fetched images and adds one. Let the board back
        in: it resumes each image from where it stood and applies the newest; then a push
        reaches it straight from the new hub."""
        store = board.sync.store
        reconnects = board.link.stats.reconnects
        cut, _ = await publisher.push(images=2)
        await until(
            lambda: any(p.stat().st_size > 0 for p in store.partial.iterdir()),
            20,
            f"a first chunk of version {cut}",
        )
        proxy.refuse_for(math.inf)
        if abrupt:
            proxy.drop_all()
        await site.restart(down_s=random.Random(f"{SEED}/{cut}").uniform(0.1, 1.0))
        held = {p.name: p.stat().st_size for p in store.partial.iterdir()}
        asked_before = len(asked_offsets(channels, "xa-01"))
        meanwhile, outcomes = await publisher.push(images=3, shared=2)
        assert outcomes == {"xa-01": "offline"}, outcomes
        await asyncio.sleep(0.3)  # the board knocks and is refused
        proxy.accept_again()
        back_s = await until(
            lambda: store.versions().get("tinh-62") == meanwhile,
            BACKOFF_CAP_S + 30,
            f"version {meanwhile}, published while the board was away",
        )
        assert board.link.stats.reconnects > reconnects
        first_asks: dict[str, int] = {}
        for sha, offset in asked_offsets(channels, "xa-01")[asked_before:]:
            first_asks.setdefault(sha, offset)
        for sha, size in held.items():
            assert first_asks.get(sha) == size, (sha, size, first_asks)
        after, _ = await publisher.push(images=1)
        await until(lambda: store.versions().get("tinh-62") == after, 20, f"version {after}")
        return {"back_s": back_s, "resumed": sum(1 for size in held.values() if size)}

    async def scenario() -> dict[str, Any]:
        errors = loop_errors()
        async with hub_site(tmp_path) as site:
            rig = site.rig
            key = rig.add_publisher("tinh-62", "62")
            rig.add_board("xa-01", AREA)
            publisher = Publisher(site, key, tmp_path / "publisher", side=300)
            async with FaultProxy("127.0.0.1", site.port, seed=SEED) as proxy:
                proxy.faults.bandwidth_bps = 300_000  # so that a restart cuts a download
                board, hooks = start_board(site, "xa-01", proxy.url())
                auditor = Auditor(board.sync.store, rig.trust())
                await board.start()
                auditor.start()
                back: list[float] = []
                resumed = 0
                deadline = time.monotonic() + fault_s
                while not back or time.monotonic() < deadline:
                    for abrupt in (True, False):
                        done = await cycle(site, proxy, board, publisher, abrupt)
                        back.append(done["back_s"])
                        resumed += done["resumed"]
                await auditor.stop()
                assert resumed >= 1  # the abrupt restarts cut a download for sure
                check_resumes(asked_offsets(channels, "xa-01"))
                assert not auditor.problems, auditor.problems
                assert not hooks.problems, hooks.problems
                await check_store(board)
                assert not errors, errors
                figures = {
                    "restarts": site.restarts,
                    "versions_pushed": publisher.version,
                    "reconnects": board.link.stats.reconnects,
                    "refused_while_away": proxy.counters.refused,
                    "resumed_requests": resumed,
                    "back_after_restart_s": round(max(back), 2),
                    "back_after_restart_mean_s": round(statistics.fmean(back), 2),
                }
                return figures

    report("hub_restart", asyncio.run(scenario()))


# -- 3. delay, truncation and corruption ----------------------------------------------------------


@pytest.mark.parametrize("compression", [True, False], ids=["deflate", "plain"])
def test_delay_truncation_corruption_apply_nothing_unsigned_or_partial(
    tmp_path: Path, channels: list[BoardChannel], compression: bool
) -> None:
    fault_s = phase(6.0)

    async def scenario() -> dict[str, Any]:
        errors = loop_errors()
        with counting_logs() as logs:
            async with hub_site(tmp_path, compression=compression) as site:
                rig = site.rig
                photos = Publisher(site, rig.add_publisher("tinh-62", "62"), tmp_path / "p")
                notices = TextPublisher(site, rig.add_publisher("xa-23456", AREA))
                rig.add_board("xa-01", AREA)
                rig.add_board("xa-02", AREA)  # the control: straight to the hub
                async with FaultProxy("127.0.0.1", site.port, seed=SEED) as proxy:
                    board, hooks = start_board(site, "xa-01", proxy.url())
                    control, _ = start_board(site, "xa-02", f"{rig.url}/board")
                    auditor = Auditor(board.sync.store, rig.trust())
                    proxy.faults = dataclasses.replace(
                        proxy.faults,
                        latency_s=0.03,
                        bandwidth_bps=1_000_000,
                        truncate_bytes=(16_000, 600_000),
                        corrupt_rate=2e-5,
                        corrupt_rate_up=1e-3,  # the board says little: make it count
                    )
                    await board.start()
                    await control.start()
                    auditor.start()
                    faults_end = time.monotonic() + fault_s
                    tick = 0
                    while time.monotonic() < faults_end:
                        if tick % 6 == 0:
                            await photos.push(images=2)
                        await notices.push()
                        tick += 1
                        await asyncio.sleep(0.5)
                    during = auditor.commits
                    proxy.clean()
                    # The board dials again by itself when damage shows where it can check
                    # (signatures, hashes, unreadable frames), but damage that turns a message
                    # into another well-formed one (an unknown type, a changed id) is caught
                    # only by TLS, which would reset the link at the first damaged byte: so
                    # does the proxy here, and the board then says hello again.
                    proxy.drop_all()
                    newest = {"tinh-62": photos.version, "xa-23456": notices.version}
                    converge_s = await until(
                        lambda: hooks.versions_seen[-1:] == [newest],
                        BACKOFF_CAP_S + 30,
                        f"the newest versions {newest}",
                        board,
                    )
                    await until(lambda: control.sync.store.versions() == newest, 10, "control")
                    await until(lambda: board.journal.pending_count() == 0, 15, "the outbox")
                    assert board.task is not None and not board.task.done()
                    assert control.task is not None and not control.task.done()
                    await auditor.stop()
                    await check_store(board)
                    await check_store(control)
                    assert not auditor.problems, auditor.problems
                    assert not hooks.problems, hooks.problems
                    for publisher in newest:
                        applied = [v[publisher] for v in hooks.versions_seen if publisher in v]
                        assert applied == sorted(applied), applied  # never back
                    counters = proxy.counters
                    figures = {
                        "compression": compression,
                        "fault_s": round(fault_s, 1),
                        "connections": len(proxy.records),
                        "truncated": counters.truncated,
                        "closed_by_an_end": counters.closed,
                        "bytes_down": counters.bytes_down,
                        "bytes_up": counters.bytes_up,
                        "bytes_corrupted": counters.bytes_corrupted,
                        "board_faults": logs.events["link fault"],
                        "hub_faults": site.hub.counters["faults"],
                        "hub_fault_codes": {
                            k: v for k, v in site.hub.counters.items() if k.startswith("fault:")
                        },
                        "bundles_refused": logs.events["bundle refused"],
                        "assets_refused": logs.events["asset refused"],
                        "link_down": dict(logs.link_down),
                        "commits_during_faults": during,
                        "commits": auditor.commits,
                        "reconnects": board.link.stats.reconnects,
                        "resumed_requests": sum(
                            1 for _, o in asked_offsets(channels, "xa-01") if o > 0
                        ),
                        "converge_s": round(converge_s, 2),
                        "error_logs": logs.errors[:5],
                    }
                    assert counters.truncated > 0 and counters.bytes_corrupted > 0
                    noticed = (
                        figures["board_faults"]
                        + figures["hub_faults"]
                        + figures["bundles_refused"]
                        + figures["assets_refused"]
                        + sum(logs.link_down.values())
                    )
                    assert noticed > 0, figures  # the damage was seen, and handled as faults
                    assert not errors, errors
                    return figures

    report("delay_truncate_corrupt", asyncio.run(scenario()))


# -- 4. a real player on screen while its link flaps ----------------------------------------------


def frame_problem(png: Path | bytes) -> str | None:
    """Return why an image is not a real slide (all black, or one flat colour), or None."""
    source: Any = io.BytesIO(png) if isinstance(png, bytes) else png
    with Image.open(source) as image:
        gray = image.convert("L")
        histogram = gray.histogram()
        pixels = gray.width * gray.height
        dark = sum(histogram[: BLACK_LEVEL + 1]) / pixels
        spread = ImageStat.Stat(gray).stddev[0]
    if dark > 0.9:
        return f"black ({dark:.0%} of the pixels)"
    if spread < 3.0:
        return f"one flat colour (stddev {spread:.1f})"
    return None


def shown_slides(folder: Path) -> list[tuple[Path, str]]:
    """Return the player's screenshots in order, with the item each shows (``idle`` for the
    clock shown before any content)."""
    if not folder.is_dir():
        return []
    return [(p, p.stem.split("-", 1)[1]) for p in sorted(folder.glob("*.png"))]


def version_of(key: str) -> int | None:
    match = re.search(r"-v(\d+)", key)
    return int(match.group(1)) if match else None


def test_real_player_shows_slides_never_a_black_frame_while_its_link_flaps(tmp_path: Path) -> None:
    flap_s = phase(9.0)

    async def scenario() -> dict[str, Any]:
        errors = loop_errors()
        async with hub_site(tmp_path) as site:
            rig = site.rig
            key = rig.add_publisher("tinh-62", "62")
            token = rig.add_board("xa-03", AREA)
            publisher = Publisher(site, key, tmp_path / "publisher", side=240)
            # Frames sampled at any moment (fades included) as the operator's screenshot
            # button takes them: a Capture of the screen, carried back over the flapping link.
            sampled: list[bytes] = []
            missed: Counter[str] = Counter()

            async def sample_frame() -> None:
                try:
                    sampled.append(await site.hub.screenshot("xa-03"))
                except SignageError as exc:
                    missed[exc.code.value] += 1

            async def keep_sampling() -> None:
                while True:
                    await sample_frame()
                    await asyncio.sleep(0.2)

            await publisher.push(images=2)
            async with FaultProxy("127.0.0.1", site.port, seed=SEED) as proxy:
                (tmp_path / "keys").mkdir()
                (tmp_path / "keys" / "tinh-62.pub").write_text(key.public().to_json())
                (tmp_path / "token").write_text(token + "\n")
                data = tmp_path / "data"
                config = tmp_path / "board.toml"
                config.write_text(
                    f'[board]\nid = "xa-03"\narea = "{AREA}"\n'
                    f'[data]\ndir = "{data}"\n'
                    f'[hub]\nurl = "{proxy.url()}"\ntoken_file = "token"\n'
                    'trusted_keys = ["keys/tinh-62.pub"]\n'
                    '[display]\ntransition = "fade"\ntransition_ms = 300\n'
                    '[log]\nlevel = "info"\n',
                    encoding="utf-8",
                )
                shots = tmp_path / "shots"
                log_path = tmp_path / "player.log"
                with open(log_path, "wb") as log_file:
                    player = await asyncio.create_subprocess_exec(
                        *(sys.executable, "-m", "signage", "play", "--config", str(config)),
                        *("--headless", "--size", "320x180", "--screenshot-dir", str(shots)),
                        *("--exit-after", str(flap_s + 600)),
                        stdout=log_file,
                        stderr=asyncio.subprocess.STDOUT,
                        cwd=REPO,
                        env={**os.environ, "SDL_AUDIODRIVER": "dummy"},
                    )
                statuses: dict[str, dict[str, Any]] = {}  # status.json, by when written
                try:
                    await until(
                        lambda: any(k.startswith("tinh-62_") for _, k in shown_slides(shots)),
                        60,
                        "the first slide of version 1",
                    )
                    first = next(
                        i for i, (_, k) in enumerate(shown_slides(shots)) if k.startswith("tinh")
                    )
                    content_from = time.time() + 1  # status.json has whole seconds
                    proxy.faults.latency_s = 0.05
                    proxy.faults.bandwidth_bps = 150_000  # version 2 takes ~2 s
                    proxy.drop_every(2.5, jitter=0.3)
                    newest, _ = await publisher.push(images=2)
                    flaps_end = time.monotonic() + flap_s
                    pushed_at = time.monotonic()
                    while time.monotonic() < flaps_end:
                        if time.monotonic() - pushed_at > 30:  # long runs: content keeps coming
                            newest, _ = await publisher.push(images=2)
                            pushed_at = time.monotonic()
                        await asyncio.wait_for(sample_frame(), 70)
                        await asyncio.sleep(0.5)
                        with contextlib.suppress(OSError, ValueError, KeyError):
                            status = json.loads((data / "status.json").read_text())["status"]
                            statuses[status["time"]] = status
                    sampled_during = len(sampled)
                    proxy.clean()
                    drops = proxy.counters.dropped
                    # The real backoff: after n failed connections the wait is up to 2^n s.
                    failures = sum(1 for r in proxy.records if r.reason != "closed") + 1
                    converge_s = await until(
                        lambda: any(version_of(k) == newest for _, k in shown_slides(shots)),
                        min(300.0, 2.0**failures) + 30,
                        f"a slide of version {newest}",
                    )
                    during_flaps = dict(missed)
                    sampler = asyncio.create_task(keep_sampling())
                    try:
                        await until(lambda: len(sampled) > sampled_during, 60, "a frame")
                    finally:
                        sampler.cancel()
                finally:
                    if player.returncode is None:
                        player.send_signal(signal.SIGTERM)
                    code = await asyncio.wait_for(player.wait(), 30)
                output = log_path.read_text(encoding="utf-8", errors="replace")
                assert code == 0, output[-3000:]
                assert "Traceback" not in output, output[-3000:]
                slides = shown_slides(shots)[first:]
                versions = [version_of(k) for _, k in slides]
                problems = [(p.name, frame_problem(p)) for p, _ in slides if frame_problem(p)]
                problems += [(k, "not content") for _, k in slides if not k.startswith("tinh-62_")]
                problems += [
                    (f"sampled frame {n}", frame_problem(png))
                    for n, png in enumerate(sampled)
                    if frame_problem(png)
                ]
                assert not problems, problems
                assert None not in versions and versions == sorted(versions)  # never back
                during = [
                    status
                    for written, status in statuses.items()
                    if datetime.fromisoformat(written).timestamp() >= content_from
                ]
                assert during, statuses
                for status in during:  # while the link flapped
                    assert status["display"]["on"] is True, status["display"]
                    assert status["content"]["item"].startswith("tinh-62/"), status["content"]
                check_resting_store(
                    ContentStore(data / "store", readonly=True), Trust([key.public()])
                )
                assert drops >= 2, proxy.counters
                assert not errors, errors
                reconnects = max(s["link"]["reconnects"] for s in during)
                (tmp_path / "sampled").mkdir()
                for n, png in enumerate(sampled):
                    (tmp_path / "sampled" / f"{n:02d}.png").write_bytes(png)
                return {
                    "flap_s": round(flap_s, 1),
                    "drops": drops,
                    "reconnects_seen_in_status": reconnects,
                    "link_down_logged": output.count("link down"),
                    "slides_checked": len(slides),
                    "frames_sampled": len(sampled),
                    "frames_sampled_during_flaps": sampled_during,
                    "samples_missed_during_flaps": during_flaps,
                    "status_samples": len(during),
                    "converge_s": round(converge_s, 2),
                    "versions_shown": sorted({v for v in versions if v is not None}),
                }

    report("player", asyncio.run(scenario()))
