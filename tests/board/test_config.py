"""Tests of signage.board.config: defaults, a full board.toml, errors that name the key."""

from __future__ import annotations

import tomllib
from dataclasses import FrozenInstanceError
from datetime import datetime, time
from pathlib import Path
from typing import Any

import pytest

from signage.board.config import (
    LOG_LEVELS,
    TRANSITIONS,
    BoardConfig,
    default_data_dir,
    load_config,
    parse_config,
)
from signage.errors import ConfigError, ErrorCode
from signage.layout import Size
from signage.model import DEFAULT_TIMEZONE, Window

# Monday 23 November 2026 .. Sunday 29 November 2026 (wall-clock times, as Window expects).
MONDAY = datetime(2026, 11, 23)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = {name: MONDAY.replace(day=23 + k) for k, name in enumerate(DAY_NAMES)}

FULL_TOML = """
[board]
id = "62-sa-thay-01"
name = "UBND xã Sa Thầy"
area = "62/23"
timezone = "Asia/Ho_Chi_Minh"
logo = "assets/logo.png"

[display]
size = "1920x1080"
rotate = 90
fullscreen = false
output = 1
transition = "slide"
transition_ms = 400
fps = 30
chime = "sounds/chuong.ogg"

[data]
dir = "data"

[hub]
url = "wss://hub.kontum.gov.vn/board"
token_file = "secrets/token"
trusted_keys = ["keys/province.pub", "/etc/signage/keys/commune.pub"]
allow_insecure = false

[power]
mon = "06:00-22:00"
tue = "06:00-22:00"
wed = "06:00-22:00"
thu = "06:00-22:00"
fri = "06:00-22:00"
sat = "off"
sun = ["06:00-11:30", "13:30-22:00"]
command_on = ["xset", "dpms", "force", "on"]
command_off = ["xset", "dpms", "force", "off"]

[log]
level = "debug"
"""


def write(folder: Path, text: str, name: str = "board.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def powered(config: BoardConfig, moment: datetime) -> bool:
    return any(window.contains(moment) for window in config.power_on)


def error_for(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.code is ErrorCode.CONFIG_INVALID
    return info.value


# --- defaults -------------------------------------------------------------------------------------


def test_no_file_gives_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load_config(None)
    assert config == BoardConfig()
    assert config.size is None
    assert config.rotate == 0
    assert config.transition == "fade"
    assert config.fullscreen is True
    assert config.timezone == DEFAULT_TIMEZONE
    assert config.log_level == "info"
    assert config.power_on == () and config.hub_url is None and config.trusted_keys == ()
    assert config.data_dir == tmp_path / ".local" / "share" / "signage"
    assert config.data_dir.is_relative_to(Path.home())
    assert default_data_dir() == config.data_dir


def test_home_is_read_when_a_config_is_built_not_at_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "one"))
    first = BoardConfig()
    monkeypatch.setenv("HOME", str(tmp_path / "two"))
    assert first.data_dir.is_relative_to(tmp_path / "one")
    assert BoardConfig().data_dir.is_relative_to(tmp_path / "two")


def test_empty_file_and_empty_sections_give_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == BoardConfig()
    sections = "\n".join(f"[{s}]" for s in ("board", "display", "data", "hub", "power", "log"))
    assert load_config(write(tmp_path, sections)) == BoardConfig()


def test_config_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        BoardConfig().rotate = 90  # type: ignore[misc]


# --- a full board.toml ----------------------------------------------------------------------------


def test_full_board_toml(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "signage"
    folder.mkdir(parents=True)
    config = load_config(write(folder, FULL_TOML))
    assert config.board_id == "62-sa-thay-01"
    assert config.name == "UBND xã Sa Thầy"
    assert config.area == "62/23"
    assert config.timezone == "Asia/Ho_Chi_Minh"
    assert config.size == Size(1920, 1080)
    assert config.rotate == 90
    assert config.fullscreen is False
    assert config.output == 1
    assert config.transition == "slide"
    assert config.transition_ms == 400
    assert config.fps == 30
    assert config.hub_url == "wss://hub.kontum.gov.vn/board"
    assert config.allow_insecure is False
    assert config.power_on_command == ("xset", "dpms", "force", "on")
    assert config.power_off_command == ("xset", "dpms", "force", "off")
    assert config.log_level == "debug"
    # Relative paths are taken from the folder of the file, absolute ones are kept.
    assert config.logo == folder / "assets" / "logo.png"
    assert config.chime == folder / "sounds" / "chuong.ogg"
    assert config.data_dir == folder / "data"
    assert config.hub_token_file == folder / "secrets" / "token"
    assert config.trusted_keys == (
        folder / "keys" / "province.pub",
        Path("/etc/signage/keys/commune.pub"),
    )
    assert all(p.is_absolute() for p in (config.logo, config.chime, config.data_dir))


def test_full_board_toml_power_windows(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_TOML))
    assert all(isinstance(w, Window) for w in config.power_on)
    monday = DAY["mon"]
    assert powered(config, monday.replace(hour=7))
    assert not powered(config, monday.replace(hour=23))
    assert powered(config, monday.replace(hour=6))
    assert not powered(config, monday.replace(hour=5, minute=59))
    assert not powered(config, monday.replace(hour=22))  # the end is exclusive
    for hour in range(24):
        for minute in (0, 30, 59):
            assert not powered(config, DAY["sat"].replace(hour=hour, minute=minute))
    sunday = DAY["sun"]
    assert powered(config, sunday.replace(hour=10))
    assert not powered(config, sunday.replace(hour=12))
    assert powered(config, sunday.replace(hour=14))
    assert not powered(config, sunday.replace(hour=22, minute=30))
    assert powered(config, DAY["fri"].replace(hour=21, minute=59))


def test_relative_paths_follow_the_config_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, '[data]\ndir = "../var/signage"\n[board]\nlogo = "~/logo.png"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(path)
    assert config.data_dir == folder / ".." / "var" / "signage"
    assert config.logo == tmp_path / "home" / "logo.png"  # ~ is the home folder
    relative = load_config(Path("conf") / "board.toml")
    assert relative.data_dir == Path("conf") / ".." / "var" / "signage"


def test_parse_config_takes_a_base_folder(tmp_path: Path) -> None:
    config = parse_config({"data": {"dir": "d"}}, base=tmp_path)
    assert config.data_dir == tmp_path / "d"
    assert parse_config({"data": {"dir": "d"}}).data_dir == Path("d")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", None),
        ("192x96", Size(192, 96)),
        ("1080x1920", Size(1080, 1920)),
        ("1920×1080", Size(1920, 1080)),
        ("640X320", Size(640, 320)),
    ],
)
def test_display_sizes(value: str, expected: Size | None) -> None:
    assert parse_config({"display": {"size": value}}).size == expected


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_every_rotation(rotate: int) -> None:
    assert parse_config({"display": {"rotate": rotate}}).rotate == rotate


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_every_transition(transition: str) -> None:
    assert parse_config({"display": {"transition": transition}}).transition == transition


@pytest.mark.parametrize("level", [*LOG_LEVELS, "WARNING", "Info"])
def test_log_levels_ignore_case(level: str) -> None:
    assert parse_config({"log": {"level": level}}).log_level == level.lower()


def test_text_values_are_trimmed() -> None:
    config = parse_config({"board": {"name": "  UBND phường Hòa Bình  ", "id": " b1 "}})
    assert config.name == "UBND phường Hòa Bình" and config.board_id == "b1"


# --- errors name the key --------------------------------------------------------------------------


def week(**days: object) -> dict[str, object]:
    """A [power] table naming all seven days (06:00-22:00), with ``days`` replaced."""
    return {
        **dict.fromkeys(DAY_NAMES, "06:00-22:00"),
        **days,
    }


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"display": {"rotate": 45}}, "display.rotate"),
    ({"display": {"rotate": 360}}, "display.rotate"),
    ({"display": {"rotate": -90}}, "display.rotate"),
    ({"display": {"rotate": "90"}}, "display.rotate"),
    ({"display": {"rotate": 90.0}}, "display.rotate"),
    ({"display": {"rotate": True}}, "display.rotate"),
    ({"display": {"size": "big"}}, "display.size"),
    ({"display": {"size": "1920x1080x2"}}, "display.size"),
    ({"display": {"size": "8x8"}}, "display.size"),
    ({"display": {"size": "１９２０x1080"}}, "display.size"),
    ({"display": {"size": 1920}}, "display.size"),
    ({"display": {"size": ""}}, "display.size"),
    ({"display": {"transition": "wipe"}}, "display.transition"),
    ({"display": {"transition": 1}}, "display.transition"),
    ({"display": {"transition_ms": -1}}, "display.transition_ms"),
    ({"display": {"transition_ms": 60_000}}, "display.transition_ms"),
    ({"display": {"fps": 0}}, "display.fps"),
    ({"display": {"fps": 1000}}, "display.fps"),
    ({"display": {"fullscreen": "yes"}}, "display.fullscreen"),
    ({"display": {"fullscreen": 1}}, "display.fullscreen"),
    ({"display": {"output": -1}}, "display.output"),
    ({"display": {"output": True}}, "display.output"),
    ({"display": {"chime": 5}}, "display.chime"),
    ({"display": {"colour": "red"}}, "display.colour"),
    ({"board": {"timezone": "Mars/Olympus"}}, "board.timezone"),
    ({"board": {"timezone": "../../etc/passwd"}}, "board.timezone"),
    ({"board": {"timezone": ""}}, "board.timezone"),
    ({"board": {"id": "   "}}, "board.id"),
    ({"board": {"name": 5}}, "board.name"),
    ({"board": {"logo": ""}}, "board.logo"),
    ({"board": {"owner": "xã"}}, "board.owner"),
    ({"data": {"dir": 5}}, "data.dir"),
    ({"hub": {"url": ""}}, "hub.url"),
    ({"hub": {"allow_insecure": "no"}}, "hub.allow_insecure"),
    ({"hub": {"trusted_keys": "keys/a.pub"}}, "hub.trusted_keys"),
    ({"hub": {"trusted_keys": ["keys/a.pub", 5]}}, "hub.trusted_keys"),
    ({"hub": {"trusted_keys": [""]}}, "hub.trusted_keys"),
    ({"power": week(mon="25:00-26:00")}, "power.mon"),
    ({"power": week(mon="06:00")}, "power.mon"),
    ({"power": week(mon="6:00-22:00")}, "power.mon"),
    ({"power": week(mon="06:00-22:00-23:00")}, "power.mon"),
    ({"power": week(mon="06:60-22:00")}, "power.mon"),
    ({"power": week(mon="06:00-06:00")}, "power.mon"),
    ({"power": week(mon="sáng-chiều")}, "power.mon"),
    ({"power": week(mon=6)}, "power.mon"),
    ({"power": week(mon=["06:00-11:00", 13])}, "power.mon"),
    ({"power": week(mon={"from": "06:00"})}, "power.mon"),
    ({"power": week(sun="on")}, "power.sun"),
    ({"power": {"command_on": "xset dpms force on"}}, "power.command_on"),
    ({"power": {"command_off": ["xset", ""]}}, "power.command_off"),
    ({"power": {"holiday": "off"}}, "power.holiday"),
    ({"log": {"level": "verbose"}}, "log.level"),
    ({"log": {"level": 10}}, "log.level"),
    ({"screen": {"size": "1920x1080"}}, "screen"),
    ({"board": "UBND xã"}, "board"),
    ({"display": ["1920x1080"]}, "display"),
]


@pytest.mark.parametrize(("data", "key"), INVALID, ids=[key for _, key in INVALID])
def test_invalid_values_name_the_key(data: dict[str, Any], key: str) -> None:
    error = error_for(data)
    assert error.path == key
    assert key in str(error)
    assert "config.invalid" in str(error)
    assert error.as_dict()["path"] == key


def test_never_on_names_the_power_section() -> None:
    days = {day: "off" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    error = error_for({"power": days})
    assert error.path == "power"


@pytest.mark.parametrize(("data", "key"), INVALID[:12], ids=[key for _, key in INVALID[:12]])
def test_invalid_values_in_a_file_name_the_key(
    tmp_path: Path, data: dict[str, Any], key: str
) -> None:
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        for name, value in table.items():
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            lines.append(f"{name} = {shown}".replace("'", '"'))
    text = "\n".join(lines)
    assert tomllib.loads(text) == data
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.path == key and key in str(info.value)


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[display]\nrotate = 90\nsize = "1920x1080\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.code is ErrorCode.CONFIG_INVALID
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)


def test_missing_or_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "board.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.path == str(missing)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[board]\nname = "Qu\xe1n c\xe0 ph\xea"\n')  # Latin-1, not UTF-8
    with pytest.raises(ConfigError) as info:
        load_config(latin1)
    assert info.value.path == str(latin1)


# --- command-line overrides -----------------------------------------------------------------------


def test_with_overrides_replaces_only_what_is_given(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, FULL_TOML))
    changed = base.with_overrides(size=Size(640, 320), rotate=270, data_dir=tmp_path / "d")
    assert changed.size == Size(640, 320)
    assert changed.rotate == 270
    assert changed.data_dir == tmp_path / "d"
    assert changed.fullscreen is False and changed.name == base.name
    assert changed.power_on == base.power_on
    assert base.rotate == 90 and base.size == Size(1920, 1080)  # the original is untouched
    assert base.with_overrides() == base
    assert base.with_overrides(rotate=0).rotate == 0  # 0 is a value, not "no override"
    assert base.with_overrides(fullscreen=True).fullscreen is True


@pytest.mark.parametrize("rotate", [45, 360, -90, 1])
def test_with_overrides_refuses_a_bad_rotation(rotate: int) -> None:
    with pytest.raises(ConfigError) as info:
        BoardConfig().with_overrides(rotate=rotate)
    assert info.value.code is ErrorCode.CONFIG_INVALID
    assert info.value.path == "--rotate"


# --- power windows --------------------------------------------------------------------------------


def test_power_spans_across_midnight_and_off_in_any_case() -> None:
    config = parse_config(
        {
            "power": {
                "mon": "06:00-22:00",
                "tue": "06:00-22:00",
                "wed": "06:00-22:00",
                "thu": "06:00-22:00",
                "fri": "18:00-02:00",  # the night market
                "sat": "OFF",
                "sun": " Off ",
            }
        }
    )
    assert powered(config, DAY["fri"].replace(hour=23))
    assert powered(config, DAY["sat"].replace(hour=1, minute=59))
    assert not powered(config, DAY["sat"].replace(hour=2))
    assert not powered(config, DAY["fri"].replace(hour=1))  # Thursday's window ended at 22:00
    assert not powered(config, DAY["sun"].replace(hour=12))
    weekdays = [Window(days=frozenset({d}), start=time(6), end=time(22)) for d in range(4)]
    night = Window(days=frozenset({4}), start=time(18), end=time(2))
    assert config.power_on == (*weekdays, night)
    assert night.crosses_midnight


def test_power_up_to_midnight() -> None:
    days = dict.fromkeys(DAY_NAMES, "off")
    config = parse_config({"power": {**days, "mon": "06:00-24:00"}})
    assert powered(config, DAY["mon"].replace(hour=23, minute=59, second=59))
    assert not powered(config, DAY["tue"])
    assert not powered(config, DAY["mon"].replace(hour=5))


def test_power_commands_alone_mean_always_on() -> None:
    config = parse_config({"power": {"command_on": ["vcgencmd", "display_power", "1"]}})
    assert config.power_on == ()
    assert config.power_on_command == ("vcgencmd", "display_power", "1")


@pytest.mark.parametrize(
    "power",
    [
        {"sat": "off"},  # off on Saturdays, on all day otherwise
        {"mon": "00:00-24:00", "sat": "off"},
    ],
    ids=["one-day-off", "explicit-whole-day"],
)
def test_days_not_named_are_on_all_day(power: dict[str, str]) -> None:
    config = parse_config({"power": power})
    assert not powered(config, DAY["sat"].replace(hour=12))
    for name in ("mon", "tue", "sun"):
        for hour in (0, 3, 12, 23):
            assert powered(config, DAY[name].replace(hour=hour)), (name, hour)
