"""Benchmark of slide composition: every template at 1920x1080 and 3840x2160, cold and warm.

Prints medians and p95 in milliseconds, the ratio of each to a baseline measured in the same run
(allocating and filling a blank frame of the same size), and the issue's targets:
warm 1080p <= 50 ms, warm 4K <= 200 ms, font registry ready <= 300 ms.

    .venv/bin/python bench/compose.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from PIL import Image

from signage.board.slides import build_stack, read_item, sample_items
from signage.compose import BoardInfo, Composer, folder_assets
from signage.layout import Size

SIZES = (Size(1920, 1080), Size(3840, 2160))
TARGET_WARM_MS = {Size(1920, 1080): 50.0, Size(3840, 2160): 200.0}
TARGET_FONTS_MS = 300.0
NOW = datetime(2026, 11, 21, 8, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))

_FONTS_PROBE = """
import time
before_imports = time.perf_counter()
import json
from signage.resources import data_dir
from signage.text import FontRegistry
started = time.perf_counter()
registry = FontRegistry.load(data_dir("fonts") / "fonts.toml")
for face in registry.chain(None, 400) + registry.chain(None, 700):
    registry.font(face, 32)
done = time.perf_counter()
print(json.dumps([done - started, done - before_imports]))
"""


def _times(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    """Run the benchmark, print the figures; return 0 when every target is met, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="warm samples per case")
    parser.add_argument("--cold-rounds", type=int, default=3, help="cold samples per case")
    args = parser.parse_args()

    probes = [
        json.loads(subprocess.check_output([sys.executable, "-c", _FONTS_PROBE])) for _ in range(5)
    ]
    fonts_ms = [1000 * p[0] for p in probes]
    with_imports_ms = [1000 * p[1] for p in probes]
    print(
        f"font registry ready (fresh process, 5 runs): median {statistics.median(fonts_ms):.1f} ms,"
        f" p95 {_p95(fonts_ms):.1f} ms; including imports of Pillow, uharfbuzz and the text"
        f" layer: median {statistics.median(with_imports_ms):.1f} ms, p95"
        f" {_p95(with_imports_ms):.1f} ms  (target <= {TARGET_FONTS_MS:.0f} ms)"
    )
    ok = statistics.median(with_imports_ms) <= TARGET_FONTS_MS

    board = BoardInfo(name="UBND xã Sa Thầy")
    items = [(path, read_item(path)) for path in sample_items()]
    warm_stack = build_stack()
    print()
    print(
        f"{'template':<18} {'size':>9} {'base':>6} {'cold med':>9} {'warm med':>9} "
        f"{'warm p95':>9} {'warm/base':>9}"
    )
    for size in SIZES:
        baseline = statistics.median(
            _times(lambda s=size: Image.new("RGB", (s.width, s.height), (11, 42, 79)), 15)
        )
        warm_all: list[float] = []
        for path, item in items:
            assets = folder_assets(path.parent)

            def cold(item=item, assets=assets, size=size) -> None:  # type: ignore[no-untyped-def]
                composer: Composer = build_stack().composer
                composer.render(item, size, NOW, board, assets)

            cold_ms = _times(cold, args.cold_rounds)
            composer = warm_stack.composer

            def warm(composer=composer, item=item, size=size, assets=assets) -> None:  # type: ignore[no-untyped-def]
                composer.render(item, size, NOW, board, assets)

            warm()  # prime the caches
            warm_ms = _times(warm, args.rounds)
            warm_all += warm_ms
            label = f"{size.width}x{size.height}"
            print(
                f"{path.stem:<18} {label:>9} {baseline:>6.1f} {statistics.median(cold_ms):>9.1f} "
                f"{statistics.median(warm_ms):>9.1f} {_p95(warm_ms):>9.1f} "
                f"{statistics.median(warm_ms) / baseline:>8.1f}x"
            )
        median, p95 = statistics.median(warm_all), _p95(warm_all)
        target = TARGET_WARM_MS[size]
        verdict = "ok" if p95 <= target else "OVER TARGET"
        print(
            f"{'all templates':<18} {size.width}x{size.height}: warm median {median:.1f} ms, "
            f"p95 {p95:.1f} ms (target <= {target:.0f} ms): {verdict}"
        )
        print()
        ok = ok and p95 <= target
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
