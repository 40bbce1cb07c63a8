"""What the board measures about itself for the heartbeat (and, later, diagnostics): psutil.

Every reading that the hardware may not offer (temperature, load average) is None where it is
missing, never a made-up number.
"""

from __future__ import annotations

import logging
import socket
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from signage import __version__

if TYPE_CHECKING:  # pygame loads only where the display runs
    from signage.board.display import DisplayStats

log = logging.getLogger("signage.health")


def temperature_c() -> float | None:
    """Return the hottest temperature sensor in °C, or None when the hardware reports none."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        sensors = reader()
    except (OSError, RuntimeError):
        return None
    readings = [entry.current for entries in sensors.values() for entry in entries]
    readings = [r for r in readings if isinstance(r, (int, float)) and -50 < r < 150]
    return round(max(readings), 1) if readings else None


def interfaces() -> list[dict[str, Any]]:
    """Return the network interfaces (not loopback) with their state and addresses."""
    stats = psutil.net_if_stats()
    out: list[dict[str, Any]] = []
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        if name == "lo":
            continue
        addrs = [
            a.address
            for a in addresses
            if a.family in (socket.AF_INET, socket.AF_INET6) and a.address
        ]
        up = stats[name].isup if name in stats else False
        out.append({"name": name, "up": up, "addresses": addrs})
    return out


def system(data_dir: Path, process: psutil.Process) -> dict[str, Any]:
    """Return the machine's figures: uptime, CPU, load, memory, free disk, temperature, network."""
    try:
        load: list[float] | None = [round(x, 2) for x in psutil.getloadavg()]
    except (OSError, AttributeError):
        load = None
    memory = psutil.virtual_memory()
    try:
        disk = psutil.disk_usage(str(data_dir))
        disk_info: dict[str, Any] | None = {
            "path": str(data_dir),
            "free": disk.free,
            "total": disk.total,
        }
    except OSError:
        disk_info = None
    return {
        "boot_uptime_s": round(time.time() - psutil.boot_time()),
        "process_uptime_s": round(time.time() - process.create_time()),
        "cpu_percent": psutil.cpu_percent(None),
        "process_cpu_percent": process.cpu_percent(None),
        "load": load,
        "memory": {
            "total": memory.total,
            "available": memory.available,
            "percent": memory.percent,
            "process_rss": process.memory_info().rss,
        },
        "disk": disk_info,
        "temperature_c": temperature_c(),
        "network": interfaces(),
    }


def display(stats: DisplayStats, on: bool, width: int, height: int) -> dict[str, Any]:
    """Return the display's state: on or blank, resolution, measured fps, frames, drops."""
    return {
        "on": on,
        "width": width,
        "height": height,
        "fps": measured_fps(list(stats.intervals_ms)[-600:]),
        "frames": stats.frames,
        "slides": stats.slides,
        "dropped": stats.dropped,
    }


def measured_fps(intervals_ms: Iterable[float]) -> float | None:
    """Return the frame rate from recent frame intervals (None when nothing animated lately)."""
    values = [v for v in intervals_ms if v > 0]
    if not values:
        return None
    return round(1000.0 / statistics.median(values), 1)


def software() -> str:
    """Return the software version the board runs."""
    return __version__
