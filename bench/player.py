"""Benchmarks of the player (issue 3). Prints figures and the targets; exit 1 if one is missed.

(a) CPU of `signage play` on a static 1080p slide, target <= 2% of one core;
(b) frame time with a ticker and crossfades at 1920x1080 under SDL offscreen with
    SDL_FRAMEBUFFER_ACCELERATION=0, target p99 <= 8 ms and no dropped frame at 60 Hz;
(c) peak RSS over 1,000 slide changes (compose -> surface -> display), target <= 150 MB and
    <= 5 MB growth after the first 100;
(d) start to first frame with cached content, target <= 2 s;
(e) the same slide and ticker as an HTML page with a CSS animation in headless Chromium: our CPU
    and RSS as ratios of Chromium's over the same time, target <= 0.25 each.

    .venv/bin/python bench/player.py [--seconds 60] [--only a,b,c,d,e]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 21, 8, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
TICKER = (
    "Tuần lễ cao điểm phòng, chống dịch sốt xuất huyết từ 23/11 đến 30/11/2026 — Đổ bỏ vật chứa"
    " nước đọng quanh nhà. Thực hiện tốt an toàn giao thông, đội mũ bảo hiểm khi đi xe máy."
)
BODY = "Toàn dân đoàn kết xây dựng nông thôn mới, đô thị văn minh"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _folder(root: Path, ticker: bool) -> Path:
    folder = root / ("with-ticker" if ticker else "static")
    folder.mkdir(parents=True, exist_ok=True)
    item = {"id": "static", "template": "text-only", "duration_s": 86400, "fields": {"body": BODY}}
    if ticker:
        item["fields"]["ticker"] = TICKER  # type: ignore[index]
    (folder / "items.json").write_text(json.dumps([item], ensure_ascii=False), encoding="utf-8")
    return folder


def _play(
    folder: Path, data: Path, seconds: float, shots: Path | None = None
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "signage",
        "play",
        "--content",
        str(folder),
        "--headless",
        "--size",
        "1920x1080",
        "--exit-after",
        str(seconds),
        "--data-dir",
        str(data),
    ]
    if shots is not None:
        command += ["--screenshot-dir", str(shots)]
    env = {**os.environ, "SDL_FRAMEBUFFER_ACCELERATION": "0", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env
    )


def _usage(pids: Callable[[], list[psutil.Process]], seconds: float) -> tuple[float, float]:
    """Return (CPU % of one core, peak RSS MiB) of the processes over ``seconds``."""

    def cpu(processes: list[psutil.Process]) -> float:
        total = 0.0
        for proc in processes:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def rss(processes: list[psutil.Process]) -> float:
        total = 0
        for proc in processes:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total / 2**20

    start_cpu, start = cpu(pids()), time.monotonic()
    peak = 0.0
    while time.monotonic() - start < seconds:
        time.sleep(1.0)
        peak = max(peak, rss(pids()))
    used = cpu(pids()) - start_cpu
    return 100.0 * used / (time.monotonic() - start), peak


def bench_static_cpu(root: Path, seconds: float) -> dict[str, float]:
    process = _play(_folder(root, ticker=False), root / "data-a", seconds + 15)
    time.sleep(10)  # start-up and first slide are not what this measures
    cpu, peak = _usage(lambda: [psutil.Process(process.pid)], seconds)
    process.wait(timeout=60)
    return {"cpu_percent": cpu, "rss_mib": peak}


def bench_frames(seconds: float) -> dict[str, float]:
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
    os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "0"
    from signage.board.display import Display, Show, frame_to_surface
    from signage.board.slides import build_stack, read_item
    from signage.compose import BoardInfo, folder_assets
    from signage.layout import Size
    from signage.model import parse_item

    composer = build_stack().composer
    size = Size(1920, 1080)
    board = BoardInfo(name="UBND xã Sa Thầy")
    samples = REPO / "layouts" / "samples"
    items = [
        read_item(samples / "announcement.json"),
        parse_item(
            {"id": "t", "template": "text-only", "fields": {"body": BODY, "ticker": TICKER}}
        ),
    ]
    prepared = []
    for item in items:
        frame = composer.render(item, size, NOW, board, folder_assets(samples), layers=True)
        prepared.append((item.id, *frame_to_surface(frame)))
    display = Display(size, headless=True, fps=60, transition_ms=800)
    display.open()
    start = time.monotonic()
    changes = 0
    while time.monotonic() - start < seconds:
        key, surface, tickers = prepared[changes % 2]
        # As the agent does: the next slide arrives ahead of its moment, so converting it and
        # starting its crossfade happen in different frames.
        display.post(Show(key, surface, tickers, transition="fade", at=time.monotonic() + 0.5))
        changes += 1
        display.run(deadline=min(start + seconds, time.monotonic() + 4.0))
    stats = display.stats
    display.close()
    work = list(stats.intervals_ms)
    draw = list(stats.work_ms)
    return {
        "frames": stats.frames,
        "crossfades": changes - 1,
        "draw_p50_ms": _p(draw, 0.5),
        "draw_p99_ms": _p(draw, 0.99),
        "interval_p50_ms": _p(work, 0.5),
        "interval_p99_ms": _p(work, 0.99),
        "dropped": stats.dropped,
    }


def bench_memory(changes: int) -> dict[str, float]:
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
    os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "0"
    from signage.board.agent import tune_memory
    from signage.board.display import Display, Show, frame_to_surface
    from signage.board.slides import build_stack, read_item, sample_items
    from signage.compose import BoardInfo, folder_assets
    from signage.layout import Size

    tune_memory()  # as `signage play` does
    composer = build_stack().composer
    size = Size(1920, 1080)
    board = BoardInfo(name="UBND xã Sa Thầy")
    items = [(p.parent, read_item(p)) for p in sample_items()]
    display = Display(size, headless=True, fps=60, transition_ms=0)
    display.open()
    me = psutil.Process()
    rss: list[float] = []
    for n in range(changes):
        folder, item = items[n % len(items)]
        # A new time each change, so clock and header text are really composed again.
        moment = NOW.replace(minute=n % 60, second=n % 60)
        frame = composer.render(item, size, moment, board, folder_assets(folder), layers=True)
        surface, tickers = frame_to_surface(frame)
        del frame  # as the agent does: only the display keeps what is on screen
        display.post(Show(item.id, surface, tickers, transition="cut"))
        del surface, tickers
        display.run(deadline=time.monotonic() + 0.02)
        rss.append(me.memory_info().rss / 2**20)
    display.close()
    return {
        "changes": changes,
        "rss_after_100_mib": rss[99],
        "rss_peak_mib": max(rss),
        "rss_end_mib": rss[-1],
        # Growth compares like with like: the peak of changes 100-199 against the peak of the
        # last 100 (both windows cover every template, so periodic peaks cancel out).
        "growth_after_100_mib": max(rss[-100:]) - max(rss[100:200]),
    }


def bench_first_frame(root: Path) -> dict[str, float]:
    folder = _folder(root, ticker=True)
    times = []
    for attempt in range(3):
        shots = root / f"shots-d{attempt}"
        started = time.monotonic()
        process = _play(folder, root / "data-d", 30, shots)
        while not list(shots.glob("*.png")) and time.monotonic() - started < 30:
            time.sleep(0.01)
        times.append(time.monotonic() - started)
        process.terminate()
        process.wait(timeout=30)
    return {"cold_s": times[0], "cached_median_s": statistics.median(times[1:])}


def bench_chromium(root: Path, seconds: float) -> dict[str, float]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {"skipped": 1.0}
    from signage.board.slides import build_stack
    from signage.compose import BoardInfo, folder_assets
    from signage.layout import Size
    from signage.model import parse_item

    composer = build_stack().composer
    item = parse_item({"id": "t", "template": "text-only", "fields": {"body": BODY}})
    frame = composer.render(item, Size(1920, 1080), NOW, BoardInfo(), folder_assets(root))
    buffer = io.BytesIO()
    frame.image.save(buffer, format="PNG")
    slide = base64.b64encode(buffer.getvalue()).decode("ascii")
    page = root / "slide.html"
    page.write_text(
        f"""<!doctype html><html lang="vi"><meta charset="utf-8"><style>
html,body{{margin:0;width:1920px;height:1080px;overflow:hidden;background:#000}}
.slide{{position:absolute;inset:0;background:url(data:image/png;base64,{slide})}}
.strip{{position:absolute;left:0;right:0;bottom:0;height:86px;background:#7A0A12;overflow:hidden}}
.line{{position:absolute;white-space:nowrap;font:600 56px 'Be Vietnam Pro',sans-serif;color:#fff;
top:12px;animation:run 40s linear infinite}}
@keyframes run{{from{{transform:translateX(1920px)}}to{{transform:translateX(-100%)}}}}
</style><div class="slide"></div>
<div class="strip"><div class="line">{TICKER}</div></div></html>""",
        encoding="utf-8",
    )
    profile = tempfile.mkdtemp(prefix="chromium-", dir=root)
    browser = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            f"--user-data-dir={profile}",
            "--window-size=1920,1080",
            "--remote-debugging-port=0",
            page.as_uri(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(8)

    def tree() -> list[psutil.Process]:
        try:
            parent = psutil.Process(browser.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.Error:
            return []

    chrome_cpu, chrome_rss = _usage(tree, seconds)
    browser.terminate()
    browser.wait(timeout=30)
    ours = _play(_folder(root, ticker=True), root / "data-e", seconds + 15)
    time.sleep(10)
    our_cpu, our_rss = _usage(lambda: [psutil.Process(ours.pid)], seconds)
    ours.wait(timeout=60)
    return {
        "chromium_cpu_percent": chrome_cpu,
        "chromium_rss_mib": chrome_rss,
        "ours_cpu_percent": our_cpu,
        "ours_rss_mib": our_rss,
        "cpu_ratio": our_cpu / chrome_cpu if chrome_cpu else float("nan"),
        "rss_ratio": our_rss / chrome_rss if chrome_rss else float("nan"),
    }


def main() -> int:
    """Run the selected benchmarks and print their figures; 0 when every target is met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--only", default="a,b,c,d,e")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    if len(chosen) > 1:
        # Each benchmark in a process of its own: one's memory must not count in another's RSS.
        ok = True
        for key in sorted(chosen):
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--only",
                    key,
                    "--seconds",
                    str(args.seconds),
                    "--changes",
                    str(args.changes),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [ln for ln in run.stdout.splitlines() if ln.startswith(f"({key})")]
            print("\n".join(lines) or run.stdout + run.stderr, flush=True)
            ok = ok and run.returncode == 0
        print("all targets met" if ok else "some targets missed")
        return 0 if ok else 1
    ok = True
    with tempfile.TemporaryDirectory(prefix="signage-bench-") as tmp:
        root = Path(tmp)
        shutil.copy(REPO / "layouts" / "samples" / "dong-lua.jpg", root / "dong-lua.jpg")
        if "a" in chosen:
            a = bench_static_cpu(root, args.seconds)
            ok &= a["cpu_percent"] <= 2.0
            print(
                f"(a) static 1080p slide, {args.seconds:.0f} s: CPU {a['cpu_percent']:.2f}% of one"
                f" core (target <= 2%), RSS {a['rss_mib']:.0f} MiB"
            )
        if "b" in chosen:
            b = bench_frames(args.seconds)
            ok &= b["draw_p99_ms"] <= 8.0 and b["dropped"] == 0
            print(
                f"(b) ticker + crossfades 1920x1080, {args.seconds:.0f} s,"
                f" {b['frames']:.0f} frames,"
                f" {b['crossfades']:.0f} crossfades: frame time p50 {b['draw_p50_ms']:.2f} ms,"
                f" p99 {b['draw_p99_ms']:.2f} ms (target <= 8 ms); frame interval p50"
                f" {b['interval_p50_ms']:.2f} ms, p99 {b['interval_p99_ms']:.2f} ms;"
                f" dropped {b['dropped']:.0f} (target 0)"
            )
        if "c" in chosen:
            c = bench_memory(args.changes)
            ok &= c["rss_peak_mib"] <= 150 and c["growth_after_100_mib"] <= 5
            print(
                f"(c) {c['changes']:.0f} slide changes:"
                f" RSS after 100 {c['rss_after_100_mib']:.1f} MiB,"
                f" peak {c['rss_peak_mib']:.1f} MiB (target <= 150), growth after the first 100"
                f" {c['growth_after_100_mib']:.1f} MiB (target <= 5)"
            )
        if "d" in chosen:
            d = bench_first_frame(root)
            ok &= d["cached_median_s"] <= 2.0
            print(
                f"(d) start to first frame: first run {d['cold_s']:.2f} s, with cached content"
                f" median {d['cached_median_s']:.2f} s (target <= 2 s)"
            )
        if "e" in chosen:
            e = bench_chromium(root, args.seconds)
            if "skipped" in e:
                print(
                    "(e) skipped: Debian's chromium is not installed (apt-get install -y chromium)"
                )
            else:
                ok &= e["cpu_ratio"] <= 0.25 and e["rss_ratio"] <= 0.25
                print(
                    f"(e) same slide + ticker, {args.seconds:.0f} s: Chromium CPU"
                    f" {e['chromium_cpu_percent']:.1f}%, RSS {e['chromium_rss_mib']:.0f} MiB;"
                    f" ours CPU {e['ours_cpu_percent']:.2f}%, RSS {e['ours_rss_mib']:.0f} MiB;"
                    f" ratios CPU {e['cpu_ratio']:.3f}, RSS {e['rss_ratio']:.3f}"
                    f" (targets <= 0.25)"
                )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
