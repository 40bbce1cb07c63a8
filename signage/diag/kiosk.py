"""The interactive diagnostics: an overlay inside ``signage play`` (F12) and ``signage diag``.

:class:`DiagScreen` keeps the page the technician is on, takes their keys (arrows and number
keys), collects the report on a worker thread every few seconds (network probes when the
diagnostics open and on R) and draws the pages prepared on another, so the frame loop never
waits. As an overlay it closes itself after two minutes without a key; playback goes on
underneath all the time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pygame

from signage.board.config import BoardConfig
from signage.board.display import Display, Stop
from signage.diag.pages import PAGES, PATTERNS, View, render_page
from signage.diag.report import Diagnosis, Memory, Probes, collect, real_probes
from signage.layout import Size

log = logging.getLogger("signage.diag")

REFRESH_S = 3.0  # the report is collected again this often while the pages are up
IDLE_CLOSE_S = 120.0  # the overlay closes after this long without a key
OVERLAY_VERIFY_BYTES = 32 << 20  # assets hashed per refresh: all of them, a little at a time
PATTERN_PAGE = next(i for i, (key, _) in enumerate(PAGES) if key == "patterns")
MOVING = next(i for i, (key, _) in enumerate(PATTERNS) if key == "moving")
_NUMBERS = {getattr(pygame, f"K_{n}"): n for n in range(1, 10)} | {
    getattr(pygame, f"K_KP{n}"): n for n in range(1, 10)
}

StatusSource = Callable[[], dict[str, Any]]


def function_key(name: str) -> int:
    """Return pygame's key code for a function key name such as ``F12``."""
    return int(getattr(pygame, f"K_{name.upper()}"))


class DiagScreen:
    """The diagnostics pages on a screen, as an overlay (``always`` False) or the whole screen."""

    def __init__(
        self,
        config: BoardConfig,
        size: Size,
        *,
        status: StatusSource | None = None,
        probes: Probes | None = None,
        always: bool = False,
        hotkey: int = pygame.K_F12,
        idle_close_s: float = IDLE_CLOSE_S,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.size = size
        self.status = status
        self.probes = probes or real_probes()
        self.memory = Memory(verify_budget=OVERLAY_VERIFY_BYTES)
        self.always = always
        self.hotkey = hotkey
        self.idle_close_s = idle_close_s
        self.on_close = on_close
        self.view = View()
        self.open = always
        self.last_key = time.monotonic()
        self.diagnosis: Diagnosis | None = None
        self._lock = threading.Condition()
        self._want_network = True
        self._collected = 0.0
        self._surface: pygame.Surface | None = None
        self._surface_of: tuple[View, int] | None = None
        self._generation = 0  # bumps with every new diagnosis
        self._drawn: tuple[View, int] | None = None  # what is on the screen now
        self._stopped = False
        self._worker = threading.Thread(target=self._work, name="diag", daemon=True)
        self._worker.start()

    # -- Overlay ----------------------------------------------------------------------------------

    def key(self, key: int, mod: int, now: float) -> bool:
        """Take a key: the hotkey opens or closes; while open every key is ours."""
        if not self.open:
            if key != self.hotkey:
                return False
            self._show(now)
            return True
        self.last_key = now
        if key in (self.hotkey, pygame.K_ESCAPE, pygame.K_q):
            self.close()
        elif key == pygame.K_RIGHT:
            self._go(self.view.page + 1)
        elif key == pygame.K_LEFT:
            self._go(self.view.page - 1)
        elif key in _NUMBERS:
            self._go(_NUMBERS[key] - 1)
        elif key in (pygame.K_DOWN, pygame.K_SPACE) and self.view.page == PATTERN_PAGE:
            self._set(replace(self.view, pattern=(self.view.pattern + 1) % len(PATTERNS)))
        elif key == pygame.K_UP and self.view.page == PATTERN_PAGE:
            self._set(replace(self.view, pattern=(self.view.pattern - 1) % len(PATTERNS)))
        elif key == pygame.K_r:
            with self._lock:
                self._want_network = True
                self._collected = 0.0
                self._lock.notify_all()
        return True

    def active(self, now: float) -> bool:
        """True while the pages are up; an overlay closes itself after inactivity."""
        if self.open and not self.always and now - self.last_key > self.idle_close_s:
            log.info("diagnostics closed after %.0f s without a key", self.idle_close_s)
            self.close()
        return self.open

    def animating(self) -> bool:
        """True on the moving-bar pattern (drawn every frame)."""
        return self.view.page == PATTERN_PAGE and self.view.pattern == MOVING

    def draw(self, screen: pygame.Surface, now: float, force: bool) -> bool:
        """Draw the current page if it changed (or ``force``); return True if it drew."""
        if self.animating():
            self._moving(screen, now)
            return True
        with self._lock:
            surface, of = self._surface, self._surface_of
        if surface is None or (not force and of == self._drawn):
            return False
        screen.blit(surface, (0, 0))
        self._drawn = of
        return True

    # -- control ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pages (as an overlay) or end ``signage diag``."""
        if not self.always:
            self.open = False
        if self.on_close is not None:
            self.on_close()

    def stop(self) -> None:
        """End the worker thread."""
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the first page is drawn (tests, screenshots); return True if it was."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._surface is None or self._surface_of != (self.view, self._generation):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def _show(self, now: float) -> None:
        log.info("diagnostics opened")
        self.open = True
        self.last_key = now
        self._drawn = None
        with self._lock:
            self._want_network = True
            self._collected = 0.0
            self._lock.notify_all()

    def _go(self, page: int) -> None:
        self._set(replace(self.view, page=page % len(PAGES)))

    def _set(self, view: View) -> None:
        with self._lock:
            self.view = view
            self._lock.notify_all()

    # -- the worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._stopped and not self._due():
                    self._lock.wait(0.5)
                if self._stopped:
                    return
                network, self._want_network = self._want_network, False
                stale = time.monotonic() - self._collected >= REFRESH_S
            if stale or self.diagnosis is None:
                self._collect(network)
            self._render()

    def _due(self) -> bool:
        if not self.open:
            return False
        if time.monotonic() - self._collected >= REFRESH_S or self.diagnosis is None:
            return True
        return self._surface_of != (self.view, self._generation)

    def _collect(self, network: bool) -> None:
        live = None
        if self.status is not None:
            try:
                live = self.status()
            except Exception as exc:  # the player is busy: the snapshot file will do
                log.info("live status unavailable reason=%s", exc)
        previous = self.diagnosis
        try:
            diagnosis = collect(
                self.config, probes=self.probes, live=live, network=network, memory=self.memory
            )
        except Exception:
            log.exception("diagnostics collection failed")
            self._collected = time.monotonic()
            return
        if not network and previous is not None and "network" in previous.sections:
            # Keep the last network probe's rows and findings until R asks again.
            diagnosis.sections["network"] = previous.sections["network"]
            codes = {"diag.hub_unreachable", "diag.token_refused"}
            diagnosis.findings += [f for f in previous.findings if f.code in codes]
        with self._lock:
            self.diagnosis = diagnosis
            self._generation += 1
            self._collected = time.monotonic()

    def _render(self) -> None:
        with self._lock:
            view, generation, diagnosis = self.view, self._generation, self.diagnosis
        if diagnosis is None:
            return
        image = render_page(diagnosis, self.size, view, self.config.board_id)
        surface = pygame.image.frombuffer(image.tobytes("raw", "RGB"), image.size, "RGB")
        with self._lock:
            self._surface = surface
            self._surface_of = (view, generation)
            self._lock.notify_all()

    def _moving(self, screen: pygame.Surface, now: float) -> None:
        width, height = screen.get_size()
        bar = max(2, width // 24)
        x = round((width - bar) * ((now / 4.0) % 1.0))
        screen.fill((0, 0, 0))
        screen.fill((255, 255, 255), pygame.Rect(x, 0, bar, height))


def run_diag(
    config: BoardConfig,
    *,
    headless: bool = False,
    exit_after: float | None = None,
    screenshot: Path | None = None,
    pages: tuple[int, ...] = (),
    probes: Probes | None = None,
) -> int:
    """Show the diagnostics on the whole screen until Esc, F12 or Q (or ``exit_after``).

    With ``screenshot``, saves page ``n`` of ``pages`` (all when empty) as
    ``screenshot``-stem ``-n.png`` and ends. Returns 0 when the board is healthy, 1 otherwise.
    """
    display = Display(config.size, fullscreen=config.fullscreen, headless=headless, fps=30)
    size = display.open()
    screen = DiagScreen(
        config, size, probes=probes, always=True, on_close=lambda: display.post(Stop())
    )
    display.overlay = screen
    try:
        if screenshot is not None:
            _save_pages(screen, size, screenshot, pages)
            return 0 if screen.diagnosis is None or screen.diagnosis.healthy else 1
        deadline = time.monotonic() + exit_after if exit_after is not None else None
        display.run(deadline)
    finally:
        screen.stop()
        display.close()
    return 0 if screen.diagnosis is None or screen.diagnosis.healthy else 1


def _save_pages(screen: DiagScreen, size: Size, target: Path, pages: tuple[int, ...]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for page in pages or tuple(range(len(PAGES))):
        screen._set(replace(screen.view, page=page))
        if not screen.wait_ready(60):
            raise TimeoutError("the diagnostics page was not ready in 60 s")
        surface = screen._surface
        assert surface is not None
        pygame.image.save(surface, str(target.with_name(f"{target.stem}-{page + 1}.png")))
