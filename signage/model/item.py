"""Content items: what one slide shows, when, for how long and with which priority.

This module parses and validates the item format described in docs/content.md. It does no I/O
apart from looking up time zones in the tz database: it never reads files, the clock or the
environment. Every malformed input becomes a :class:`~signage.errors.ContentError` whose path
names the bad field (``fields.title``, ``windows[0].from``, ``[2].id``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signage.errors import ContentError, ErrorCode

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_DURATION_S = 10.0
MIN_DURATION_S = 1.0
MAX_DURATION_S = 86400.0
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 20000
# Integers beyond 2**53 lose precision in JavaScript and most JSON libraries.
MAX_SAFE_INTEGER = 2**53
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

FieldValue = str | int | float | bool

_TEMPLATE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CLOCK_RE = re.compile(r"([0-9]{2}):([0-9]{2})")
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ITEM_KEYS = (
    "id",
    "template",
    "priority",
    "duration_s",
    "valid_from",
    "valid_until",
    "windows",
    "fields",
)
_WINDOW_KEYS = ("days", "from", "to")


class Priority(StrEnum):
    """Priority level of an item, from the national rules for public bulletin boards.

    An emergency item pre-empts everything else; priority items play before routine ones.
    """

    ROUTINE = "routine"
    PRIORITY = "priority"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """Return 0 for routine, 1 for priority and 2 for emergency (higher wins)."""
        return tuple(Priority).index(self)

    @property
    def label(self) -> str:
        """Return the Vietnamese name of the level, as shown to operators."""
        match self:
            case Priority.ROUTINE:
                return "thông thường"
            case Priority.PRIORITY:
                return "ưu tiên"
            case Priority.EMERGENCY:
                return "khẩn cấp"
        raise AssertionError(self)  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly time window in the board's local time.

    ``days`` holds weekday numbers (0 = Monday .. 6 = Sunday) on which the window *starts*.
    The window runs from ``start`` (inclusive) to ``end`` (exclusive). When ``end <= start`` it
    crosses midnight and ends on the next day, so the early-morning part belongs to the day
    the window started on. "24:00" is stored as ``end = time(0)``, which gives the same
    instants; ``start == end`` therefore means 24 hours from ``start``.
    """

    days: frozenset[int]
    start: dt.time
    end: dt.time

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))

    @property
    def crosses_midnight(self) -> bool:
        """Return True when the window ends on the day after it starts."""
        return self.end <= self.start

    def contains(self, local: dt.datetime) -> bool:
        """Return True if the wall-clock date and time of ``local`` fall inside the window.

        ``local`` must already be in the board's time zone; only its weekday and time of day
        are used. Raises nothing.
        """
        weekday = local.weekday()
        moment = local.time()
        if not self.crosses_midnight:
            return weekday in self.days and self.start <= moment < self.end
        started_today = weekday in self.days and moment >= self.start
        started_yesterday = (weekday - 1) % 7 in self.days and moment < self.end
        return started_today or started_yesterday


@dataclass(frozen=True, slots=True)
class Item:
    """One piece of content: a template, its fields, and when and how long it plays.

    Build items with :func:`parse_item`; direct construction trusts the caller but still
    freezes ``fields`` and ``windows``. ``valid_from`` and ``valid_until`` are aware datetimes
    or None (no limit); an empty ``windows`` tuple means "at any time".
    """

    id: str
    template: str
    fields: Mapping[str, FieldValue]
    priority: Priority = Priority.ROUTINE
    duration_s: float = DEFAULT_DURATION_S
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    windows: tuple[Window, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        object.__setattr__(self, "windows", tuple(self.windows))

    def __hash__(self) -> int:
        return hash(
            (
                self.id,
                self.template,
                frozenset(self.fields.items()),
                self.priority,
                self.duration_s,
                self.valid_from,
                self.valid_until,
                self.windows,
            )
        )

    def is_eligible(self, now: dt.datetime, tz: ZoneInfo) -> bool:
        """Return True if the item may play at ``now``.

        That is: ``valid_from <= now < valid_until`` (missing limits are open) and ``now``,
        seen in the board's zone ``tz``, lies inside at least one window (no windows means
        always). Raises ValueError if ``now`` is naive: the caller must say which zone it is in.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be an aware datetime")
        if self.valid_from is not None and now < self.valid_from:
            return False
        if self.valid_until is not None and now >= self.valid_until:
            return False
        if not self.windows:
            return True
        local = now.astimezone(tz)
        return any(window.contains(local) for window in self.windows)

    def text_field(self, name: str) -> str | None:
        """Return field ``name`` if it is a string, else None (absent, number or boolean)."""
        value = self.fields.get(name)
        return value if isinstance(value, str) else None


def board_timezone(name: str | None = None) -> ZoneInfo:
    """Return the board's time zone: ``name`` or, when None, Asia/Ho_Chi_Minh.

    Raises ContentError (content.invalid) when the name is not a known IANA zone.
    """
    zone_name = DEFAULT_TIMEZONE if name is None else name
    try:
        return ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ContentError(
            ErrorCode.CONTENT_INVALID,
            f"unknown time zone {zone_name!r}: expected an IANA name such as "
            f"{DEFAULT_TIMEZONE} (is the tz database or the tzdata package installed?)",
        ) from None


def parse_item(data: object, *, tz: ZoneInfo | None = None, path: str = "") -> Item:
    """Return the Item described by ``data`` (a decoded JSON object).

    Times without an offset are taken in ``tz`` (default Asia/Ho_Chi_Minh). ``path`` prefixes
    the paths in error messages (``[2]`` gives ``[2].fields.title``). Raises ContentError
    (content.invalid) naming the first bad field.
    """
    zone = board_timezone() if tz is None else tz
    obj = _object(data, path)
    _refuse_unknown_keys(obj, _ITEM_KEYS, path)
    for key in ("id", "template", "fields"):
        if key not in obj:
            _fail(_join(path, key), "required field missing")

    item_id = _parse_id(obj["id"], _join(path, "id"))
    template = _parse_template(obj["template"], _join(path, "template"))
    priority = Priority.ROUTINE
    if "priority" in obj:
        priority = _parse_priority(obj["priority"], _join(path, "priority"))
    duration = DEFAULT_DURATION_S
    if "duration_s" in obj:
        duration = _parse_duration(obj["duration_s"], _join(path, "duration_s"))
    valid_from = _parse_instant(obj.get("valid_from"), _join(path, "valid_from"), zone)
    valid_until = _parse_instant(obj.get("valid_until"), _join(path, "valid_until"), zone)
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        _fail(_join(path, "valid_until"), "must be after valid_from")
    windows: tuple[Window, ...] = ()
    if "windows" in obj:
        windows = _parse_windows(obj["windows"], _join(path, "windows"))
    fields = _parse_fields(obj["fields"], _join(path, "fields"))
    return Item(
        id=item_id,
        template=template,
        fields=fields,
        priority=priority,
        duration_s=duration,
        valid_from=valid_from,
        valid_until=valid_until,
        windows=windows,
    )


def parse_items(data: object, *, tz: ZoneInfo | None = None) -> tuple[Item, ...]:
    """Return the Items of ``data``, a decoded JSON list of item objects, in order.

    Raises ContentError (content.invalid) when ``data`` is not a list, when an item is bad
    (path ``[i].field``) or when two items share an id (path ``[i].id``).
    """
    if not isinstance(data, (list, tuple)):
        _fail("", "expected a list of items")
    zone = board_timezone() if tz is None else tz
    items: list[Item] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(data):
        item = parse_item(entry, tz=zone, path=f"[{index}]")
        if item.id in first_index:
            _fail(
                f"[{index}].id",
                f"duplicate id {item.id!r} (first used at [{first_index[item.id]}])",
            )
        first_index[item.id] = index
        items.append(item)
    return tuple(items)


def load_item_json(text: str | bytes, *, tz: ZoneInfo | None = None) -> Item:
    """Return the Item in the JSON document ``text`` (str, or UTF-8 bytes).

    Raises ContentError with code content.json when the text is not valid JSON (the message
    gives line and column) and content.invalid when the item itself is bad.
    """
    return parse_item(decode_json(text), tz=tz)


def load_items_json(text: str | bytes, *, tz: ZoneInfo | None = None) -> tuple[Item, ...]:
    """Return the Items in the JSON list ``text`` (str, or UTF-8 bytes).

    Raises ContentError with code content.json for malformed JSON and content.invalid for a
    bad item or a duplicate id.
    """
    return parse_items(decode_json(text), tz=tz)


# --- JSON decoding ---------------------------------------------------------------------------


def _json_error(message: str) -> ContentError:
    return ContentError(ErrorCode.CONTENT_JSON, message)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys are refused: JSON parsers disagree on which copy wins, so a signed
    # document could mean different things to the hub and to the board.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _json_error(f"invalid JSON: duplicate key {key!r} in one object")
        out[key] = value
    return out


def _refuse_constant(name: str) -> NoReturn:
    raise _json_error(f"invalid JSON: {name} is not a JSON number")


# An escape of half a surrogate pair (or a str holding one) gives text that is not Unicode:
# nothing built from it could be written as UTF-8 again (an ack, a log, the journal).
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _unpaired_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_json(text: str | bytes) -> object:
    """Return parsed strict JSON: no duplicate keys, no NaN, no unpaired surrogates
    (``"\\ud800"``). Raise ContentError (content.json)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _json_error(
                f"invalid JSON: not UTF-8 text (bad byte at offset {exc.start})"
            ) from None
    if not isinstance(text, str):
        raise _json_error("invalid JSON: expected text or bytes")
    try:
        data = json.loads(
            text.removeprefix("\ufeff"),
            object_pairs_hook=_unique_keys,
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as exc:
        raise _json_error(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise _json_error("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        # int() refuses numbers longer than sys.get_int_max_str_digits().
        raise _json_error(f"invalid JSON: {exc}") from None
    if _SURROGATE.search(text) and _unpaired_surrogate(data):
        raise _json_error("invalid JSON: a string holds an unpaired surrogate (not Unicode text)")
    return data


# --- validation helpers ------------------------------------------------------------------------


def _fail(path: str, message: str) -> NoReturn:
    raise ContentError(ErrorCode.CONTENT_INVALID, message, path=path or None)


def _join(path: str, key: object) -> str:
    if isinstance(key, str) and _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    shown = json.dumps(key, ensure_ascii=False) if isinstance(key, str) else repr(key)
    if len(shown) > 40:
        shown = shown[:39] + "…"
    return f"{path}[{shown}]"


def _object(value: object, path: str) -> Mapping[Any, object]:
    if not isinstance(value, Mapping):
        _fail(path, "expected an object")
    return value


def _refuse_unknown_keys(obj: Mapping[Any, object], allowed: Collection[str], path: str) -> None:
    for key in obj:
        if key in allowed:
            continue
        message = "unknown field"
        if isinstance(key, str):
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        _fail(_join(path, key), message)


def _text(value: object, path: str, *, max_length: int) -> str:
    if not isinstance(value, str):
        _fail(path, "expected a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(path, "not valid Unicode text (unpaired surrogate)")
    text = unicodedata.normalize("NFC", value)
    if len(text) > max_length:
        _fail(path, f"too long: {len(text)} characters, at most {max_length}")
    return text


def _parse_id(value: object, path: str) -> str:
    text = _text(value, path, max_length=MAX_ID_LENGTH)
    if not text:
        _fail(path, "must not be empty")
    if text != text.strip():
        _fail(path, "must not start or end with whitespace")
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf"):
            _fail(path, f"must not contain control characters (found U+{ord(char):04X})")
    return text


def _parse_template(value: object, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, "expected a string")
    if not _TEMPLATE_RE.fullmatch(value):
        _fail(
            path,
            "expected a template name: lowercase letters, digits and '-', 1-64 characters, "
            "not starting with '-' (see docs/layouts.md)",
        )
    return value


def _parse_priority(value: object, path: str) -> Priority:
    for level in Priority:
        if isinstance(value, str) and value == level.value:
            return level
    _fail(path, "expected one of routine, priority, emergency")


def _parse_duration(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, "expected a number of seconds")
    # Compare before float(): a huge int would overflow, and NaN fails every comparison.
    if not MIN_DURATION_S <= value <= MAX_DURATION_S:
        _fail(path, f"must be between {MIN_DURATION_S:g} and {MAX_DURATION_S:g} seconds")
    return float(value)


def _parse_instant(value: object, path: str, zone: ZoneInfo) -> dt.datetime | None:
    if value is None:
        return None
    example = "2026-11-20T08:00:00+07:00"
    if not isinstance(value, str):
        _fail(path, f"expected an ISO 8601 date and time such as {example}")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        pass
    else:
        _fail(path, f"a date alone is ambiguous: give a date and time such as {example}")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        _fail(path, f"expected an ISO 8601 date and time such as {example}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def _parse_clock(value: object, path: str, *, allow_24: bool) -> dt.time:
    latest = "24:00" if allow_24 else "23:59"
    message = f'expected a time "HH:MM" between 00:00 and {latest}'
    if not isinstance(value, str):
        _fail(path, message)
    if allow_24 and value == "24:00":
        return dt.time(0, 0)
    match = _CLOCK_RE.fullmatch(value)
    if match is None:
        _fail(path, message)
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        _fail(path, message)
    return dt.time(hour, minute)


def _parse_days(value: object, path: str) -> frozenset[int]:
    if not isinstance(value, (list, tuple)):
        _fail(path, "expected a list of days (mon, tue, wed, thu, fri, sat, sun)")
    if not value:
        _fail(path, "must name at least one day (leave out days for every day)")
    days: set[int] = set()
    for index, entry in enumerate(value):
        entry_path = f"{path}[{index}]"
        if not isinstance(entry, str) or entry not in DAY_NAMES:
            _fail(entry_path, "expected one of mon, tue, wed, thu, fri, sat, sun")
        day = DAY_NAMES.index(entry)
        if day in days:
            _fail(entry_path, f"duplicate day {entry!r}")
        days.add(day)
    return frozenset(days)


def _parse_window(value: object, path: str) -> Window:
    obj = _object(value, path)
    _refuse_unknown_keys(obj, _WINDOW_KEYS, path)
    for key in ("from", "to"):
        if key not in obj:
            _fail(_join(path, key), "required field missing")
    days = frozenset(range(7))
    if "days" in obj:
        days = _parse_days(obj["days"], _join(path, "days"))
    start = _parse_clock(obj["from"], _join(path, "from"), allow_24=False)
    end = _parse_clock(obj["to"], _join(path, "to"), allow_24=True)
    if start == end and obj["to"] != "24:00":
        _fail(_join(path, "to"), 'must differ from "from" (use "00:00" to "24:00" for all day)')
    return Window(days=days, start=start, end=end)


def _parse_windows(value: object, path: str) -> tuple[Window, ...]:
    if not isinstance(value, (list, tuple)):
        _fail(path, "expected a list of windows")
    return tuple(_parse_window(entry, f"{path}[{index}]") for index, entry in enumerate(value))


def _parse_field_value(value: object, path: str) -> FieldValue:
    if isinstance(value, str):
        return _text(value, path, max_length=MAX_TEXT_LENGTH)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            _fail(path, f"number out of range (at most ±{MAX_SAFE_INTEGER})")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(path, "expected a finite number")
        return value
    _fail(path, "expected a string, number or boolean")


def _parse_fields(value: object, path: str) -> dict[str, FieldValue]:
    obj = _object(value, path)
    fields: dict[str, FieldValue] = {}
    for key, entry in obj.items():
        key_path = _join(path, key)
        if not isinstance(key, str) or not _FIELD_NAME_RE.fullmatch(key):
            _fail(
                key_path,
                "field names must be 1-64 characters of lowercase a-z, digits and '_', "
                "starting with a letter",
            )
        fields[key] = _parse_field_value(entry, key_path)
    return fields
