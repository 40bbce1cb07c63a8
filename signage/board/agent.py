"""The board agent: builds every object and wires them together (see DESIGN.md, "Threads").

pygame owns the main thread (:class:`Display`). One worker thread runs an asyncio loop with the
jobs and the :class:`Conductor`, which decides what plays (the planner), composes the next slide
in a small thread pool before it is due, posts it to the display, and writes the play log when
the display reports a slide on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import io
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pygame
from PIL import Image

from signage.board import health
from signage.board.config import BoardConfig, read_trust
from signage.board.display import (
    Blank,
    Capture,
    Display,
    DisplayStats,
    Overlay,
    Show,
    Stop,
    frame_to_surface,
)
from signage.board.folder import EMPTY, FolderWatcher, Programme, clean_snapshots
from signage.board.jobs import CLOCK_JUMP_S, ClockWatch, Jobs
from signage.board.link import Link, read_token
from signage.board.service import (
    Notifier,
    claim_pid,
    local_blank,
    release_pid,
    set_local_blank,
    write_status,
)
from signage.board.slides import build_stack
from signage.board.sync import ContentSync
from signage.compose import DEFAULT_MAX_PIXELS, BoardInfo, Composer
from signage.errors import ConfigError, ErrorCode, SignageError
from signage.layout import Size
from signage.model import Item, Window, board_timezone, parse_item
from signage.plan import Decision, RotationState, choose, must_interrupt, next_window_change
from signage.protocol import Trust
from signage.store import ContentStore, PlayLog

log = logging.getLogger("signage.agent")

PREPARE_LEAD_S = 1.5  # compose the next slide this long before it is due
WATCH_S = 1.0  # folder and clock checks; a folder change shows within 1-2 s
HEARTBEAT_S = 60.0
STATUS_S = 5.0  # status.json for `signage diag` in another process
CLEANUP_S = 6 * 3600.0
IDLE_ITEM = {"id": "idle", "template": "clock", "fields": {}}
StatusSource = Callable[[], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PlayResult:
    """How a run of the player ended: its display statistics; ``restart`` when the hub asked
    for a restart (the command line then exits with EXIT_RESTART for systemd to start it)."""

    stats: DisplayStats
    restart: bool = False


EXIT_RESTART = 75  # EX_TEMPFAIL: "try again", which Restart=always does


@dataclass(frozen=True, slots=True)
class Shown:
    """What the display reported on screen: the decision behind it, its play-log row, and when
    it appeared by the wall clock and by the monotonic one."""

    decision: Decision
    row: int | None
    wall: float = 0.0
    mono: float = 0.0


class Conductor:
    """Decides, prepares and logs slides. Lives on the worker thread's event loop."""

    def __init__(
        self,
        config: BoardConfig,
        composer: Composer,
        display: Display,
        playlog: PlayLog,
        watcher: FolderWatcher | None,
        loop: asyncio.AbstractEventLoop,
        screen: Size,
        sync: ContentSync | None = None,
    ) -> None:
        self.config = config
        self.composer = composer
        self.display = display
        self.playlog = playlog
        self.watcher = watcher
        self.loop = loop
        self.screen = screen
        self.tz: ZoneInfo = board_timezone(config.timezone)
        self.board = BoardInfo(name=config.name, tz=self.tz, logo=config.logo)
        self.jobs = Jobs(loop, self.tz)
        self.clock = ClockWatch()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="compose")
        self._process = psutil.Process()
        self.programme: Programme = EMPTY
        self.alerts: tuple[Item, ...] = ()
        self.state = RotationState()
        self.on_screen: Shown | None = None
        self.planned: Decision | None = None  # the decision composed and posted, not yet shown
        self.idle_item = parse_item(IDLE_ITEM)
        self.sync = sync
        self.link: Link | None = None
        self.restart_requested = False
        self.screen_on = True
        self.blank_reason: str | None = None  # local, command or schedule while blanked
        self._link_task: asyncio.Task[None] | None = None
        self._generation = 0

    # -- start and stop -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover the play log, load the programme, schedule the jobs and show the first slide."""
        closed = self.playlog.recover(self._now())
        if closed:
            log.info("playlog recovered open_rows=%d", closed)
        if self.watcher is not None:
            self.programme = self.watcher.load_now() or EMPTY
        elif self.sync is not None:
            # Offline start: what was committed before plays at once, link or no link.
            self.programme = await self.loop.run_in_executor(self.pool, self.sync.programme)
        if self.sync is not None:
            self.alerts = self.sync.alert_items(self._now())
        self._journal("start", software=health.software(), programme=self.programme.source)
        self.jobs.start()
        if self.watcher is not None:
            self.jobs.every("watch", WATCH_S, self._watch)
        self.jobs.every("clock", WATCH_S, self._clock)
        self.jobs.every("heartbeat", HEARTBEAT_S, self._heartbeat)
        self.jobs.every("cleanup", CLEANUP_S, self._cleanup)
        self.jobs.every("status", STATUS_S, self._write_status)
        self._power()
        await self.advance(self._now(), cut=True)
        if self.link is not None:
            self._link_task = self.loop.create_task(self.link.run())
        await self._write_status()  # diagnostics see a running player at once

    async def stop_link(self) -> None:
        """Close the link to the hub, if there is one."""
        if self.link is not None:
            await self.link.stop()
        if self._link_task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._link_task, timeout=5)

    def stop(self) -> None:
        """Stop the jobs, close the play log's open row and the pool."""
        self.jobs.shutdown()
        if self.on_screen is not None and self.on_screen.row is not None:
            self._end_play(self.on_screen, self._now())
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- deciding and preparing -------------------------------------------------------------------

    async def advance(self, at: datetime, cut: bool = False) -> None:
        """Decide the slide for moment ``at``, compose it and post it to show at ``at``."""
        self._generation += 1
        generation = self._generation
        decision = choose(self.programme.items, self.alerts, at, self.tz, self.state)
        self.state = decision.state
        try:
            show = await self.loop.run_in_executor(self.pool, self._compose, decision, at, cut)
        except Exception as exc:  # one bad slide must not stop the rotation
            # The programme was validated, so this is rare (a snapshot deleted by hand, a bug):
            # the current slide stays on screen and the rotation moves on to the next item.
            log.error("compose failed item=%s reason=%s", _key(decision), exc, exc_info=True)
            self.planned = replace(decision, until=self._now() + timedelta(seconds=1))
            self.jobs.at("advance", self._now() + timedelta(seconds=1), self._next)
            return
        if generation != self._generation:
            return  # overtaken by an interruption while composing
        self.planned = decision
        self.display.post(show)
        self._schedule(decision)

    def _compose(self, decision: Decision, at: datetime, cut: bool) -> Show:
        item = decision.item or self.idle_item
        fields = dict(item.fields)
        # The board's ticker runs under every slide, but not under an emergency warning.
        if self.programme.ticker and "ticker" not in fields and decision.reason != "emergency":
            template = self.composer.library.get(item.template)
            if "ticker" in template.fields:
                fields["ticker"] = self.programme.ticker
        item = replace(item, fields=fields)
        frame = self.composer.render(
            item,
            self.screen,
            at,
            self.board,
            self.programme.resolver(),
            self.config.rotate,
            layers=True,
        )
        for error in frame.errors:
            log.warning("slide error item=%s error=%s", item.id, error)
        surface, tickers = frame_to_surface(frame)
        delay = max(0.0, (at - self._now()).total_seconds())
        emergency = decision.reason == "emergency" and not self._showing_emergency()
        return Show(
            key=_key(decision),
            surface=surface,
            tickers=tickers,
            transition="cut" if cut or decision.reason == "emergency" else self.config.transition,
            emergency=emergency,
            at=time.monotonic() + delay,
            token=decision,
            supersede=cut,
        )

    def _schedule(self, decision: Decision) -> None:
        prepare = decision.until - timedelta(seconds=PREPARE_LEAD_S)
        self.jobs.at("advance", max(prepare, self._now()), self._next)
        if decision.deadline is not None and decision.deadline < decision.until:
            self.jobs.at("deadline", decision.deadline, self._deadline)
        else:
            self.jobs.cancel("deadline")

    async def _next(self) -> None:
        planned = self.planned
        at = planned.until if planned is not None else self._now()
        await self.advance(max(at, self._now()))

    async def _deadline(self) -> None:
        current = self.planned
        item = current.item if current is not None else None
        now = self._now()
        if must_interrupt(item, self.programme.items, self.alerts, now, self.tz):
            log.info("plan interrupted at=%s current=%s", now.isoformat(), _key(current))
            await self.advance(now, cut=True)
        elif current is not None:
            self._schedule(replace(current, deadline=self._later_deadline(now)))

    def _later_deadline(self, now: datetime) -> datetime | None:
        return choose(self.programme.items, self.alerts, now, self.tz, self.state).deadline

    def _showing_emergency(self) -> bool:
        shown = self.on_screen
        return shown is not None and shown.decision.reason == "emergency"

    # -- what the display reports ---------------------------------------------------------------

    def shown(self, show: Show, wall: float) -> None:
        """Record that ``show`` reached the screen at ``wall`` (called on the loop thread)."""
        decision = show.token
        if not isinstance(decision, Decision):
            return
        moment = datetime.fromtimestamp(wall, self.tz)
        if self.on_screen is not None and self.on_screen.row is not None:
            self._end_play(self.on_screen, moment)
        item = decision.item or self.idle_item
        planned_end = max(decision.until, moment)
        row = None
        if self.screen_on:  # proof of play only for what people could see
            try:
                row = self.playlog.start(
                    item.id, item.template, decision.reason, moment, planned_end
                )
            except SignageError as exc:
                log.error("playlog write failed reason=%s", exc)
        self.on_screen = Shown(decision, row, wall, time.monotonic())
        log.info("slide shown item=%s reason=%s", item.id, decision.reason)

    def _end_play(self, shown: Shown, moment: datetime) -> None:
        """Close ``shown``'s play-log row at ``moment``; if the wall clock jumped while it was
        on screen (NTP after a boot without a clock battery), at its start plus the time that
        really passed, so proof of play never counts a jump as seconds shown."""
        if shown.row is None:
            return
        passed = max(0.0, time.monotonic() - shown.mono)
        if abs((moment.timestamp() - shown.wall) - passed) > CLOCK_JUMP_S:
            log.info("play closed across a clock jump row=%d seconds=%.1f", shown.row, passed)
            moment = datetime.fromtimestamp(shown.wall + passed, self.tz)
        self.playlog.end(shown.row, moment)

    # -- jobs -----------------------------------------------------------------------------------

    async def _watch(self) -> None:
        if self.watcher is None:
            return
        programme = await self.loop.run_in_executor(self.pool, self.watcher.poll)
        if programme is not None:
            await self.use_programme(programme)

    async def use_programme(self, programme: Programme) -> None:
        """Play ``programme`` from now on (a slide that is no longer eligible is cut short)."""
        self.programme = programme
        await self._replan()

    async def _replan(self) -> None:
        await self._deadline()  # a new emergency or a removed item may have to cut in now
        if self.planned is not None:
            self._schedule(replace(self.planned, deadline=self._later_deadline(self._now())))

    # -- what the link asks (LinkHooks) -----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Return the heartbeat's content, display and system parts."""
        current = self.on_screen.decision if self.on_screen is not None else None
        item = current.item if current is not None else None
        size = self.screen
        return {
            "content": {
                "versions": dict(self.sync.store.versions()) if self.sync else {},
                "source": self.programme.source,
                "items": len(self.programme.items),
                "alerts": [a.id for a in self.alerts if a.is_eligible(self._now(), self.tz)],
                "item": item.id if item is not None else "idle",
                "template": item.template if item is not None else "clock",
                "reason": current.reason if current is not None else "idle",
            },
            "display": {
                **health.display(self.display.stats, self.screen_on, size.width, size.height),
                "blank_reason": self.blank_reason,
                "rotate": self.config.rotate,
            },
            "system": health.system(self.config.data_dir, self._process),
        }

    async def content_changed(self) -> None:
        """Play the store's newly committed programme."""
        if self.sync is not None and self.watcher is None:
            await self.use_programme(
                await self.loop.run_in_executor(self.pool, self.sync.programme)
            )

    async def alerts_changed(self) -> None:
        """Take the alerts in force from the store; an emergency cuts in at once."""
        if self.sync is not None:
            self.alerts = self.sync.alert_items(self._now())
            await self._replan()

    async def run_command(self, name: str, args: dict[str, Any]) -> None:
        """Carry out a verified command from the hub."""
        log.info("command name=%s", name)
        if name in ("blank", "unblank", "power"):
            self._power()  # the store already holds the new blank state or schedule
        elif name == "reload":
            await self.content_changed()
            await self.alerts_changed()
        elif name == "restart":
            self.restart_requested = True
            self.display.post(Stop())
        else:
            raise SignageError(ErrorCode.COMMAND_UNKNOWN, f"no such command: {name}")

    async def screenshot(self) -> bytes:
        """Return a PNG of what is on screen now."""
        future: asyncio.Future[tuple[bytes, tuple[int, int]]] = self.loop.create_future()

        def reply(raw: bytes, size: tuple[int, int]) -> None:
            self.loop.call_soon_threadsafe(future.set_result, (raw, size))

        self.display.post(Capture(reply))
        raw, size = await asyncio.wait_for(future, timeout=5)
        return await self.loop.run_in_executor(self.pool, _png, raw, size)

    async def _clock(self) -> None:
        jump = self.clock.check()
        if jump:
            log.warning("clock jump seconds=%.1f: replanning", jump)
            self._power()
            await self.advance(self._now(), cut=True)

    def _heartbeat(self) -> None:
        process = psutil.Process()
        stats = self.display.stats
        current = self.on_screen.decision if self.on_screen is not None else None
        log.info(
            "heartbeat item=%s cpu=%.1f rss_mb=%.1f slides=%d frames=%d dropped=%d",
            _key(current),
            process.cpu_percent(None),
            process.memory_info().rss / 2**20,
            stats.slides,
            stats.frames,
            stats.dropped,
        )

    def _cleanup(self) -> None:
        removed = clean_snapshots(self._snapshots(), self.programme.assets)
        if removed:
            log.info("cache cleaned files=%d", removed)

    def _snapshots(self) -> Path:
        return self.config.data_dir / "assets"

    def _windows(self) -> tuple[Window, ...]:
        override = self.sync.power_schedule() if self.sync is not None else None
        return override if override is not None else self.config.power_on

    def _power(self) -> None:
        windows = self._windows()
        blanked = self.sync is not None and self.sync.blanked()
        switched = local_blank(self.config.data_dir) is not None
        if not windows and not blanked and not switched and self.screen_on:
            return
        now = self._now()
        local = now.astimezone(self.tz)
        scheduled = not windows or any(window.contains(local) for window in windows)
        on = scheduled and not blanked and not switched
        changed = on != self.screen_on
        self.screen_on = on
        shown = self.on_screen
        if changed and not on and shown is not None and shown.row is not None:
            # The slide left people's sight when the screen went dark: its play ends now.
            self._end_play(shown, now)
            self.on_screen = replace(shown, row=None)
        self.blank_reason = (
            None if on else "local" if switched else "command" if blanked else "schedule"
        )
        self.display.post(Blank(not on))
        command = self.config.power_on_command if on else self.config.power_off_command
        if command and (changed or not blanked):
            try:
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError as exc:
                log.error("power command failed command=%s reason=%s", command[0], exc)
        change = next_window_change(windows, now, self.tz) if windows else None
        if change is not None:
            self.jobs.at("power", change, self._power)
        else:
            self.jobs.cancel("power")

    # -- the technician's switch and tools ------------------------------------------------------

    async def local_blank_changed(self) -> None:
        """The local blank switch was turned (``signage blank``): apply it now."""
        log.info("local blank switch on=%s", local_blank(self.config.data_dir) is not None)
        self._power()

    async def toggle_local_blank(self) -> None:
        """The technician's key combination: turn the local blank switch over."""
        on = local_blank(self.config.data_dir) is None
        await self.loop.run_in_executor(
            self.pool, lambda: set_local_blank(self.config.data_dir, on, "keyboard", notify=False)
        )
        await self.local_blank_changed()

    async def snapshot(self) -> dict[str, Any]:
        """Return the full status a heartbeat would carry (with or without a hub)."""
        if self.link is not None:
            return self.link.status()
        status = self.status()
        status["board"] = self.config.board_id
        status["software"] = health.software()
        status["time"] = self._now().isoformat(timespec="seconds")
        status["outbox"] = self.playlog.pending_count()
        return status

    async def _write_status(self) -> None:
        status = await self.snapshot()
        try:
            await self.loop.run_in_executor(self.pool, write_status, self.config.data_dir, status)
        except OSError as exc:
            log.warning("status snapshot not written reason=%s", exc)

    def _now(self) -> datetime:
        return datetime.now(self.tz)

    def _journal(self, kind: str, **data: Any) -> None:
        try:
            self.playlog.event(kind, self._now(), **data)
        except SignageError as exc:
            log.error("outbox write failed reason=%s", exc)


def _png(raw: bytes, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, raw).save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _key(decision: Decision | None) -> str:
    if decision is None or decision.item is None:
        return "idle"
    return decision.item.id


def tune_memory() -> None:
    """Ask glibc to return large freed buffers to the system at once.

    A board composes full-screen images over and over: buffers of several megabytes that live
    for a moment. glibc's adaptive mmap threshold would move them onto the heap after the first
    free, where they stay as resident memory; a fixed threshold of 256 KiB and two arenas (one
    per busy thread group) keep the resident size flat. Does nothing where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        log.debug("mallopt unavailable: keeping the allocator's defaults")


_M_MMAP_THRESHOLD = -3  # mallopt parameters from glibc's malloc.h
_M_ARENA_MAX = -8


def play(
    config: BoardConfig,
    content: Path | None,
    *,
    headless: bool = False,
    exit_after: float | None = None,
    screenshot_dir: Path | None = None,
    overlay: Callable[[StatusSource, Size], Overlay] | None = None,
) -> PlayResult:
    """Run the board until the window is closed, SIGTERM/SIGINT, ``exit_after`` seconds, or a
    restart command from the hub.

    ``overlay`` makes the technician's overlay (diagnostics, on its hotkey) from a function
    that returns the board's live status from any thread, and the screen size. Ctrl+Alt+B
    turns the local blank switch; SIGUSR1 makes the player re-read it (``signage blank``).
    Under systemd the player sends READY=1 after its first frame and WATCHDOG=1 from the
    frame loop.

    Returns the display's statistics and whether a restart was asked for. Raises SignageError
    (fonts, layouts, display, data dir, keys, hub settings) before anything is shown when the
    board cannot start.
    """
    tune_memory()
    stack = build_stack()
    composer = stack.composer
    tz = board_timezone(config.timezone)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    playlog = PlayLog(config.data_dir / "plays.sqlite", tz)
    watcher = None
    if content is not None:
        watcher = FolderWatcher(
            content, composer.library, config.data_dir / "assets", tz, DEFAULT_MAX_PIXELS
        )
    # The store plays what a hub delivered (also offline); folder mode does not use it.
    sync = None
    link_args: tuple[str, str] | None = None
    if content is None:
        trust = read_trust(list(config.trusted_keys)) if config.trusted_keys else Trust(())
        store = ContentStore(config.data_dir / "store", config.cache_quota_bytes)
        sync = ContentSync(store, trust, composer.library, config.area, tz, DEFAULT_MAX_PIXELS)
        if config.hub_url is not None:
            if not config.trusted_keys:
                raise ConfigError(
                    ErrorCode.CONFIG_INVALID,
                    "a board with a hub needs the publishers' public keys",
                    path="hub.trusted_keys",
                )
            link_args = (config.hub_url, read_token(config.hub_token_file))
    display = Display(
        config.size,
        fullscreen=config.fullscreen,
        headless=headless,
        output=config.output,
        fps=config.fps,
        transition_ms=config.transition_ms,
        screenshot_dir=screenshot_dir,
        chime=config.chime,
    )
    screen = display.open()
    loop = asyncio.new_event_loop()
    conductor = Conductor(config, composer, display, playlog, watcher, loop, screen, sync)
    if sync is not None and link_args is not None:
        conductor.link = Link(
            link_args[0],
            link_args[1],
            config.board_id,
            sync,
            playlog,
            conductor,
            tz,
            ca_file=config.hub_ca_file,
            allow_insecure=config.allow_insecure,
            report_hold_s=config.report_hold_s,
        )

    def on_shown(show: Show, wall: float) -> None:
        loop.call_soon_threadsafe(conductor.shown, show, wall)

    display.on_shown = on_shown
    notifier = Notifier.from_env()
    display.tick = notifier.tick

    def on_key(key: int, mod: int) -> None:
        if key == pygame.K_b and mod & pygame.KMOD_CTRL and mod & pygame.KMOD_ALT:
            asyncio.run_coroutine_threadsafe(conductor.toggle_local_blank(), loop)

    display.on_key = on_key
    if overlay is not None:

        def live_status() -> dict[str, Any]:
            return asyncio.run_coroutine_threadsafe(conductor.snapshot(), loop).result(5)

        display.overlay = overlay(live_status, screen)
    ready = threading.Event()

    def worker() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(conductor.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=worker, name="board-worker", daemon=True)
    thread.start()
    previous = _on_signals(lambda: display.post(Stop()))
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGUSR1] = signal.signal(
            signal.SIGUSR1,
            lambda *_: asyncio.run_coroutine_threadsafe(conductor.local_blank_changed(), loop),
        )
    claim_pid(config.data_dir)  # only once SIGUSR1 is handled: `signage blank` may signal
    deadline = time.monotonic() + exit_after if exit_after is not None else None
    try:
        stats = display.run(deadline)
    finally:
        notifier.stopping()
        release_pid(config.data_dir)
        _restore_signals(previous)
        ready.wait(timeout=10)
        stop_done = threading.Event()

        async def stop() -> None:
            try:
                await conductor.stop_link()
                conductor.stop()
            finally:
                loop.stop()
                stop_done.set()

        loop.call_soon_threadsafe(lambda: loop.create_task(stop()))
        stop_done.wait(timeout=10)
        thread.join(timeout=10)
        playlog.close()
        display.close()
    return PlayResult(stats, conductor.restart_requested)


def _on_signals(handler: object) -> dict[int, object]:
    previous: dict[int, object] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda *_: handler())  # type: ignore[operator]
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]
