"""The display loop under SDL's offscreen driver: transitions never show black, emergencies cut
in at once, a static slide does not redraw, tickers scroll."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pygame
import pytest

from signage.board.display import Display, Show, Ticker
from signage.layout import Rect, Size

SIZE = Size(320, 180)


@pytest.fixture()
def frames() -> list[tuple[float, tuple[int, int, int]]]:
    return []


@pytest.fixture()
def display(frames: list[tuple[float, tuple[int, int, int]]]) -> Iterator[Display]:
    os.environ["SDL_VIDEODRIVER"] = "offscreen"

    def probe(screen: pygame.Surface) -> None:
        # Mean colour of the screen after each drawn frame.
        r, g, b, *_ = pygame.transform.average_color(screen)
        frames.append((time.monotonic(), (r, g, b)))

    screen = Display(SIZE, headless=True, transition_ms=250, fps=60, probe=probe)
    screen.open()
    yield screen
    screen.close()


def _solid(colour: tuple[int, int, int]) -> pygame.Surface:
    surface = pygame.Surface((SIZE.width, SIZE.height))
    surface.fill(colour)
    return surface


def _is_black(colour: tuple[int, int, int]) -> bool:
    return max(colour) < 8


@pytest.mark.parametrize("transition", ["fade", "slide", "cut"])
def test_transitions_never_show_black(
    display: Display, frames: list[tuple[float, tuple[int, int, int]]], transition: str
) -> None:
    display.post(Show("a", _solid((200, 30, 30)), transition="cut"))
    display.post(Show("b", _solid((30, 30, 200)), transition=transition, at=time.monotonic() + 0.3))
    display.run(deadline=time.monotonic() + 1.0)
    assert frames, "nothing was drawn"
    assert not [c for _, c in frames if _is_black(c)]
    assert frames[-1][1][2] > 150  # ends on the blue slide
    if transition != "cut":
        mixed = [c for _, c in frames if 40 < c[0] < 190 and 40 < c[2] < 190]
        assert mixed, "no in-between frame: the transition did not animate"


def test_late_slide_keeps_the_current_one(
    display: Display, frames: list[tuple[float, tuple[int, int, int]]]
) -> None:
    display.post(Show("a", _solid((200, 30, 30)), transition="cut"))
    display.run(deadline=time.monotonic() + 0.5)  # nothing else arrives: "a" stays up
    assert frames and all(c[0] > 150 for _, c in frames)


def test_emergency_cuts_in_during_a_transition(
    display: Display, frames: list[tuple[float, tuple[int, int, int]]]
) -> None:
    display.post(Show("a", _solid((200, 30, 30)), transition="cut"))
    display.post(Show("b", _solid((30, 30, 200)), transition="fade"))
    display.run(deadline=time.monotonic() + 0.1)  # mid-fade
    posted = time.monotonic()
    display.post(Show("alert", _solid((250, 250, 0)), emergency=True))
    display.run(deadline=time.monotonic() + 0.3)
    after = [(t, c) for t, c in frames if t >= posted]
    assert after[0][1] == (250, 250, 0), "the emergency was not the next frame"


def test_static_slide_does_not_redraw(
    display: Display, frames: list[tuple[float, tuple[int, int, int]]]
) -> None:
    display.post(Show("a", _solid((200, 30, 30)), transition="cut"))
    display.run(deadline=time.monotonic() + 1.0)
    assert len(frames) <= 2


def test_ticker_scrolls_at_the_frame_rate(
    display: Display, frames: list[tuple[float, tuple[int, int, int]]]
) -> None:
    line = pygame.Surface((400, 20))
    line.fill((0, 0, 0))
    pygame.draw.rect(line, (255, 255, 255), (0, 0, 40, 20))
    backdrop = _solid((10, 10, 80)).subsurface((0, 0, SIZE.width, 20)).copy()
    ticker = Ticker(("t",), Rect(0, 160, SIZE.width, 20), backdrop, line, 200.0, 0)
    display.post(Show("a", _solid((200, 30, 30)), tickers=(ticker,), transition="cut"))
    stats = display.run(deadline=time.monotonic() + 1.0)
    assert len(frames) > 30  # animating, not one frame per slide
    assert stats.dropped <= 3


def test_a_replan_drops_slides_prepared_for_later(
    display: Display, frames: list[tuple[float, tuple[int, int, int]]]
) -> None:
    # Green was prepared for 0.3 s from now; then the plan changed (content withdrawn, the
    # clock stepped) and blue supersedes it: green must never reach the screen.
    shown: list[str] = []
    display.on_shown = lambda show, wall: shown.append(show.key)
    display.post(Show("red", _solid((200, 30, 30)), transition="cut"))
    display.run(deadline=time.monotonic() + 0.2)
    display.post(Show("green", _solid((30, 200, 30)), transition="cut", at=time.monotonic() + 0.3))
    display.post(Show("blue", _solid((30, 30, 200)), transition="cut", supersede=True))
    display.run(deadline=time.monotonic() + 0.8)
    assert shown == ["red", "blue"]
    assert not [c for _, c in frames if c[1] > 150]
