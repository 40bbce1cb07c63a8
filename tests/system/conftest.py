"""Fixtures shared by the system tests."""

from __future__ import annotations

import pytest

from tests.system.lazyfs import available


@pytest.fixture()
def lazy_ok() -> None:
    """Skip, saying why, where a lazy FUSE mount (power cuts) cannot run."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
