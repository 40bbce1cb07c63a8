"""Soak: the real player (``signage play``, headless) on an accelerated programme for a long
time, watched from outside. Every ``sample_s`` seconds it records the player's RSS, open file
descriptors and threads, and its display counters (frames, slides, dropped) from the status
snapshot the player writes. After a warm-up, it fits RSS growth per hour and checks that file
descriptors and threads stay flat and the share of dropped frames does not grow.

    .venv/bin/python -m tests.system.soak --minutes 60 [--out soak.json]

The default test run uses 2 minutes (tests/system/test_soak.py); `make soak` runs for hours.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
TICKER = (
    "Tuần lễ cao điểm phòng, chống dịch sốt xuất huyết — Đổ bỏ vật chứa nước đọng quanh nhà."
    " Thực hiện tốt an toàn giao thông, đội mũ bảo hiểm khi đi xe máy."
)
RSS_GROWTH_LIMIT_MB_PER_H = 5.0
NOISE_MB = 2.0  # what RSS wanders by in minutes without leaking (short runs)


def accelerated_programme(folder: Path) -> Path:
    """Write a content folder of 1 s slides of every kind, with a ticker and a photo."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = REPO / "examples" / "xa-sa-thay" / "dong-lua.jpg"
    (folder / "dong-lua.jpg").write_bytes(photo.read_bytes())
    items = [
        {"id": "tb", "template": "announcement", "duration_s": 1, "fields": {
            "title": "Thông báo lịch tiêm chủng mở rộng tháng 12/2026",
            "body": "Trạm Y tế xã tổ chức tiêm chủng cho trẻ dưới 5 tuổi vào sáng thứ Bảy.",
        }},
        {"id": "tin", "template": "news-photo", "duration_s": 1, "fields": {
            "title": "Nông dân thu hoạch lúa vụ Mùa đạt năng suất cao",
            "image": "dong-lua.jpg",
            "caption": "Toàn xã gieo cấy 420 héc-ta lúa nước.",
        }},
        {"id": "kh", "template": "text-only", "duration_s": 1, "fields": {
            "body": "Toàn dân đoàn kết xây dựng nông thôn mới, đô thị văn minh",
        }},
        {"id": "dh", "template": "clock", "duration_s": 1, "fields": {}},
        {"id": "anh", "template": "fullscreen-image", "duration_s": 1, "fields": {
            "image": "dong-lua.jpg",
        }},
    ]  # fmt: skip
    (folder / "items.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    (folder / "ticker.txt").write_text(TICKER, encoding="utf-8")
    return folder


@dataclass(slots=True)
class Sample:
    """One look at the player."""

    t: float  # seconds since start
    rss_mb: float
    fds: int
    threads: int
    frames: int | None = None
    slides: int | None = None
    dropped: int | None = None


@dataclass(slots=True)
class SoakResult:
    """What a soak measured and its verdicts."""

    seconds: float
    samples: list[Sample] = field(default_factory=list)
    rss_growth_mb_per_h: float = 0.0  # least-squares slope after warm-up
    rss_growth_mb: float = 0.0  # median of the last quarter minus median of the first
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_peak_mb: float = 0.0
    fds: tuple[int, int] = (0, 0)  # min, max after warm-up
    threads: tuple[int, int] = (0, 0)
    slides: int = 0
    dropped_first: float = 0.0  # share of frames dropped, first and last quarter after warm-up
    dropped_last: float = 0.0
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """Return the result as JSON-ready data."""
        return asdict(self)


def run_soak(
    seconds: float,
    *,
    workdir: Path,
    sample_s: float = 5.0,
    warmup_fraction: float = 0.25,
    size: str = "1280x720",
) -> SoakResult:
    """Run the player for ``seconds`` and return what it measured (``problems`` lists every
    limit missed)."""
    folder = accelerated_programme(workdir / "content")
    data = workdir / "data"
    config = workdir / "board.toml"
    config.write_text(
        f'[display]\ntransition = "fade"\ntransition_ms = 300\n[data]\ndir = "{data}"\n'
        '[log]\nlevel = "warning"\n',
        encoding="utf-8",
    )
    command = [
        sys.executable, "-m", "signage", "play", "--config", str(config), "--content",
        str(folder), "--headless", "--size", size, "--exit-after", str(seconds + 5),
    ]  # fmt: skip
    env = {**os.environ, "SDL_AUDIODRIVER": "dummy", "SDL_FRAMEBUFFER_ACCELERATION": "0"}
    result = SoakResult(seconds)
    with open(workdir / "player.log", "wb") as log:
        player = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        process = psutil.Process(player.pid)
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < seconds:
                time.sleep(min(sample_s, max(0.0, seconds - elapsed)))
                sample = _sample(process, data, time.monotonic() - started)
                if sample is None:
                    result.problems.append("the player ended early")
                    break
                result.samples.append(sample)
        finally:
            player.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                result.exit_code = player.wait(30)
            if result.exit_code is None:
                player.kill()
    _judge(result, warmup_fraction)
    return result


def _sample(process: psutil.Process, data: Path, t: float) -> Sample | None:
    try:
        with process.oneshot():
            sample = Sample(t, process.memory_info().rss / 2**20, process.num_fds(),
                            process.num_threads())  # fmt: skip
    except psutil.Error:
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        display = json.loads((data / "status.json").read_text())["status"]["display"]
        sample.frames, sample.slides = display["frames"], display["slides"]
        sample.dropped = display["dropped"]
    return sample


def _judge(result: SoakResult, warmup_fraction: float) -> None:
    samples = result.samples
    if len(samples) < 4:
        result.problems.append(f"only {len(samples)} samples")
        return
    steady = [s for s in samples if s.t >= result.seconds * warmup_fraction] or samples
    result.rss_start_mb, result.rss_end_mb = steady[0].rss_mb, steady[-1].rss_mb
    result.rss_peak_mb = max(s.rss_mb for s in samples)
    result.rss_growth_mb_per_h = _slope([s.t for s in steady], [s.rss_mb for s in steady]) * 3600
    result.fds = (min(s.fds for s in steady), max(s.fds for s in steady))
    result.threads = (min(s.threads for s in steady), max(s.threads for s in steady))
    result.slides = max((s.slides or 0) for s in samples)
    quarter = max(2, len(steady) // 4)
    result.dropped_first = _dropped_share(steady[:quarter])
    result.dropped_last = _dropped_share(steady[-quarter:])
    result.rss_growth_mb = statistics.median(s.rss_mb for s in steady[-quarter:]) - (
        statistics.median(s.rss_mb for s in steady[:quarter])
    )
    hours = (steady[-1].t - steady[0].t) / 3600
    if hours >= 1 / 3:
        # Long enough for a slope to mean something.
        if result.rss_growth_mb_per_h > RSS_GROWTH_LIMIT_MB_PER_H:
            result.problems.append(
                f"RSS grows {result.rss_growth_mb_per_h:.1f} MB/h"
                f" (limit {RSS_GROWTH_LIMIT_MB_PER_H})"
            )
    elif result.rss_growth_mb > max(RSS_GROWTH_LIMIT_MB_PER_H * hours, NOISE_MB):
        # A few minutes: the allocator's own ups and downs are larger than any hourly slope.
        result.problems.append(
            f"RSS grew {result.rss_growth_mb:.1f} MB in {hours * 60:.0f} min (limit {NOISE_MB})"
        )
    if result.fds[1] - result.fds[0] > 2:
        result.problems.append(f"file descriptors not flat: {result.fds}")
    if result.threads[1] - result.threads[0] > 1:
        result.problems.append(f"threads not flat: {result.threads}")
    if result.dropped_last > max(0.01, 2 * result.dropped_first):
        result.problems.append(
            f"dropped frames grew: {result.dropped_first:.2%} -> {result.dropped_last:.2%}"
        )
    if result.slides < result.seconds * 0.5:
        result.problems.append(f"only {result.slides} slides in {result.seconds:.0f} s")


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (units of y per unit of x)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _dropped_share(window: list[Sample]) -> float:
    frames = [s for s in window if s.frames is not None and s.dropped is not None]
    if len(frames) < 2:
        return 0.0
    drawn = (frames[-1].frames or 0) - (frames[0].frames or 0)
    dropped = (frames[-1].dropped or 0) - (frames[0].dropped or 0)
    return dropped / drawn if drawn > 0 else 0.0


def describe(result: SoakResult) -> str:
    """Return the figures as a few lines of text."""
    return "\n".join(
        [
            f"soak: {result.seconds / 60:.1f} min, {len(result.samples)} samples,"
            f" {result.slides} slides",
            f"  RSS: start {result.rss_start_mb:.1f} MB, end {result.rss_end_mb:.1f} MB, peak"
            f" {result.rss_peak_mb:.1f} MB; after warm-up {result.rss_growth_mb:+.2f} MB"
            f" (slope {result.rss_growth_mb_per_h:+.2f} MB/h, limit"
            f" {RSS_GROWTH_LIMIT_MB_PER_H} MB/h)",
            f"  file descriptors {result.fds[0]}..{result.fds[1]}, threads"
            f" {result.threads[0]}..{result.threads[1]}",
            f"  dropped frames: {result.dropped_first:.2%} first quarter,"
            f" {result.dropped_last:.2%} last quarter",
            "  verdict: " + ("ok" if not result.problems else "; ".join(result.problems)),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="soak the player")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--out", type=Path, help="write every sample as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="signage-soak-") as scratch:
        result = run_soak(args.minutes * 60, workdir=Path(scratch), sample_s=args.sample_s)
    print(describe(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    return 0 if not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
