"""Benchmark of the reference hub (issue 5). Prints figures and the targets; exit 1 if missed.

One hub process (``signage hub serve``, as deployed) and N simulated boards: light clients in a
few worker processes that speak the real protocol (token, hello, welcome, heartbeats with a
realistic status every ``heartbeat_s`` seconds as the hub's welcome says, WebSocket pings every
20 s, acks). They do not verify signatures or store anything: the hub is what is measured.

(a) steady state: the hub's CPU (% of one core, from its own user+system time, in 5 s windows:
    median and p95) and RSS, in total and per 1,000 boards. Target for 5,000 boards: <= 25% of
    one core.
    Each board also sends a report batch of ``plays_per_report`` plays every ``report_s``
    seconds: by default 3 every 30 s, as a board showing 10-second slides does with its
    default ``report_hold_s``. The hub acknowledges a batch only once it is on disk (group
    commit), so the time from a batch to its ack is measured too (median and p95).
(b) fan-out: a publisher pushes a signed text bundle to all boards; the time from the publish
    request to the 99th-percentile board's ack (and to the last one). Target: 99% <= 5 s.
Baseline in the same run: a bare websockets server with the same connections, the same
heartbeat frames answered by a fixed ack, and the same bundle frame broadcast: what the
transport alone costs. Ratios hub / baseline are printed.

    .venv/bin/python bench/hub.py [--boards 5000] [--workers 3] [--steady-s 60]
        [--report-s 30] [--plays-per-report 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import queue
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402

from signage.hub.client import PublisherClient  # noqa: E402
from signage.hub.registry import SqliteRegistry  # noqa: E402
from signage.protocol import PrivateKey  # noqa: E402
from tests.board.linkkit import signed_text_bundle  # noqa: E402

AREA = "62/23456"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _status(board: str, beat: int) -> dict[str, Any]:
    """A heartbeat status shaped like a real board's (docs/protocol.md §11)."""
    return {
        "board": board,
        "software": "0.1.0",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S+07:00"),
        "outbox": 0,
        "link": {
            "state": "ready",
            "connects": 1,
            "reconnects": 0,
            "connected_since": 1764150000.0,
            "last_disconnect": None,
            "last_disconnect_reason": None,
            "last_error": None,
            "rtt_ms": 3.2,
            "bytes_received": 48213 + beat,
            "assets_received": 1,
        },
        "content": {
            "versions": {"tinh-62": 1764150000000},
            "source": "tinh-62@1764150000000",
            "items": 5,
            "alerts": [],
            "item": "tinh-62/tb-tiem-chung",
            "template": "announcement",
            "reason": "scheduled",
        },
        "display": {
            "on": True,
            "width": 1920,
            "height": 1080,
            "fps": 59.8,
            "frames": 183000 + beat,
            "slides": 912,
            "dropped": 3,
        },
        "system": {
            "boot_uptime_s": 86400.0 + beat,
            "process_uptime_s": 43200.0 + beat,
            "cpu_percent": 7.5,
            "process_cpu_percent": 4.1,
            "load": [0.31, 0.28, 0.25],
            "memory": {
                "total": 4_000_000_000,
                "available": 2_500_000_000,
                "percent": 37.5,
                "process_rss": 150_000_000,
            },
            "disk": {"path": "/var/lib/signage", "free": 20_000_000_000, "total": 60_000_000_000},
            "temperature_c": 51.0,
            "network": [{"name": "eth0", "up": True, "addresses": ["192.168.1.23"]}],
        },
    }


# -- the simulated boards (worker processes) -----------------------------------------------------


def _worker(
    slot: int,
    url: str,
    boards: list[tuple[str, str]],
    raw: bool,
    heartbeat_s: int,
    report: tuple[float, int],
    out: Queue[Any],
) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_boards(slot, url, boards, raw, heartbeat_s, report, out))


async def _boards(
    slot: int,
    url: str,
    boards: list[tuple[str, str]],
    raw: bool,
    heartbeat_s: int,
    report: tuple[float, int],
    out: Queue[Any],
) -> None:
    acks: dict[int, list[float]] = {}
    ready = 0
    latencies: list[float] = []  # report batch -> its ack, seconds

    async def send_latencies() -> None:
        while True:
            await asyncio.sleep(5.0)
            if latencies:
                out.put(("latency", slot, latencies[:]))
                latencies.clear()

    def acked(version: int) -> None:
        times = acks.setdefault(version, [])
        times.append(time.time())
        if len(times) == len(boards):
            out.put(("acks", version, acks.pop(version)))

    async def one(board: str, token: str, delay: float) -> None:
        nonlocal ready
        await asyncio.sleep(delay)
        rng = random.Random(board)
        for _attempt in range(20):
            try:
                async with connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {token}"},
                    max_size=2**25,
                    ping_interval=20,
                    ping_timeout=20,
                    open_timeout=120,
                ) as ws:
                    await _speak(
                        ws, board, raw, heartbeat_s, report, rng, acked, on_ready, latencies
                    )
            except (OSError, TimeoutError, Exception) as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                await asyncio.sleep(1 + rng.random() * 2)

    def on_ready() -> None:
        nonlocal ready
        ready += 1
        if ready % 250 == 0 or ready == len(boards):
            out.put(("ready", slot, ready))

    # Connect a few hundred per second, as boards coming back after an outage would.
    tasks = [
        asyncio.create_task(one(board, token, index / 300.0))
        for index, (board, token) in enumerate(boards)
    ]
    tasks.append(asyncio.create_task(send_latencies()))
    await asyncio.gather(*tasks)


async def _speak(
    ws: Any,
    board: str,
    raw: bool,
    heartbeat_s: int,
    report: tuple[float, int],
    rng: random.Random,
    acked: Any,
    on_ready: Any,
    latencies: list[float],
) -> None:
    counter = 0
    reports: dict[str, float] = {}  # report id -> when sent

    def ident() -> str:
        nonlocal counter
        counter += 1
        return f"b{counter}"

    async def beat(period: float) -> None:
        await asyncio.sleep(rng.random() * period)
        n = 0
        while True:
            n += 1
            frame = {"v": 1, "type": "heartbeat", "id": ident(), "status": _status(board, n)}
            await ws.send(json.dumps(frame, separators=(",", ":")))
            await asyncio.sleep(period)

    report_s, plays = report

    async def send_report() -> None:
        await asyncio.sleep(rng.random() * report_s)
        seq = 0
        while True:
            entries = []
            for _ in range(plays):
                seq += 1
                ended = time.time()
                slide_s = report_s / plays
                play = {
                    "item": f"tinh-62/v1-{seq % 7}", "template": "announcement",
                    "reason": "scheduled", "day": time.strftime("%Y-%m-%d"),
                    "started": ended - slide_s, "ended": ended, "seconds": slide_s,
                    "interrupted": False,
                }  # fmt: skip
                at = time.strftime("%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(ended + 7 * 3600))
                entries.append({"seq": seq, "kind": "play", "at": at, "data": play})
            ref = ident()
            reports[ref] = time.monotonic()
            frame = {"v": 1, "type": "report", "id": ref, "entries": entries}
            await ws.send(json.dumps(frame, separators=(",", ":")))
            await asyncio.sleep(report_s)

    beating: asyncio.Task[None] | None = None
    reporting: asyncio.Task[None] | None = None
    if raw:
        on_ready()
        beating = asyncio.create_task(beat(heartbeat_s))
        if report_s > 0:
            reporting = asyncio.create_task(send_report())
    else:
        hello = {"board": board, "software": "0.1.0", "held": {}, "assets": [], "alerts": []}
        await ws.send(json.dumps({"v": 1, "type": "hello", "id": ident(), **hello}))
    try:
        async for frame in ws:
            message = json.loads(frame)
            kind = message["type"]
            if kind == "welcome":
                beating = asyncio.create_task(beat(float(message["heartbeat_s"])))
                if report_s > 0:
                    reporting = asyncio.create_task(send_report())
                on_ready()
            elif kind == "ack":
                sent = reports.pop(str(message.get("ref")), None)
                if sent is not None:
                    latencies.append(time.monotonic() - sent)
            elif kind == "bundle":
                payload = json.loads(base64.b64decode(message["signed"]["payload"]))
                result = {"publisher": payload["publisher"], "version": payload["version"]}
                answer = {"v": 1, "type": "ack", "id": ident(), "ref": message["id"], "ok": True}
                await ws.send(json.dumps({**answer, "result": result}))
                acked(payload["version"])
            elif kind in ("alert", "command"):
                answer = {"v": 1, "type": "ack", "id": ident(), "ref": message["id"], "ok": True}
                await ws.send(json.dumps(answer))
    finally:
        for task in (beating, reporting):
            if task is not None:
                task.cancel()


# -- the baseline: a bare websockets server ------------------------------------------------------


def raw_server(port: int) -> None:
    """Accept boards on /board, answer every text frame with a fixed ack, and broadcast what
    arrives on /publish to every board (run in its own process)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    boards: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path == "/publish":
            async for frame in ws:
                for board in list(boards):
                    with contextlib.suppress(Exception):
                        await board.send(frame)
                await ws.send("sent")
            return
        boards.add(ws)
        try:
            async for frame in ws:
                if isinstance(frame, str) and (
                    '"type":"heartbeat"' in frame[:40] or '"type":"report"' in frame[:40]
                ):
                    message = json.loads(frame)  # a server reads what it gets
                    answer = {"v": 1, "type": "ack", "id": "h1", "ref": message["id"], "ok": True}
                    await ws.send(json.dumps(answer))
        finally:
            boards.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, max_size=2**25, ping_interval=None):
            await asyncio.Future()

    asyncio.run(main())


# -- the run -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _cpu_windows(process: psutil.Process, seconds: float, window: float = 5.0) -> list[float]:
    """Return the process's CPU use (% of one core) in consecutive windows."""
    shares = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        before = process.cpu_times()
        start = time.monotonic()
        time.sleep(window)
        after = process.cpu_times()
        used = (after.user - before.user) + (after.system - before.system)
        shares.append(100.0 * used / (time.monotonic() - start))
    return shares


class Run:
    """One server process (the hub or the baseline) and its simulated boards."""

    def __init__(self, args: argparse.Namespace, raw: bool, workdir: Path) -> None:
        self.args = args
        self.raw = raw
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.queue: Queue[Any] = multiprocessing.get_context("fork").Queue()
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.key = PrivateKey.generate("tinh-62", "62")
        self.publisher_token = ""
        self.idle_rss = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[Run]:
        boards = self._register()
        self._start_server()
        context = multiprocessing.get_context("fork")
        url = f"ws://127.0.0.1:{self.port}/board"
        share = -(-len(boards) // self.args.workers)
        args = self.args
        reporting = (args.report_s, args.plays_per_report)
        for n in range(self.args.workers):
            part = boards[n * share : (n + 1) * share]
            worker = context.Process(
                target=_worker,
                args=(n, url, part, self.raw, args.heartbeat_s, reporting, self.queue),
                daemon=True,
            )
            worker.start()
            self.workers.append(worker)
        self.idle_rss = self.process().memory_info().rss
        try:
            self._wait_ready(len(boards))
            yield self
        finally:
            for running in self.workers:
                running.terminate()
            if self.server is not None:
                self.server.terminate()
                self.server.wait(30)

    def _register(self) -> list[tuple[str, str]]:
        boards = [(f"b{n:05d}", "") for n in range(self.args.boards)]
        if self.raw:
            return boards
        registry = SqliteRegistry(self.workdir / "hub" / "registry.sqlite")
        now = time.time()
        boards = [(b, registry.add_board(b, f"Bảng {b}", AREA, now)) for b, _ in boards]
        self.publisher_token = registry.add_publisher(self.key.public(), "62", now)
        registry.close()
        return boards

    def _start_server(self) -> None:
        log = open(self.workdir / f"server-{'raw' if self.raw else 'hub'}.log", "wb")  # noqa: SIM115
        if self.raw:
            command = [sys.executable, __file__, "--raw-server", str(self.port)]
        else:
            config = self.workdir / "hub.toml"
            config.write_text(
                f'[hub]\nlisten = "127.0.0.1:{self.port}"\ndata_dir = "{self.workdir / "hub"}"\n'
                f"heartbeat_s = {self.args.heartbeat_s}\nscreenshot_every_s = 0\n"
                '[log]\nlevel = "warning"\n',
                encoding="utf-8",
            )
            command = [sys.executable, "-m", "signage", "hub", "serve", "--config", str(config)]
        self.server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        if self.raw:
            time.sleep(1.0)
        else:
            _wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def _wait_ready(self, total: int) -> None:
        ready: dict[int, int] = {}
        deadline = time.monotonic() + 60 + total / 100
        while sum(ready.values()) < total:
            kind, *rest = self.queue.get(timeout=max(1.0, deadline - time.monotonic()))
            if kind == "ready":
                ready[rest[0]] = max(ready.get(rest[0], 0), rest[1])
            if time.monotonic() > deadline:
                raise SystemExit(f"only {sum(ready.values())} of {total} boards connected")

    def drain(self) -> list[float]:
        """Return the report latencies the workers sent since the last call (the rest of what
        waits in the queue is of no use between fan-outs)."""
        out: list[float] = []
        while True:
            try:
                kind, *rest = self.queue.get_nowait()
            except queue.Empty:
                return sorted(out)
            if kind == "latency":
                out.extend(rest[1])

    def process(self) -> psutil.Process:
        assert self.server is not None
        return psutil.Process(self.server.pid)

    async def fan_out(self, version: int) -> tuple[float, float, float, int]:
        """Publish one bundle; return seconds to 50%, 99% and 100% of acks, and applied."""
        envelope = signed_text_bundle(self.key, version, f"Thông báo số {version}", area=AREA)
        start = time.time()
        applied = 0
        if self.raw:
            frame = json.dumps(
                {"v": 1, "type": "bundle", "id": f"h{version}", "signed": json.loads(envelope)}
            )
            async with connect(f"ws://127.0.0.1:{self.port}/publish", max_size=2**25) as ws:
                await ws.send(frame)
                await ws.recv()
        else:
            async with PublisherClient(
                f"ws://127.0.0.1:{self.port}", self.publisher_token
            ) as client:
                result = await client.push_bundle(envelope, self.workdir, wait_s=30)
                applied = int(result["summary"].get("applied", 0))
        times: list[float] = []
        deadline = time.monotonic() + 60
        while len(times) < self.args.boards and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                kind, *rest = self.queue.get(timeout=1.0)
                if kind == "acks" and rest[0] == version:
                    times.extend(rest[1])
        if len(times) < 0.99 * self.args.boards:
            raise SystemExit(f"only {len(times)} acks for version {version}")
        delays = sorted(t - start for t in times)
        return (
            _percentile(delays, 0.5),
            _percentile(delays, 0.99),
            delays[-1],
            applied or len(times),
        )


def measure(args: argparse.Namespace, raw: bool, workdir: Path) -> dict[str, Any]:
    """Run one server with N boards; return its figures."""
    with Run(args, raw, workdir).running() as run:
        name = "baseline" if raw else "hub"
        print(f"  {name}: {args.boards} boards connected; warming up", flush=True)
        time.sleep(args.warmup_s)
        process = run.process()
        run.drain()  # latencies of the warm-up
        shares = _cpu_windows(process, args.steady_s)
        rss = process.memory_info().rss
        latencies = run.drain()
        fan = [asyncio.run(run.fan_out(1_000 + n)) for n in range(args.fanouts)]
        return {
            "cpu_median": statistics.median(shares),
            "cpu_p95": _percentile(shares, 0.95),
            "rss": rss,
            "rss_boards": rss - run.idle_rss,
            "fan_p50": statistics.median(f[0] for f in fan),
            "fan_p99": statistics.median(f[1] for f in fan),
            "fan_max": max(f[2] for f in fan),
            "applied": min(f[3] for f in fan),
            "report_p50": _percentile(latencies, 0.5) if latencies else float("nan"),
            "report_p95": _percentile(latencies, 0.95) if latencies else float("nan"),
            "reports": len(latencies),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boards", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--heartbeat-s", type=int, default=30)
    parser.add_argument("--report-s", type=float, default=30.0, help="0: no reports")
    parser.add_argument("--plays-per-report", type=int, default=3)
    parser.add_argument("--warmup-s", type=float, default=35.0)
    parser.add_argument("--steady-s", type=float, default=60.0)
    parser.add_argument("--fanouts", type=int, default=3)
    parser.add_argument("--raw-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        raw_server(args.raw_server)
        return 0
    print(
        f"hub benchmark: {args.boards} boards in {args.workers} worker processes, heartbeats"
        f" every {args.heartbeat_s} s, a report batch of {args.plays_per_report} plays every"
        f" {args.report_s:g} s,"
        f" {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="signage-bench-hub-") as scratch:
        base = measure(args, True, Path(scratch) / "raw")
        hub = measure(args, False, Path(scratch) / "hub")
    per_k = 1000 / args.boards
    print()
    print(f"(a) steady state, {args.boards} boards")
    print(
        f"    hub CPU: median {hub['cpu_median']:.1f}% of one core, p95 {hub['cpu_p95']:.1f}%"
        f"  ({hub['cpu_median'] * per_k:.2f}% per 1,000 boards)"
    )
    print(
        f"    baseline (bare websockets): median {base['cpu_median']:.1f}%,"
        f" p95 {base['cpu_p95']:.1f}%; ratio hub/baseline"
        f" {hub['cpu_median'] / max(base['cpu_median'], 0.01):.2f}"
    )
    print(
        f"    hub RSS: {hub['rss'] / 2**20:.0f} MiB, of which the boards"
        f" {hub['rss_boards'] / 2**20:.0f} MiB ({hub['rss_boards'] / 2**20 * per_k:.1f} MiB per"
        f" 1,000 boards); baseline {base['rss'] / 2**20:.0f} MiB"
        f" ({base['rss_boards'] / 2**20 * per_k:.1f} MiB per 1,000);"
        f" ratio {hub['rss_boards'] / max(base['rss_boards'], 1):.2f}"
    )
    if args.report_s > 0:
        print(
            f"    report batch to its ack (durable): median {hub['report_p50'] * 1000:.0f} ms,"
            f" p95 {hub['report_p95'] * 1000:.0f} ms over {hub['reports']} batches; baseline"
            f" (no disk) median {base['report_p50'] * 1000:.0f} ms, p95"
            f" {base['report_p95'] * 1000:.0f} ms"
        )
    print(f"(b) fan-out of one bundle to {args.boards} boards (median of {args.fanouts} pushes)")
    print(
        f"    hub: 50% acked in {hub['fan_p50']:.2f} s, 99% in {hub['fan_p99']:.2f} s,"
        f" all in {hub['fan_max']:.2f} s; {hub['applied']} applied"
    )
    print(
        f"    baseline broadcast: 50% {base['fan_p50']:.2f} s, 99% {base['fan_p99']:.2f} s;"
        f" ratio hub/baseline (99%) {hub['fan_p99'] / max(base['fan_p99'], 0.001):.2f}"
    )
    scaled = hub["cpu_median"] * 5000 / args.boards
    ok_cpu = scaled <= 25.0
    ok_fan = hub["fan_p99"] <= 5.0
    print()
    print(
        f"target: <= 25% of one core at 5,000 boards: {scaled:.1f}%"
        f"{' (scaled)' if args.boards != 5000 else ''} -> {'met' if ok_cpu else 'MISSED'}"
    )
    print(
        f"target: 99% of boards ack within 5 s: {hub['fan_p99']:.2f} s -> "
        f"{'met' if ok_fan else 'MISSED'}"
    )
    return 0 if ok_cpu and ok_fan else 1


if __name__ == "__main__":
    sys.exit(main())
