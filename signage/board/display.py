"""The screen: a pygame loop on the main thread that only blits prepared surfaces.

Other threads post immutable messages (:class:`Show`, :class:`Blank`, :class:`Stop`,
:class:`Capture`) to its queue. The loop is events -> update -> draw. A static slide costs
almost nothing: the loop blocks on its queue and wakes ten times a second for window events. A
transition or a ticker runs at the refresh rate; a ticker redraws only its strip. A slide that is
late never leaves the screen black: the current one stays until the next is ready. An emergency
cuts in at once.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import pygame
from PIL import Image

from signage.compose import Frame, TickerLayer
from signage.errors import DisplayError, ErrorCode
from signage.layout import Rect, Size

log = logging.getLogger("signage.display")

STATIC_WAKE_S = 0.1  # how often a static screen looks at window events
FRAME_HISTORY = 4096


@dataclass(frozen=True, slots=True)
class Ticker:
    """A ticker ready to scroll: its layer as surfaces and where it lands on the screen."""

    key: tuple[object, ...]
    rect: Rect  # on screen (after rotation)
    backdrop: pygame.Surface
    line: pygame.Surface
    speed: float
    rotate: int


@dataclass(frozen=True, slots=True)
class Show:
    """Put ``surface`` on screen (with ``transition``) as soon as it arrives, or at ``at``
    (a ``time.monotonic()`` moment) if that is later. ``key`` names it in logs and screenshots.
    """

    key: str
    surface: pygame.Surface
    tickers: tuple[Ticker, ...] = ()
    transition: str = "fade"
    emergency: bool = False
    at: float = 0.0
    token: object = None  # handed back to ``on_shown``
    converted: bool = False  # surfaces already in the screen's format (set by the display)
    supersede: bool = False  # drop slides posted earlier and not shown yet (a replan)


@dataclass(frozen=True, slots=True)
class Blank:
    """Blank the screen (power schedule, technician switch) or wake it again."""

    on: bool


@dataclass(frozen=True, slots=True)
class Stop:
    """End the loop."""


@dataclass(frozen=True, slots=True)
class Capture:
    """Copy what is on screen: ``reply`` gets its RGB bytes and (width, height), on the
    display's thread (keep it short: hand the bytes to another thread to encode)."""

    reply: Callable[[bytes, tuple[int, int]], None]


Message = Show | Blank | Stop | Capture


class Overlay(Protocol):
    """Something drawn over the slides on a key press (the technician's diagnostics). Playback
    goes on underneath; the slide on screen comes back when it closes. Called on the display's
    thread: keep every method quick (prepare pictures on another thread)."""

    def key(self, key: int, mod: int, now: float) -> bool:
        """A key went down; return True when the overlay used it."""

    def active(self, now: float) -> bool:
        """Return True while the overlay is up (it may close itself after inactivity)."""

    def draw(self, screen: pygame.Surface, now: float, force: bool) -> bool:
        """Draw onto ``screen`` if something changed (or ``force``); return True if it drew."""

    def animating(self) -> bool:
        """Return True while it needs every frame (a moving test pattern)."""


@dataclass(slots=True)
class DisplayStats:
    """What the loop measured: frames drawn, frame intervals while animating, drops."""

    frames: int = 0
    slides: int = 0
    dropped: int = 0
    intervals_ms: deque[float] = field(default_factory=lambda: deque(maxlen=FRAME_HISTORY))
    work_ms: deque[float] = field(default_factory=lambda: deque(maxlen=FRAME_HISTORY))


def frame_to_surface(frame: Frame) -> tuple[pygame.Surface, tuple[Ticker, ...]]:
    """Return the frame's image and ticker layers as pygame surfaces (any thread may call this)."""
    surface = _surface(frame.image)
    content = frame.scene.size
    tickers = tuple(_ticker(layer, content, frame.rotate) for layer in frame.tickers)
    return surface, tickers


def _surface(image: Image.Image) -> pygame.Surface:
    # 32-bit BGRA is the usual screen format (XRGB8888): the display's later convert() is then
    # little more than a copy, and that part runs on the frame loop.
    if image.mode == "RGBA":
        return pygame.image.frombuffer(image.tobytes("raw", "BGRA"), image.size, "BGRA")
    if image.mode != "RGB":
        image = image.convert("RGB")
    # Opaque images: the fourth byte is padding (0). The display always convert()s a slide before
    # drawing it, which drops that channel, so the surface is never blitted as transparent.
    return pygame.image.frombuffer(image.tobytes("raw", "BGRX"), image.size, "BGRA")


def _ticker(layer: TickerLayer, content: Size, rotate: int) -> Ticker:
    return Ticker(
        key=layer.key,
        rect=layer.rect.rotated(content, rotate),
        backdrop=_surface(layer.backdrop),
        line=_surface(layer.line),
        speed=layer.speed,
        rotate=rotate,
    )


class Display:
    """The fullscreen (or windowed, or headless) screen and its loop."""

    def __init__(
        self,
        size: Size | None,
        *,
        fullscreen: bool = True,
        headless: bool = False,
        output: int = 0,
        fps: int = 60,
        transition_ms: int = 600,
        screenshot_dir: Path | None = None,
        chime: Path | None = None,
        on_shown: Callable[[Show, float], None] | None = None,
        probe: Callable[[pygame.Surface], None] | None = None,
        overlay: Overlay | None = None,
        on_key: Callable[[int, int], None] | None = None,
        tick: Callable[[int, float], None] | None = None,
    ) -> None:
        self.requested = size
        self.fullscreen = fullscreen and not headless
        self.headless = headless
        self.output = output
        self.fps = fps
        self.transition_s = transition_ms / 1000
        self.screenshot_dir = screenshot_dir
        self.chime_path = chime
        self.on_shown = on_shown
        self.probe = probe  # sees the screen after every drawn frame (tests and benchmarks)
        self.overlay = overlay
        self.on_key = on_key  # keys the overlay did not use (the local blank switch)
        self.tick = tick  # every pass of the loop: (frames drawn, monotonic now), the watchdog
        self.stats = DisplayStats()
        self.size = size or Size(1920, 1080)
        self._queue: queue.Queue[Message] = queue.Queue()
        self._screen: pygame.Surface | None = None
        self._current: Show | None = None
        self._previous: pygame.Surface | None = None
        self._pending: list[Show] = []  # waiting for their moment, in order of ``at``
        self._transition_start = 0.0
        self._tickers: tuple[Ticker, ...] = ()
        self._ticker_since: dict[tuple[object, ...], float] = {}
        self._blank = False
        self._dirty = True
        self._chime: pygame.mixer.Sound | None = None
        self._running = False
        self._shots = 0
        self._overlaid = False  # the overlay was up on the last drawn frame

    # -- any thread ---------------------------------------------------------------------------

    def post(self, message: Message) -> None:
        """Queue ``message`` for the loop (thread-safe)."""
        self._queue.put(message)

    # -- main thread ----------------------------------------------------------------------------

    def open(self) -> Size:
        """Open the window or screen and return its size in pixels. Raises DisplayError."""
        if self.headless:
            os.environ["SDL_VIDEODRIVER"] = "offscreen"
        # A software framebuffer is the cheap path measured on X11 and offscreen; SDL's Wayland
        # driver has none and draws through OpenGL instead.
        wayland = os.environ.get("SDL_VIDEODRIVER", "").startswith("wayland")
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "1" if wayland else "0")
        try:
            self._open()
        except pygame.error as exc:
            if "framebuffer" not in str(exc).lower() or _accelerated():
                raise DisplayError(
                    ErrorCode.DISPLAY_FAILED,
                    f"cannot open the screen ({exc}); try --windowed, or --headless without a"
                    " display",
                ) from exc
            log.warning("no software framebuffer here (%s): drawing through OpenGL", exc)
            pygame.display.quit()
            os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "1"
            try:
                self._open()
            except pygame.error as again:
                raise DisplayError(
                    ErrorCode.DISPLAY_FAILED, f"cannot open the screen ({again})"
                ) from again
        screen = self._require_screen()
        screen.fill((0, 0, 0))
        pygame.display.flip()
        if self.chime_path is not None:
            self._chime = _load_chime(self.chime_path)
        log.info("display open size=%dx%d", self.size.width, self.size.height)
        return self.size

    def _open(self) -> None:
        try:
            pygame.display.init()
            if self.fullscreen:
                desktop = pygame.display.get_desktop_sizes()
                screen = desktop[self.output] if self.output < len(desktop) else desktop[0]
                if self.requested is None:
                    self.size = Size(*screen)
                flags = pygame.FULLSCREEN | pygame.NOFRAME
                self._screen = pygame.display.set_mode(
                    (self.size.width, self.size.height), flags, display=self.output
                )
            else:
                self._screen = pygame.display.set_mode((self.size.width, self.size.height))
            pygame.display.set_caption("Bảng tin điện tử")
            pygame.mouse.set_visible(False)
            # A missing framebuffer shows at set_mode or at the first flip.
            pygame.display.flip()
        except pygame.error:
            self._screen = None
            raise

    def run(self, deadline: float | None = None) -> DisplayStats:
        """Run the loop until a Stop message, a window close, or ``deadline`` (monotonic)."""
        if self._screen is None:
            self.open()
        self._running = True
        last = time.monotonic()
        while self._running:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            animating = self._animating(now)
            self._events()
            self._receive(0.0 if animating else self._idle_wait(now, deadline))
            if not animating:
                last = time.monotonic()  # waiting on a static screen is not a dropped frame
            now = time.monotonic()
            started = now
            self._update(now)
            drew = self._draw(now)
            if drew:
                self.stats.frames += 1
                if self.probe is not None:
                    self.probe(self._require_screen())
                self.stats.work_ms.append((time.monotonic() - started) * 1000)
            if self._animating(now):
                self._pace(last)
                tick = time.monotonic()
                interval = (tick - last) * 1000
                self.stats.intervals_ms.append(interval)
                if interval > 1500 / self.fps:
                    self.stats.dropped += 1
                last = tick
            else:
                last = time.monotonic()
            if self.tick is not None:
                self.tick(self.stats.frames, time.monotonic())
        return self.stats

    def close(self) -> None:
        """Close the screen."""
        pygame.display.quit()

    # -- loop parts -----------------------------------------------------------------------------

    def _events(self) -> None:
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self._running = False
            elif event.type == pygame.KEYDOWN:
                now = time.monotonic()
                if self.overlay is not None and self.overlay.key(event.key, event.mod, now):
                    continue
                if event.key == pygame.K_ESCAPE and not self.fullscreen:
                    self._running = False
                elif self.on_key is not None:
                    self.on_key(event.key, event.mod)
            elif event.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE):
                self._dirty = True

    def _idle_wait(self, now: float, deadline: float | None) -> float:
        wait = STATIC_WAKE_S
        if self._pending:
            wait = min(wait, max(0.0, self._pending[0].at - now))
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - now))
        return wait

    def _receive(self, wait: float) -> None:
        try:
            message = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(message)
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                return

    def _handle(self, message: Message) -> None:
        if isinstance(message, Stop):
            self._running = False
        elif isinstance(message, Capture):
            screen = self._require_screen()
            message.reply(pygame.image.tobytes(screen, "RGB"), screen.get_size())
        elif isinstance(message, Blank):
            self._blank = message.on
            self._dirty = True
            log.info("display blank=%s", message.on)
        elif message.emergency:
            # An accepted emergency replaces the screen in the next frame, whatever is going on.
            self._pending.clear()
            self._start(message, cut=True)
            if self._chime is not None:
                self._chime.play()
        else:
            if message.supersede:
                # The plan changed (content withdrawn, the clock stepped): what was prepared
                # for later must not appear.
                self._pending.clear()
            # Convert to the screen's pixel format now, while the slide waits for its moment,
            # so that starting the transition costs no frame.
            self._pending.append(_converted(message))
            self._pending.sort(key=lambda show: show.at)

    def _update(self, now: float) -> None:
        if self._previous is not None or not self._pending or now < self._pending[0].at:
            return
        due = [show for show in self._pending if show.at <= now]
        self._pending = [show for show in self._pending if show.at > now]
        latest = due[-1]  # if several are due (the loop was busy), only the newest is worth showing
        self._start(latest, cut=latest.transition == "cut" or self._current is None)

    def _start(self, show: Show, cut: bool) -> None:
        screen = self._require_screen()
        old = self._current
        show = _converted(show)
        if old is not None and not cut and self.transition_s > 0:
            self._previous = screen.copy()
            self._transition_start = time.monotonic()
        else:
            self._previous = None
        keep = {t.key for t in show.tickers}  # the same text keeps scrolling across slides
        self._ticker_since = {k: v for k, v in self._ticker_since.items() if k in keep}
        self._tickers = show.tickers
        self._current = show
        self._dirty = True
        self.stats.slides += 1
        if self.on_shown is not None:
            self.on_shown(show, time.time())

    def _animating(self, now: float) -> bool:
        if self.overlay is not None and self.overlay.active(now):
            return self.overlay.animating()
        if self._blank or self._current is None:
            return False
        return self._previous is not None or bool(self._tickers)

    def _draw(self, now: float) -> bool:
        screen = self._require_screen()
        if self.overlay is not None and self.overlay.active(now):
            # Over everything, even a blank screen: the technician needs to see it.
            drew = self.overlay.draw(screen, now, force=not self._overlaid)
            self._overlaid = True
            # No transition runs unseen: a pending one would hold back the next slides.
            self._previous = None
            if drew:
                pygame.display.flip()
            return drew
        if self._overlaid:
            self._overlaid = False
            self._dirty = True  # the overlay closed: the slide comes back whole
            self._previous = None
        if self._blank:
            if self._dirty:
                screen.fill((0, 0, 0))
                pygame.display.flip()
                self._dirty = False
                return True
            return False
        current = self._current
        if current is None:
            return False
        if self._previous is not None:
            progress = (now - self._transition_start) / self.transition_s
            if progress < 1.0:
                self._blend(screen, self._previous, current, progress)
                self._draw_tickers(screen, now, update=False)  # tickers run through a fade
                pygame.display.flip()
                return True
            self._previous = None
            self._dirty = True  # the transition is over: draw the slide whole
        if self._dirty:
            screen.blit(current.surface, (0, 0))
            self._draw_tickers(screen, now, update=False)
            pygame.display.flip()
            self._screenshot(current)
            self._dirty = False
            return True
        if self._tickers:
            self._draw_tickers(screen, now, update=True)
            return True
        return False

    def _blend(
        self, screen: pygame.Surface, old: pygame.Surface, new: Show, progress: float
    ) -> None:
        eased = progress * progress * (3 - 2 * progress)
        if new.transition == "slide":
            shift = round(self.size.width * eased)
            screen.blit(old, (-shift, 0))
            screen.blit(new.surface, (self.size.width - shift, 0))
        else:
            alpha = round(255 * eased)
            if alpha >= 255:  # SDL's blit with surface alpha 255 takes a path ~10x slower
                screen.blit(new.surface, (0, 0))
                return
            screen.blit(old, (0, 0))
            if alpha > 0:
                new.surface.set_alpha(alpha)
                screen.blit(new.surface, (0, 0))
                new.surface.set_alpha(None)

    def _draw_tickers(self, screen: pygame.Surface, now: float, update: bool) -> None:
        dirty: list[pygame.Rect] = []
        for ticker in self._tickers:
            since = self._ticker_since.setdefault(ticker.key, now)
            offset = (now - since) * ticker.speed
            period = ticker.line.get_width()
            target = pygame.Rect(
                ticker.rect.x, ticker.rect.y, ticker.rect.width, ticker.rect.height
            )
            if ticker.rotate:
                # A turned panel: build the strip upright, then turn it onto the screen.
                strip = ticker.backdrop.copy()
                self._run_line(strip, ticker, offset, period, 0, 0)
                screen.blit(pygame.transform.rotate(strip, -ticker.rotate), target)
            else:
                # Straight onto the screen, clipped to the band: no per-frame copies.
                screen.blit(ticker.backdrop, target)
                clip = screen.get_clip()
                screen.set_clip(target)
                self._run_line(screen, ticker, offset, period, target.x, target.y)
                screen.set_clip(clip)
            dirty.append(target)
        if update and dirty:
            pygame.display.update(dirty)

    @staticmethod
    def _run_line(
        surface: pygame.Surface, ticker: Ticker, offset: float, period: int, x0: int, y0: int
    ) -> None:
        x = x0 - (offset % period)
        end = x0 + ticker.backdrop.get_width()
        while x < end:
            surface.blit(ticker.line, (round(x), y0))
            x += period

    def _pace(self, last: float) -> None:
        # Sleep out the frame. No spinning: a board's CPU is better spent idle than on a
        # sub-millisecond of timer precision nobody can see.
        remaining = last + 1.0 / self.fps - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def _screenshot(self, show: Show) -> None:
        if self.screenshot_dir is None:
            return
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        self._shots += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in show.key)[:60]
        path = self.screenshot_dir / f"{self._shots:04d}-{safe}.png"
        pygame.image.save(self._require_screen(), str(path))

    def _require_screen(self) -> pygame.Surface:
        if self._screen is None:
            raise DisplayError(ErrorCode.DISPLAY_FAILED, "the display is not open")
        return self._screen


def _accelerated() -> bool:
    return os.environ.get("SDL_FRAMEBUFFER_ACCELERATION", "0") not in ("0", "false", "")


def _converted(show: Show) -> Show:
    """Return ``show`` with its surfaces in the screen's pixel format (fast to blit)."""
    if show.converted:
        return show
    tickers = tuple(
        replace(t, backdrop=t.backdrop.convert(), line=t.line.convert_alpha()) for t in show.tickers
    )
    return replace(show, surface=show.surface.convert(), tickers=tickers, converted=True)


def _load_chime(path: Path) -> pygame.mixer.Sound | None:
    try:
        pygame.mixer.init()
        return pygame.mixer.Sound(str(path))
    except (pygame.error, FileNotFoundError) as exc:
        log.warning("chime unavailable path=%s reason=%s", path, exc)
        return None
