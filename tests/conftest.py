"""Shared fixtures: one composition stack per test session, a fixed clock, the sample items."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from signage.board.slides import Stack, build_stack
from signage.compose import BoardInfo, Composer
from signage.resources import data_dir
from signage.text import FontRegistry, Typesetter

REPO = Path(__file__).resolve().parent.parent
SAMPLES = data_dir("layouts") / "samples"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# A fixed moment for every render: Saturday 21 November 2026, 08:30 in Vietnam.
FIXED_NOW = datetime(2026, 11, 21, 8, 30, tzinfo=TZ)


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The shipped fonts and layouts, built once."""
    return build_stack()


@pytest.fixture(scope="session")
def composer(stack: Stack) -> Composer:
    return stack.composer


@pytest.fixture(scope="session")
def registry(stack: Stack) -> FontRegistry:
    return stack.composer.typesetter.registry


@pytest.fixture()
def typesetter(registry: FontRegistry) -> Iterator[Typesetter]:
    """A fresh typesetter (empty caches) over the shared registry."""
    yield Typesetter(registry)


@pytest.fixture(scope="session")
def board() -> BoardInfo:
    return BoardInfo(name="UBND xã Sa Thầy", tz=TZ)


@pytest.fixture(scope="session")
def now() -> datetime:
    return FIXED_NOW
