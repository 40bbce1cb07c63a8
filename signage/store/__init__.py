"""Store layer: the board's data dir: play log (SQLite), and later assets and bundles."""

from signage.store.playlog import DailyPlays, Play, PlayLog

__all__ = ["DailyPlays", "Play", "PlayLog"]
