"""The short soak of the default test run: the real player on 1 s slides with a ticker and
fades for two minutes (`make soak` runs it for hours; docs/reliability.md has the figures)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.system.soak import describe, run_soak

SECONDS = float(os.environ.get("SIGNAGE_SOAK_S", "120"))


def test_player_soak_memory_descriptors_threads_and_frames_stay_flat(tmp_path: Path) -> None:
    result = run_soak(SECONDS, workdir=tmp_path, sample_s=4.0)
    print(describe(result))
    assert not result.problems, describe(result)
    assert result.exit_code == 0
