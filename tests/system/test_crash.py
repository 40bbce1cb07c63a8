"""Crash consistency end to end (issue 7, item 1): the real player, SIGKILLed again and again
while bundles with assets are pushed through a real hub, always shows the previous or the new
bundle, keeps a store that verifies, neither loses nor doubles a play report, and keeps every
alert, Cancel and blank/unblank it acknowledged.

20 kills in the default run (25-55 s on two busy cores); ``SIGNAGE_CRASH_KILLS=200`` for the
long run, and ``SIGNAGE_CRASH_SEED=N`` to replay a seed's kill moments (every run prints its
own). See tests/system/crashkit.py for what is checked when, and docs/reliability.md for the
figures.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from tests.system.crashkit import describe, run_crash

KILLS = int(os.environ.get("SIGNAGE_CRASH_KILLS", "20"))


def test_board_killed_at_random_moments_stays_consistent(tmp_path: Path) -> None:
    seed = int(os.environ.get("SIGNAGE_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"SIGNAGE_CRASH_SEED={seed}")
    result = run_crash(tmp_path, KILLS, seed)
    print(describe(result))
    assert result.kills == KILLS and result.restarts == KILLS
    # Not vacuous: bundles went through the kills and the board played and reported.
    assert result.applied >= 3, describe(result)
    assert result.last_version == result.pushed, describe(result)
    assert result.plays > 0 and result.hub_play_reports > 0, describe(result)
    assert result.hub_play_reports + result.pending_at_end >= result.plays, describe(result)
    # Alerts, Cancels and blank/unblank went to the board through the kills too.
    assert result.alerts_sent > 0 and result.commands_sent > 0, describe(result)
    assert result.alerts_applied + result.commands_applied > 0, describe(result)
