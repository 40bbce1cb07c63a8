"""What the player shares with its service manager and with the technician's tools.

- :class:`Notifier`: systemd's notify protocol (``READY=1`` after the first frame, ``WATCHDOG=1``
  from the frame loop, ``STOPPING=1``), so a frozen display is restarted. No-op outside systemd.
- The **local blank switch**: a file in the data dir that blanks the screen whatever the content,
  until turned off, across restarts. ``signage blank on|off`` and a key combination set it;
  the running player is told with SIGUSR1 (its pid is in ``player.pid``).
- The **status snapshot** ``status.json``: what the last heartbeat would say, written every few
  seconds, for ``signage diag`` running in another process (over SSH, say).
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import signal
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger("signage.service")

BLANK_FILE = "local-blank.json"
STATUS_FILE = "status.json"
PID_FILE = "player.pid"
LOG_DIR = "logs"


class Notifier:
    """Talks to systemd through ``$NOTIFY_SOCKET`` (does nothing when it is not set)."""

    def __init__(self, socket_path: str | None, watchdog_usec: int | None) -> None:
        self.path = socket_path
        self.interval = watchdog_usec / 2e6 if watchdog_usec else None
        self._last_ping = 0.0
        self._ready = False

    @classmethod
    def from_env(cls) -> Notifier:
        """Return a notifier for the environment systemd gave this process."""
        usec = os.environ.get("WATCHDOG_USEC", "")
        return cls(os.environ.get("NOTIFY_SOCKET") or None, int(usec) if usec.isdigit() else None)

    @property
    def enabled(self) -> bool:
        """True under systemd with Type=notify."""
        return self.path is not None

    def tick(self, frames: int, now: float) -> None:
        """Called by the frame loop on every pass: READY=1 once a frame was drawn, then
        WATCHDOG=1 at half the watchdog interval. Cheap when there is nothing to send."""
        if self.path is None:
            return
        if not self._ready:
            if frames == 0:
                return
            self._ready = True
            self.send("READY=1\nSTATUS=showing content")
        if self.interval is not None and now - self._last_ping >= self.interval:
            self._last_ping = now
            self.send("WATCHDOG=1")

    def stopping(self) -> None:
        """Tell systemd the player is shutting down on purpose."""
        if self.path is not None:
            self.send("STOPPING=1")

    def send(self, message: str) -> None:
        """Send one notification; failures are logged, never raised."""
        if self.path is None:
            return
        address = "\0" + self.path[1:] if self.path.startswith("@") else self.path
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall(message.encode("utf-8"))
        except OSError as exc:
            log.warning(
                "sd_notify failed message=%s reason=%s", message.split("\n", maxsplit=1)[0], exc
            )


def setup_logging(level: str, data_dir: Path | None) -> None:
    """Log one event per line to stderr (journald under systemd) and, with ``data_dir``, to
    ``logs/player.log`` there (1 MiB, 3 old files), which diagnostics show the tail of."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if data_dir is not None:
        try:
            (data_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    data_dir / LOG_DIR / "player.log",
                    maxBytes=2**20,
                    backupCount=3,
                    encoding="utf-8",
                )
            )
        except OSError as exc:
            print(f"signage: warning: no log file in {data_dir}: {exc}")
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        handlers=handlers,
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise


def log_tail(data_dir: Path, lines: int) -> list[str]:
    """Return the last ``lines`` lines of the player's log file (empty when there is none)."""
    path = data_dir / LOG_DIR / "player.log"
    try:
        with open(path, "rb") as source:
            end = start = source.seek(0, os.SEEK_END)
            tail = b""
            # Read back until the tail holds enough whole lines (long lines need more bytes).
            while start > 0 and tail.count(b"\n") <= lines:
                start = max(0, end - 2 * (end - start) - 256 * max(lines, 16))
                source.seek(start)
                tail = source.read(end - start)
    except OSError:
        return []
    text = tail.decode("utf-8", "replace").splitlines()
    return (text[1:] if start > 0 else text)[-lines:]  # the first line read may be cut


# -- the local blank switch ----------------------------------------------------------------------


def local_blank(data_dir: Path) -> dict[str, Any] | None:
    """Return the local blank switch's state ({on, since, by}) when it is on, else None."""
    try:
        state = json.loads((data_dir / BLANK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("on") is True else None


def set_local_blank(data_dir: Path, on: bool, by: str, notify: bool = True) -> bool:
    """Turn the local blank switch on or off (kept across restarts) and, with ``notify``, tell a
    running player.

    Returns True when a running player was told. Raises OSError when the data dir is not
    writable.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / BLANK_FILE
    if on:
        write_atomic(path, {"on": True, "since": time.time(), "by": by})
        # The player (user signage) must read what root wrote with `signage blank`.
        owner = data_dir.stat()
        with contextlib.suppress(OSError):
            os.chmod(path, 0o644)
            if os.geteuid() == 0:
                os.chown(path, owner.st_uid, owner.st_gid)
    else:
        path.unlink(missing_ok=True)
        _sync_dir(data_dir)
    return _signal_player(data_dir) if notify else False


def _signal_player(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
        # A pid file left by a crash may name another program by now: only a player is told.
        cmdline = psutil.Process(pid).cmdline()
        if not any("signage" in word for word in cmdline) or "play" not in cmdline:
            return False
        os.kill(pid, signal.SIGUSR1)
    except (OSError, ValueError, psutil.Error):
        return False
    return True


def claim_pid(data_dir: Path) -> None:
    """Record this process as the data dir's player (for ``signage blank``), and sweep the
    scratch files a crash or power cut left behind in the middle of :func:`write_atomic`
    (a local-blank one only when old: ``signage blank`` may be writing one right now)."""
    (data_dir / PID_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
    now = time.time()
    for name, min_age_s in ((STATUS_FILE, 0.0), (BLANK_FILE, 60.0)):
        for scratch in data_dir.glob(f".{name}.*"):
            with contextlib.suppress(OSError):
                if now - scratch.stat().st_mtime >= min_age_s:
                    scratch.unlink()


def release_pid(data_dir: Path) -> None:
    """Forget the pid file if it is still ours."""
    path = data_dir / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()


# -- the status snapshot ---------------------------------------------------------------------------


def write_status(data_dir: Path, status: Mapping[str, Any]) -> None:
    """Write the status snapshot (atomically; a reader never sees half of it)."""
    write_atomic(data_dir / STATUS_FILE, {"written": time.time(), "status": dict(status)})


def read_status(data_dir: Path) -> tuple[dict[str, Any], float] | None:
    """Return the last status snapshot and when it was written, or None."""
    try:
        data = json.loads((data_dir / STATUS_FILE).read_text(encoding="utf-8"))
        return dict(data["status"]), float(data["written"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON ``data`` to ``path`` by rename, so a crash leaves the old or the new file."""
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(scratch)
        raise
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
