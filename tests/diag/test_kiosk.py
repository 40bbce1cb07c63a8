"""The interactive diagnostics: DiagScreen's keys, pages, patterns, network request and idle
close (fake ``now``), and the overlay inside a real headless Display while slides keep playing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pygame
import pytest

from signage.board.config import BoardConfig
from signage.board.display import Display, Show
from signage.diag.kiosk import PATTERN_PAGE, DiagScreen
from signage.diag.pages import PAGES, PATTERNS
from signage.layout import Size
from tests.diag.diagkit import board_config, good_probes, player_status

SIZE = Size(320, 180)
BACKGROUND = (14, 22, 38)  # the pages' background colour


@pytest.fixture()
def config(tmp_path: Path) -> BoardConfig:
    return board_config(tmp_path)


@pytest.fixture()
def surface(monkeypatch: pytest.MonkeyPatch) -> Iterator[pygame.Surface]:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    pygame.display.init()
    yield pygame.display.set_mode((SIZE.width, SIZE.height))
    pygame.display.quit()


class Hub:
    """Counts the network probes (each collect with the network resolves the hub once)."""

    def __init__(self) -> None:
        self.probed = 0
        self.changed = threading.Condition()

    def resolve(self, host: str, port: int) -> list[str]:
        with self.changed:
            self.probed += 1
            self.changed.notify_all()
        return ["127.0.0.1"]

    def wait(self, count: int, timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.probed >= count, timeout)


@pytest.fixture()
def hub() -> Hub:
    return Hub()


@pytest.fixture()
def closed() -> list[int]:
    return []


@pytest.fixture()
def screen(
    config: BoardConfig, surface: pygame.Surface, hub: Hub, closed: list[int]
) -> Iterator[DiagScreen]:
    diag = DiagScreen(
        config,
        SIZE,
        status=player_status,
        probes=good_probes(resolve=hub.resolve),
        idle_close_s=120.0,
        on_close=lambda: closed.append(1),
    )
    yield diag
    diag.stop()


def _keys(screen: DiagScreen, *keys: int, now: float = 1000.0) -> list[bool]:
    return [screen.key(key, 0, now) for key in keys]


def test_closed_by_default_and_lets_keys_through(screen: DiagScreen, hub: Hub) -> None:
    assert not screen.open and not screen.active(1000.0)
    used = _keys(screen, pygame.K_RIGHT, pygame.K_ESCAPE, pygame.K_1, pygame.K_r, pygame.K_b)
    assert used == [False] * 5
    assert screen.key(pygame.K_b, pygame.KMOD_CTRL | pygame.KMOD_ALT, 1000.0) is False
    assert screen.view.page == 0 and not screen.open
    assert hub.probed == 0 and screen.diagnosis is None  # nothing is collected while closed


def test_f12_opens_and_the_first_page_is_ready(screen: DiagScreen, hub: Hub) -> None:
    assert _keys(screen, pygame.K_F12) == [True]
    assert screen.open and screen.active(1000.0)
    assert screen.wait_ready(20)
    assert screen.diagnosis is not None and hub.probed == 1  # opening probes the network
    assert "network" in screen.diagnosis.sections


def test_page_keys_wrap_around(screen: DiagScreen) -> None:
    screen.key(pygame.K_F12, 0, 1000.0)
    pages = []
    for key in (
        pygame.K_LEFT,
        pygame.K_RIGHT,
        pygame.K_RIGHT,
        pygame.K_9,
        pygame.K_RIGHT,
        pygame.K_KP3,
        pygame.K_1,
        pygame.K_LEFT,
        pygame.K_LEFT,
    ):
        assert screen.key(key, 0, 1000.0)
        pages.append(screen.view.page)
    last = len(PAGES) - 1
    assert pages == [last, 0, 1, 8, 0, 2, 0, last, last - 1]
    assert screen.wait_ready(20)  # the page the technician is on gets drawn


def test_up_down_cycle_patterns_only_on_the_patterns_page(screen: DiagScreen) -> None:
    screen.key(pygame.K_F12, 0, 1000.0)
    _keys(screen, pygame.K_DOWN, pygame.K_UP, pygame.K_SPACE)
    assert screen.view.pattern == 0  # not on the patterns page: nothing moves
    screen.key(pygame.K_1 + PATTERN_PAGE, 0, 1000.0)
    assert screen.view.page == PATTERN_PAGE
    patterns = []
    steps = (pygame.K_DOWN, pygame.K_DOWN, pygame.K_UP, pygame.K_UP, pygame.K_UP, pygame.K_SPACE)
    for key in steps:
        screen.key(key, 0, 1000.0)
        patterns.append(screen.view.pattern)
    assert patterns == [1, 2, 1, 0, len(PATTERNS) - 1, 0]
    assert not screen.animating()
    screen.key(pygame.K_UP, 0, 1000.0)
    assert PATTERNS[screen.view.pattern][0] == "moving" and screen.animating()
    screen.key(pygame.K_RIGHT, 0, 1000.0)
    assert screen.view.pattern == len(PATTERNS) - 1 and not screen.animating()


def test_r_asks_for_the_network_again(screen: DiagScreen, hub: Hub) -> None:
    screen.key(pygame.K_F12, 0, 1000.0)
    assert screen.wait_ready(20) and hub.probed == 1
    assert screen.key(pygame.K_r, 0, 1000.0)
    assert hub.wait(2), "R did not run the network probes"
    assert hub.probed == 2


@pytest.mark.parametrize("key", [pygame.K_ESCAPE, pygame.K_F12, pygame.K_q])
def test_keys_that_close(screen: DiagScreen, closed: list[int], key: int) -> None:
    screen.key(pygame.K_F12, 0, 1000.0)
    assert screen.key(key, 0, 1001.0)
    assert not screen.open and not screen.active(1001.0) and closed == [1]
    assert screen.key(pygame.K_RIGHT, 0, 1002.0) is False  # closed again: keys pass


def test_closes_itself_after_two_minutes_without_a_key(
    screen: DiagScreen, closed: list[int]
) -> None:
    screen.key(pygame.K_F12, 0, 1000.0)
    assert screen.active(1119.0)
    screen.key(pygame.K_RIGHT, 0, 1100.0)  # a key: the two minutes start again
    assert screen.active(1219.0) and closed == []
    assert not screen.active(1220.5)
    assert not screen.open and closed == [1]


def test_fullscreen_diag_stays_open(config: BoardConfig, surface: pygame.Surface) -> None:
    ended: list[int] = []
    screen = DiagScreen(
        config,
        SIZE,
        status=player_status,
        probes=good_probes(),
        always=True,
        on_close=lambda: ended.append(1),
    )
    try:
        assert screen.open and screen.active(1e9)  # never closes when idle
        assert screen.key(pygame.K_ESCAPE, 0, 0.0)
        assert ended == [1] and screen.open  # ``signage diag`` ends through on_close
    finally:
        screen.stop()


def test_draws_the_page_once_and_the_moving_bar_every_frame(
    screen: DiagScreen, surface: pygame.Surface
) -> None:
    surface.fill((200, 30, 30))
    screen.key(pygame.K_F12, 0, 1000.0)
    assert screen.wait_ready(20)
    assert screen.draw(surface, 1000.0, force=False)
    assert surface.get_at((SIZE.width - 2, SIZE.height - 2))[:3] == BACKGROUND
    assert not screen.draw(surface, 1000.1, force=False)  # unchanged: nothing to do
    assert screen.draw(surface, 1000.2, force=True)
    screen.key(pygame.K_1 + PATTERN_PAGE, 0, 1000.0)
    screen.key(pygame.K_UP, 0, 1000.0)  # the last pattern: the moving bar
    assert screen.animating()
    positions = set()
    for now in (0.0, 1.0, 2.0):
        assert screen.draw(surface, now, force=False)
        row = [surface.get_at((x, SIZE.height // 2))[:3] for x in range(SIZE.width)]
        positions.add(row.index((255, 255, 255)))
    assert len(positions) == 3


# -- as the overlay of a running display ----------------------------------------------------------


def _solid(colour: tuple[int, int, int]) -> pygame.Surface:
    surface = pygame.Surface((SIZE.width, SIZE.height))
    surface.fill(colour)
    return surface


def _press(key: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def test_overlay_over_playback(config: BoardConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "offscreen")
    shown: list[str] = []
    display = Display(
        SIZE,
        headless=True,
        transition_ms=250,
        fps=60,
        on_shown=lambda show, wall: shown.append(show.key),
    )
    size = display.open()
    overlay = DiagScreen(config, size, status=player_status, probes=good_probes())
    display.overlay = overlay
    keys: list[int] = []
    display.on_key = lambda key, mod: keys.append(key)

    def pixel() -> tuple[int, int, int]:
        colour = pygame.display.get_surface().get_at((SIZE.width - 2, SIZE.height - 2))
        return (colour.r, colour.g, colour.b)

    def run(seconds: float) -> None:
        display.run(deadline=time.monotonic() + seconds)

    try:
        display.post(Show("red", _solid((200, 30, 30)), transition="cut"))
        run(0.2)
        assert pixel() == (200, 30, 30) and shown == ["red"]
        _press(pygame.K_F12)
        run(0.1)
        assert overlay.open and overlay.wait_ready(20)
        run(0.2)
        assert pixel() == BACKGROUND, "the overlay is not on screen"
        # Playback goes on underneath: slides with transitions reach the screen's log.
        now = time.monotonic()
        display.post(Show("blue", _solid((30, 30, 200)), transition="fade", at=now + 0.1))
        display.post(Show("green", _solid((30, 200, 30)), transition="slide", at=now + 0.4))
        display.post(Show("grey", _solid((90, 90, 90)), transition="fade", at=now + 0.7))
        run(1.2)
        assert shown == ["red", "blue", "green", "grey"]
        assert pixel() == BACKGROUND, "a slide was drawn over the overlay"
        _press(pygame.K_RIGHT)  # used by the overlay, not passed on
        run(0.1)
        assert overlay.view.page == 1 and keys == []
        _press(pygame.K_F12)
        run(0.5)
        assert not overlay.open
        assert pixel() == (90, 90, 90), "the slide did not come back after the overlay"
        _press(pygame.K_b)  # closed: keys reach the player again
        run(0.1)
        assert keys == [pygame.K_b]
    finally:
        overlay.stop()
        display.close()
