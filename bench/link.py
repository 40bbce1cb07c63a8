"""Benchmarks of the source link (issue 4). Prints figures and the targets; exit 1 if one is missed.

(a) push-to-applied latency of a text-only signed bundle on loopback: from the hub sending it to
    the board's programme being rebuilt from the committed store (verify, stage with fsync,
    commit with fsync, re-read). Target p95 <= 250 ms. Baseline in the same run: the round
    trip of a heartbeat and its ack over the same connection.
(b) asset throughput: one signed bundle with a large image (a noise PNG of about 8 MiB),
    pushed N times with new content so every byte is fetched, hashed, written and decoded.
    Reported in MiB/s, with the raw websocket throughput of the same bytes as baseline.

    .venv/bin/python bench/link.py [--pushes 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402

from signage.model import bundle_to_json  # noqa: E402
from signage.protocol import PrivateKey, Trust  # noqa: E402
from tests.board.linkkit import (  # noqa: E402
    ISSUED,
    FakeCatalog,
    TestHub,
    make_board,
    signed_text_bundle,
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _noise_png(seed: int, side: int = 1700) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


async def latency(pushes: int, workdir: Path) -> tuple[list[float], list[float]]:
    key = PrivateKey.generate("tinh-62", "62")
    catalog = FakeCatalog(workdir / "hub" / "assets")
    catalog.put(signed_text_bundle(key, 1, "Khởi đầu"))
    async with TestHub(catalog).running() as hub:
        board = make_board(workdir / "board", hub.url, Trust([key.public()]))
        await board.start()
        await asyncio.wait_for(board.hooks.changed.wait(), 10)
        channel = hub.latest()
        baseline: list[float] = []
        applied: list[float] = []
        for n in range(pushes):
            signed = json.loads(signed_text_bundle(key, 10 + n, f"Thông báo số {n}"))
            before = board.hooks.changes
            started = time.perf_counter()
            ack = await channel.push("bundle", {"signed": signed})
            assert ack.ok, ack.error
            while board.hooks.changes == before:
                await asyncio.sleep(0)
            applied.append((board.hooks.applied_at[-1] - started) * 1000)
            # Baseline: one message and its ack over the same connection (a heartbeat).
            started = time.perf_counter()
            session = board.link._session
            assert session is not None
            ident = session.send("heartbeat", {"status": {}})
            await board.link._flush()
            while ident in session.awaiting:
                await asyncio.sleep(0)
            baseline.append((time.perf_counter() - started) * 1000)
        await board.stop()
    return applied, baseline


async def throughput(rounds: int, workdir: Path) -> tuple[list[float], list[float], int]:
    key = PrivateKey.generate("tinh-62", "62")
    assets = workdir / "hub" / "assets"
    assets.mkdir(parents=True)
    catalog = FakeCatalog(assets)
    catalog.put(signed_text_bundle(key, 1, "Khởi đầu"))
    rates: list[float] = []
    raw_rates: list[float] = []
    size = 0
    async with TestHub(catalog).running() as hub:
        board = make_board(workdir / "board", hub.url, Trust([key.public()]))
        await board.start()
        await asyncio.wait_for(board.hooks.changed.wait(), 10)
        channel = hub.latest()
        for n in range(rounds):
            png = _noise_png(n)
            size = len(png)
            digest = hashlib.sha256(png).hexdigest()
            (assets / digest).write_bytes(png)
            data = {
                "bundle": 1,
                "publisher": "tinh-62",
                "version": 100 + n,
                "issued": ISSUED.isoformat(),
                "area": "62/23456",
                "items": [
                    {
                        "id": "anh",
                        "template": "fullscreen-image",
                        "fields": {"image": "anh.png"},
                    }
                ],
                "assets": {"anh.png": {"sha256": digest, "size": size, "media_type": "image/png"}},
            }
            signed = json.loads(key.sign(bundle_to_json(data)))
            started = time.perf_counter()
            ack = await channel.push("bundle", {"signed": signed})
            assert ack.ok, ack.error
            rates.append(size / 2**20 / (time.perf_counter() - started))
        await board.stop()
    # Baseline: the same bytes as 256 KiB binary frames over a bare websocket on loopback.
    blob = _noise_png(0)

    async def sink(ws: ServerConnection) -> None:
        total = 0
        async for frame in ws:
            total += len(frame)
            if total >= len(blob):
                await ws.send("done")
                total = 0

    async with serve(sink, "127.0.0.1", 0, max_size=2**21) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", max_size=2**21) as ws:
            for _ in range(rounds):
                started = time.perf_counter()
                for offset in range(0, len(blob), 256 * 1024):
                    await ws.send(blob[offset : offset + 256 * 1024])
                await ws.recv()
                raw_rates.append(len(blob) / 2**20 / (time.perf_counter() - started))
    return rates, raw_rates, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-link-") as scratch:
        applied, baseline = asyncio.run(latency(args.pushes, Path(scratch) / "a"))
    p95 = _percentile(applied, 0.95)
    base = statistics.median(baseline)
    print(
        f"(a) push-to-applied, text-only bundle, {len(applied)} pushes: median"
        f" {statistics.median(applied):.1f} ms, p95 {p95:.1f} ms, max {max(applied):.1f} ms;"
        f" baseline message round trip median {base:.2f} ms"
        f" (ratio {statistics.median(applied) / base:.0f}x)  target p95 <= 250 ms"
    )
    failed |= p95 > 250
    with tempfile.TemporaryDirectory(prefix="bench-link-") as scratch:
        rates, raw, size = asyncio.run(throughput(args.rounds, Path(scratch) / "b"))
    print(
        f"(b) asset throughput, {args.rounds} bundles with a {size / 2**20:.1f} MiB PNG:"
        f" median {statistics.median(rates):.1f} MiB/s (fetch, hash, write, decode, commit);"
        f" raw websocket on loopback {statistics.median(raw):.1f} MiB/s"
        f" (ratio {statistics.median(rates) / statistics.median(raw):.2f})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
