"""The board's configuration, ``board.toml`` (see docs/configuration.md).

Every setting has a default, so a board runs with no file at all. An invalid value stops the
board with one ConfigError that names the key (``display.rotate: expected 0, 90, 180 or 270``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any, TypeVar

from signage.errors import ConfigError, ContentError, ErrorCode, SigningError
from signage.layout import ROTATIONS, Size
from signage.model import DAY_NAMES, DEFAULT_TIMEZONE, Window, board_timezone
from signage.protocol import PrivateKey, PublicKey, Trust

TRANSITIONS = ("cut", "fade", "slide")
LOG_LEVELS = ("debug", "info", "warning", "error")

_KEYS: dict[str, set[str]] = {
    "board": {"id", "name", "area", "timezone", "logo"},
    "display": {
        "size",
        "rotate",
        "fullscreen",
        "output",
        "transition",
        "transition_ms",
        "fps",
        "chime",
    },
    "data": {"dir", "cache_mb"},
    "hub": {"url", "token_file", "trusted_keys", "allow_insecure", "ca_file", "report_hold_s"},
    "power": {*DAY_NAMES, "command_on", "command_off"},
    "log": {"level"},
    "diag": {"hotkey", "close_after_s"},
}


def default_data_dir() -> Path:
    """Return the data folder used when the config names none: ~/.local/share/signage."""
    return Path.home() / ".local" / "share" / "signage"


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """Everything a board is told by its operator. See docs/configuration.md for each key."""

    board_id: str = "board"
    name: str = "Bảng tin điện tử công cộng"
    area: str = ""
    timezone: str = DEFAULT_TIMEZONE
    logo: Path | None = None
    size: Size | None = None  # None: the screen's own resolution
    rotate: int = 0
    fullscreen: bool = True
    output: int = 0
    transition: str = "fade"
    transition_ms: int = 600
    fps: int = 60
    chime: Path | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    cache_quota_bytes: int = 2 * 2**30
    hub_url: str | None = None
    hub_token_file: Path | None = None
    hub_ca_file: Path | None = None
    trusted_keys: tuple[Path, ...] = ()
    allow_insecure: bool = False
    report_hold_s: int = 30  # a play report waits up to this long to travel with others
    power_on: tuple[Window, ...] = ()  # empty: the screen is always on
    power_on_command: tuple[str, ...] = ()
    power_off_command: tuple[str, ...] = ()
    log_level: str = "info"
    diag_hotkey: str = "F12"  # opens the diagnostics over the slides
    diag_close_after_s: int = 120  # ... which close after this long without a key

    def with_overrides(
        self,
        *,
        size: Size | None = None,
        rotate: int | None = None,
        data_dir: Path | None = None,
        fullscreen: bool | None = None,
    ) -> BoardConfig:
        """Return this config with command-line overrides applied (None keeps the value).

        Raises ConfigError for a rotation that is not 0/90/180/270.
        """
        if rotate is not None and rotate not in ROTATIONS:
            raise ConfigError(
                ErrorCode.CONFIG_INVALID, "expected 0, 90, 180 or 270", path="--rotate"
            )
        return replace(
            self,
            size=size if size is not None else self.size,
            rotate=rotate if rotate is not None else self.rotate,
            data_dir=data_dir if data_dir is not None else self.data_dir,
            fullscreen=fullscreen if fullscreen is not None else self.fullscreen,
        )


def load_config(path: Path | None) -> BoardConfig:
    """Return the config in ``path`` (defaults for everything when None).

    Raises ConfigError naming the file and key for anything invalid or unknown.
    """
    if path is None:
        return BoardConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, f"cannot read config: {exc}", path=str(path)
        ) from exc
    return parse_config(data, base=path.parent)


def parse_config(data: Mapping[str, Any], base: Path = Path()) -> BoardConfig:
    """Return the config in parsed TOML ``data``; relative paths are taken from ``base``.

    Raises ConfigError whose path is the bad key, e.g. ``display.rotate``.
    """
    check_sections(data, _KEYS)
    r = ConfigReader(data, base)
    defaults = BoardConfig()
    timezone = r.text("board.timezone", defaults.timezone)
    try:
        board_timezone(timezone)
    except ContentError as exc:
        raise ConfigError(ErrorCode.CONFIG_INVALID, exc.message, path="board.timezone") from exc
    size_text = r.text("display.size", "auto")
    size = None
    if size_text != "auto":
        try:
            size = Size.parse(size_text)
        except ValueError as exc:
            raise ConfigError(ErrorCode.CONFIG_INVALID, str(exc), path="display.size") from exc
    rotate = r.integer("display.rotate", 0, 0, 270)
    if rotate not in ROTATIONS:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, "expected 0, 90, 180 or 270", path="display.rotate"
        )
    transition = r.text("display.transition", defaults.transition)
    if transition not in TRANSITIONS:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID,
            f"expected one of {', '.join(TRANSITIONS)}",
            path="display.transition",
        )
    hotkey = r.text("diag.hotkey", defaults.diag_hotkey).upper()
    if not re.fullmatch(r"F([1-9]|1[0-5])", hotkey):
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, "expected a function key, F1 to F15", path="diag.hotkey"
        )
    level = r.text("log.level", defaults.log_level).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, f"expected one of {', '.join(LOG_LEVELS)}", path="log.level"
        )
    data_dir = r.path("data.dir")
    board_id = r.text("board.id", defaults.board_id)
    if not re.fullmatch(r"[a-z0-9._-]{1,64}", board_id):
        raise ConfigError(
            ErrorCode.CONFIG_INVALID,
            "expected 1-64 of a-z 0-9 . _ - (as the hub knows it)",
            path="board.id",
        )
    area = r.text("board.area", defaults.area) if r.get("board.area") != "" else ""
    if area and not re.fullmatch(r"[0-9A-Za-z]+(/[0-9A-Za-z]+)*", area):
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, "expected an area path such as 62/23456", path="board.area"
        )
    return BoardConfig(
        board_id=board_id,
        name=r.text("board.name", defaults.name),
        area=area,
        timezone=timezone,
        logo=r.path("board.logo"),
        size=size,
        rotate=rotate,
        fullscreen=r.boolean("display.fullscreen", defaults.fullscreen),
        output=r.integer("display.output", 0, 0, 16),
        transition=transition,
        transition_ms=r.integer("display.transition_ms", defaults.transition_ms, 0, 5000),
        fps=r.integer("display.fps", defaults.fps, 1, 240),
        chime=r.path("display.chime"),
        data_dir=data_dir if data_dir is not None else defaults.data_dir,
        cache_quota_bytes=r.integer("data.cache_mb", 2048, 64, 1_000_000) * 2**20,
        hub_url=r.optional_text("hub.url"),
        hub_token_file=r.path("hub.token_file"),
        hub_ca_file=r.path("hub.ca_file"),
        trusted_keys=tuple(r.paths("hub.trusted_keys")),
        allow_insecure=r.boolean("hub.allow_insecure", False),
        report_hold_s=r.integer("hub.report_hold_s", defaults.report_hold_s, 0, 600),
        power_on=r.power(),
        power_on_command=tuple(r.strings("power.command_on")),
        power_off_command=tuple(r.strings("power.command_off")),
        log_level=level,
        diag_hotkey=hotkey,
        diag_close_after_s=r.integer("diag.close_after_s", 120, 10, 3600),
    )


def check_sections(data: Mapping[str, Any], keys: Mapping[str, set[str]]) -> None:
    """Raise ConfigError for a section or key of parsed TOML ``data`` not in ``keys``."""
    for section, value in data.items():
        if section not in keys:
            raise ConfigError(ErrorCode.CONFIG_INVALID, "unknown section", path=section)
        if not isinstance(value, dict):
            raise ConfigError(ErrorCode.CONFIG_INVALID, "expected a table", path=section)
        for key in value:
            if key not in keys[section]:
                raise ConfigError(ErrorCode.CONFIG_INVALID, "unknown key", path=f"{section}.{key}")


class ConfigReader:
    """Typed reads of ``section.key`` from parsed TOML, each raising ConfigError naming the
    key; relative paths are taken from ``base``."""

    def __init__(self, data: Mapping[str, Any], base: Path) -> None:
        self.data = data
        self.base = base

    def get(self, key: str) -> Any:
        section, name = key.split(".")
        return self.data.get(section, {}).get(name)

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(ErrorCode.CONFIG_INVALID, message, path=key)

    def text(self, key: str, default: str) -> str:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected a non-empty string")
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        value = self.get(key)
        return None if value is None else self.text(key, "")

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "expected a whole number")
        if not low <= value <= high:
            raise self.fail(key, f"expected a number from {low} to {high}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value

    def path(self, key: str) -> Path | None:
        value = self.get(key)
        if value is None:
            return None
        return self.base / Path(self.text(key, "")).expanduser()

    def strings(self, key: str) -> list[str]:
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, 'expected a list of strings, e.g. ["xset", "dpms", "force", "on"]')
        return list(value)

    def paths(self, key: str) -> list[Path]:
        return [self.base / Path(v).expanduser() for v in self.strings(key)]

    def power(self) -> tuple[Window, ...]:
        section = self.data.get("power", {})
        if not any(day in section for day in DAY_NAMES):
            return ()
        days = {k: v for k, v in section.items() if k in DAY_NAMES}
        return parse_power(days, "power")


def parse_power(section: Mapping[str, Any], prefix: str = "power") -> tuple[Window, ...]:
    """Return the screen-on windows of a ``[power]`` table's days (day name -> "HH:MM-HH:MM", a
    list of them, or "off"; a day not named is on all day). Only day names are accepted: the
    power commands of board.toml are never set from outside.

    Raises ConfigError naming the bad key; also when the screen would never be on.
    """
    unknown = [key for key in section if key not in DAY_NAMES]
    if unknown:
        raise ConfigError(ErrorCode.CONFIG_INVALID, "unknown key", path=f"{prefix}.{unknown[0]}")
    if not any(day in section for day in DAY_NAMES):
        raise ConfigError(ErrorCode.CONFIG_INVALID, "name at least one day", path=prefix)
    windows: list[Window] = []
    for index, day in enumerate(DAY_NAMES):
        value = section.get(day, "00:00-24:00")
        key = f"{prefix}.{day}"
        spans = [value] if isinstance(value, str) else value
        if not isinstance(spans, list) or not all(isinstance(s, str) for s in spans):
            raise ConfigError(
                ErrorCode.CONFIG_INVALID,
                'expected "HH:MM-HH:MM", a list of them, or "off"',
                path=key,
            )
        for span in spans:
            if span.strip().lower() == "off":
                continue
            start, end = _span(span, key)
            windows.append(Window(days=frozenset({index}), start=start, end=end))
    if not windows:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID,
            "the screen would never be on: give at least one day hours",
            path=prefix,
        )
    return tuple(windows)


def _span(text: str, key: str) -> tuple[time, time]:
    parts = text.split("-")
    if len(parts) != 2:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, f'expected "HH:MM-HH:MM", got {text!r}', path=key
        )
    start_text, end_text = (p.strip() for p in parts)
    start, end = _clock(start_text, key), _clock(end_text, key)
    if start == end and end_text != "24:00":  # "00:00-24:00" is the whole day
        raise ConfigError(ErrorCode.CONFIG_INVALID, "start and end are the same", path=key)
    return start, end


def _clock(text: str, key: str) -> time:
    if text == "24:00":
        return time(0, 0)
    try:
        hours, minutes = text.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError(text)
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, f"expected a time HH:MM, got {text!r}", path=key
        ) from exc


# -- key files (board.toml names the trusted ones; publisher tools read private ones) ----------

K = TypeVar("K", PrivateKey, PublicKey)


def read_private_key(path: Path) -> PrivateKey:
    """Return the key in ``ID.key``; raise SigningError (key.invalid) naming the file."""
    return _read_key(path, PrivateKey.from_json)


def read_public_key(path: Path) -> PublicKey:
    """Return the key in ``ID.pub``; raise SigningError (key.invalid) naming the file."""
    return _read_key(path, PublicKey.from_json)


def read_trust(paths: list[Path]) -> Trust:
    """Return the trust made of the ``ID.pub`` files in ``paths``; raise SigningError."""
    return Trust([_read_key(path, PublicKey.from_json) for path in paths])


def _read_key(path: Path, parse: Callable[[bytes], K]) -> K:
    try:
        return parse(path.read_bytes())
    except OSError as exc:
        raise SigningError(ErrorCode.KEY_INVALID, exc.strerror or str(exc), path=str(path)) from exc
    except SigningError as exc:
        raise SigningError(exc.code, exc.message, path=str(path)) from exc
