"""Store layer: the board's data dir: play log (SQLite), assets by hash, signed bundles."""

from signage.store.content import ContentStore, fsync_dir, write_atomically
from signage.store.playlog import DailyPlays, Play, PlayLog

__all__ = ["ContentStore", "DailyPlays", "Play", "PlayLog", "fsync_dir", "write_atomically"]
