"""Tests of signage.model.item: parsing, validation paths, time rules and eligibility."""

from __future__ import annotations

import datetime as dt
import functools
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signage.errors import ContentError, ErrorCode
from signage.model import (
    DEFAULT_TIMEZONE,
    Item,
    Priority,
    Window,
    board_timezone,
    load_item_json,
    load_items_json,
    parse_item,
    parse_items,
)

HCM = dt.timezone(dt.timedelta(hours=7))
TZ = board_timezone()

FULL: dict[str, Any] = {
    "id": "tb-001",
    "template": "announcement",
    "priority": "priority",
    "duration_s": 15,
    "valid_from": "2026-11-20T00:00:00+07:00",
    "valid_until": "2026-12-31T23:59:59+07:00",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "06:00", "to": "21:30"}],
    "fields": {"title": "Thông báo", "body": "Lịch tiêm chủng", "image": "photo.jpg"},
}


def minimal(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "tb-001", "template": "announcement", "fields": {}}
    data.update(extra)
    return data


def error_of(data: object) -> str:
    with pytest.raises(ContentError) as info:
        parse_item(data)
    assert info.value.code is ErrorCode.CONTENT_INVALID
    return str(info.value)


# hcm(2026, 11, 20, 8) is 2026-11-20 08:00 at +07:00, Hanoi and Ho Chi Minh City time.
hcm = functools.partial(dt.datetime, tzinfo=HCM)


# --- good items ---------------------------------------------------------------------------


def test_minimal_item_takes_defaults() -> None:
    item = parse_item(minimal())
    assert item == Item(id="tb-001", template="announcement", fields={})
    assert item.priority is Priority.ROUTINE
    assert item.duration_s == 10.0
    assert item.valid_from is None and item.valid_until is None
    assert item.windows == ()


def test_full_item() -> None:
    item = parse_item(FULL)
    assert item.id == "tb-001"
    assert item.template == "announcement"
    assert item.priority is Priority.PRIORITY
    assert item.duration_s == 15.0 and isinstance(item.duration_s, float)
    assert item.valid_from == hcm(2026, 11, 20)
    assert item.valid_until == hcm(2026, 12, 31, 23, 59, 59)
    assert item.windows == (
        Window(days=frozenset({0, 1, 2, 3, 4}), start=dt.time(6), end=dt.time(21, 30)),
    )
    assert dict(item.fields) == FULL["fields"]
    assert item.text_field("title") == "Thông báo"
    assert item.text_field("missing") is None


def test_item_is_immutable_and_hashable() -> None:
    item = parse_item(FULL)
    with pytest.raises(TypeError):
        item.fields["title"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        item.id = "other"  # type: ignore[misc]
    assert hash(item) == hash(parse_item(FULL))
    assert len({item, parse_item(FULL)}) == 1


def test_direct_construction_copies_fields() -> None:
    source: dict[str, str | int | float | bool] = {"title": "a"}
    item = Item(id="x", template="clock", fields=source)
    source["title"] = "b"
    assert item.fields["title"] == "a"


def test_field_values_keep_their_type() -> None:
    item = parse_item(minimal(fields={"n": 3, "x": 2.5, "flag": True, "s": ""}))
    assert item.fields == {"n": 3, "x": 2.5, "flag": True, "s": ""}
    assert item.text_field("n") is None
    assert item.text_field("flag") is None


def test_priority_rank_and_label() -> None:
    assert [p.rank for p in Priority] == [0, 1, 2]
    assert Priority.ROUTINE.label == "thông thường"
    assert Priority.PRIORITY.label == "ưu tiên"
    assert Priority.EMERGENCY.label == "khẩn cấp"
    assert Priority("emergency") is Priority.EMERGENCY


@pytest.mark.parametrize("duration", [1, 1.5, 86400])
def test_duration_limits_accepted(duration: float) -> None:
    assert parse_item(minimal(duration_s=duration)).duration_s == duration


def test_null_validity_means_no_limit() -> None:
    item = parse_item(minimal(valid_from=None, valid_until=None))
    assert item.valid_from is None and item.valid_until is None


def test_empty_window_list_means_always() -> None:
    assert parse_item(minimal(windows=[])).windows == ()


def test_window_without_days_means_every_day() -> None:
    item = parse_item(minimal(windows=[{"from": "06:00", "to": "07:00"}]))
    assert item.windows[0].days == frozenset(range(7))


# --- Unicode -------------------------------------------------------------------------------


def test_nfd_and_nfc_give_equal_items() -> None:
    nfc = {"id": "thông-báo", "template": "announcement", "fields": {"title": "Thông báo khẩn"}}
    nfd = json.loads(unicodedata.normalize("NFD", json.dumps(nfc, ensure_ascii=False)))
    assert nfd != nfc
    assert parse_item(nfd) == parse_item(nfc)
    assert parse_item(nfd).fields["title"] == unicodedata.normalize("NFC", "Thông báo khẩn")


def test_text_length_is_counted_after_nfc() -> None:
    # 10000 "ế" in NFD are 30000 code points but 10000 after NFC.
    text = unicodedata.normalize("NFD", "ế") * 10000
    assert len(parse_item(minimal(fields={"body": text})).fields["body"]) == 10000  # type: ignore[arg-type]


# --- bad items and their paths -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "expected an object [content.invalid]"),
        ("x", "expected an object [content.invalid]"),
        (None, "expected an object [content.invalid]"),
        ({"template": "a", "fields": {}}, "id: required field missing"),
        ({"id": "a", "fields": {}}, "template: required field missing"),
        ({"id": "a", "template": "a"}, "fields: required field missing"),
        (minimal(duraton_s=5), "duraton_s: unknown field (did you mean 'duration_s'?)"),
        (minimal(colour="red"), "colour: unknown field [content.invalid]"),
        (minimal(id=5), "id: expected a string"),
        (minimal(id=""), "id: must not be empty"),
        (minimal(id=" a"), "id: must not start or end with whitespace"),
        (minimal(id="a\n"), "id: must not start or end with whitespace"),
        (minimal(id="a\x00b"), "id: must not contain control characters (found U+0000)"),
        (minimal(id="a\u202eb"), "id: must not contain control characters (found U+202E)"),
        (minimal(id="x" * 129), "id: too long: 129 characters, at most 128"),
        (minimal(template=1), "template: expected a string"),
        (minimal(template="News"), "template: expected a template name"),
        (minimal(template="-news"), "template: expected a template name"),
        (minimal(template=""), "template: expected a template name"),
        (minimal(template="a" * 65), "template: expected a template name"),
        (minimal(priority="urgent"), "priority: expected one of routine, priority, emergency"),
        (minimal(priority=2), "priority: expected one of routine, priority, emergency"),
        (minimal(priority=None), "priority: expected one of"),
        (minimal(duration_s=True), "duration_s: expected a number of seconds"),
        (minimal(duration_s="10"), "duration_s: expected a number of seconds"),
        (minimal(duration_s=0.5), "duration_s: must be between 1 and 86400 seconds"),
        (minimal(duration_s=86401), "duration_s: must be between 1 and 86400 seconds"),
        (minimal(duration_s=float("nan")), "duration_s: must be between 1 and 86400 seconds"),
        (minimal(duration_s=10**400), "duration_s: must be between 1 and 86400 seconds"),
        (minimal(valid_from="tomorrow"), "valid_from: expected an ISO 8601 date and time"),
        (minimal(valid_from=20261120), "valid_from: expected an ISO 8601 date and time"),
        (minimal(valid_until="2026-12-31"), "valid_until: a date alone is ambiguous"),
        (minimal(valid_until="2026-13-01T00:00"), "valid_until: expected an ISO 8601"),
        (
            minimal(valid_from="2026-12-01T00:00+07:00", valid_until="2026-12-01T00:00+07:00"),
            "valid_until: must be after valid_from",
        ),
        (
            minimal(valid_from="2026-12-01T08:00+07:00", valid_until="2026-12-01T00:00Z"),
            "valid_until: must be after valid_from",
        ),
        (minimal(windows={}), "windows: expected a list of windows"),
        (minimal(windows=["06:00-07:00"]), "windows[0]: expected an object"),
        (minimal(windows=[{"from": "06:00"}]), "windows[0].to: required field missing"),
        (minimal(windows=[{"to": "06:00"}]), "windows[0].from: required field missing"),
        (
            minimal(windows=[{"from": "06:00", "to": "07:00", "form": "x"}]),
            "windows[0].form: unknown field (did you mean 'from'?)",
        ),
        (minimal(windows=[{"from": "6:00", "to": "07:00"}]), "windows[0].from: expected a time"),
        (minimal(windows=[{"from": "24:00", "to": "07:00"}]), "windows[0].from: expected a time"),
        (minimal(windows=[{"from": "06:60", "to": "07:00"}]), "windows[0].from: expected a time"),
        (minimal(windows=[{"from": 6, "to": "07:00"}]), "windows[0].from: expected a time"),
        (minimal(windows=[{"from": "06:00", "to": "24:01"}]), "windows[0].to: expected a time"),
        (
            minimal(windows=[{"from": "٠٦:٠٠", "to": "07:00"}]),
            "windows[0].from: expected a time",
        ),
        (
            minimal(windows=[{"from": "06:00", "to": "06:00"}]),
            'windows[0].to: must differ from "from"',
        ),
        (
            minimal(windows=[{"from": "00:00", "to": "01:00"}, {"from": "1", "to": "2"}]),
            "windows[1].from: expected a time",
        ),
        (
            minimal(windows=[{"days": [], "from": "06:00", "to": "07:00"}]),
            "windows[0].days: must name at least one day",
        ),
        (
            minimal(windows=[{"days": "mon", "from": "06:00", "to": "07:00"}]),
            "windows[0].days: expected a list of days",
        ),
        (
            minimal(windows=[{"days": ["mon", "Tue"], "from": "06:00", "to": "07:00"}]),
            "windows[0].days[1]: expected one of mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            minimal(windows=[{"days": ["mon", "fri", "mon"], "from": "06:00", "to": "07:00"}]),
            "windows[0].days[2]: duplicate day 'mon'",
        ),
        (minimal(fields=[]), "fields: expected an object"),
        (minimal(fields={"title": None}), "fields.title: expected a string, number or boolean"),
        (minimal(fields={"title": ["a"]}), "fields.title: expected a string, number or boolean"),
        (minimal(fields={"title": {"vi": "a"}}), "fields.title: expected a string, number or"),
        (minimal(fields={"n": float("inf")}), "fields.n: expected a finite number"),
        (minimal(fields={"n": 2**53 + 1}), "fields.n: number out of range"),
        (minimal(fields={"body": "x" * 20001}), "fields.body: too long: 20001 characters"),
        (minimal(fields={"s": "a\ud800"}), "fields.s: not valid Unicode text"),
        (minimal(fields={"Title": "a"}), "fields.Title: field names must be"),
        (minimal(fields={"1st": "a"}), "fields.1st: field names must be"),
        (minimal(fields={"a" * 65: "a"}), "field names must be"),
        (minimal(fields={"tiêu đề": "a"}), 'fields["tiêu đề"]: field names must be'),
    ],
)
def test_bad_item_names_the_field(data: object, expected: str) -> None:
    message = error_of(data)
    assert message.startswith(expected) or expected in message
    assert message.endswith("[content.invalid]")


def test_error_message_format() -> None:
    with pytest.raises(ContentError) as info:
        parse_item(minimal(fields={"title": None}))
    assert info.value.path == "fields.title"
    assert info.value.message == "expected a string, number or boolean"
    assert str(info.value) == "fields.title: expected a string, number or boolean [content.invalid]"


def test_field_string_within_limit_is_accepted() -> None:
    assert len(parse_item(minimal(fields={"body": "x" * 20000})).fields["body"]) == 20000  # type: ignore[arg-type]


def test_id_may_hold_inner_spaces_and_vietnamese() -> None:
    assert parse_item(minimal(id="Thông báo 01")).id == "Thông báo 01"
    assert parse_item(minimal(id="x" * 128)).id == "x" * 128


def test_path_prefix() -> None:
    with pytest.raises(ContentError) as info:
        parse_item(minimal(fields={"title": None}), path="items[4]")
    assert info.value.path == "items[4].fields.title"


def test_unknown_field_is_reported_before_missing_ones() -> None:
    assert error_of({"id": "a", "tempalte": "x"}).startswith("tempalte: unknown field")


# --- time rules ----------------------------------------------------------------------------


def test_naive_times_take_the_board_zone() -> None:
    item = parse_item(minimal(valid_from="2026-11-20T08:00:00"))
    assert item.valid_from == hcm(2026, 11, 20, 8)
    assert item.valid_from is not None and item.valid_from.tzinfo is not None


def test_naive_times_take_the_given_zone() -> None:
    paris = board_timezone("Europe/Paris")
    item = parse_item(
        minimal(valid_from="2026-07-01T08:00", valid_until="2026-12-01T08:00"), tz=paris
    )
    assert item.valid_from == dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC)
    assert item.valid_until == dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC)


def test_explicit_offsets_are_kept() -> None:
    item = parse_item(minimal(valid_from="2026-11-20T01:00:00Z"))
    assert item.valid_from == hcm(2026, 11, 20, 8)


def test_board_timezone() -> None:
    assert board_timezone().key == DEFAULT_TIMEZONE == "Asia/Ho_Chi_Minh"
    assert board_timezone("Asia/Bangkok").key == "Asia/Bangkok"


@pytest.mark.parametrize("name", ["Asia/Hanoi_City", "", "../etc/passwd", "/etc/localtime"])
def test_unknown_timezone_is_a_content_error(name: str) -> None:
    with pytest.raises(ContentError) as info:
        board_timezone(name)
    assert info.value.code is ErrorCode.CONTENT_INVALID
    assert "unknown time zone" in str(info.value)
    assert "Asia/Ho_Chi_Minh" in str(info.value)


# --- windows -------------------------------------------------------------------------------

FRIDAY = 4


def friday_night() -> Window:
    item = parse_item(minimal(windows=[{"days": ["fri"], "from": "22:00", "to": "02:00"}]))
    return item.windows[0]


def test_window_across_midnight_belongs_to_its_start_day() -> None:
    window = friday_night()
    assert window.crosses_midnight
    # 2026-11-20 is a Friday.
    assert dt.date(2026, 11, 20).weekday() == FRIDAY
    assert window.contains(hcm(2026, 11, 20, 22, 0))
    assert window.contains(hcm(2026, 11, 20, 23, 59))
    assert window.contains(hcm(2026, 11, 21, 0, 0))
    assert window.contains(hcm(2026, 11, 21, 1, 0))
    assert not window.contains(hcm(2026, 11, 21, 2, 0))
    assert not window.contains(hcm(2026, 11, 20, 1, 0))
    assert not window.contains(hcm(2026, 11, 20, 21, 59))
    assert not window.contains(hcm(2026, 11, 21, 22, 0))


def test_sunday_window_across_midnight_reaches_monday() -> None:
    window = Window(days=frozenset({6}), start=dt.time(23), end=dt.time(1))
    assert window.contains(hcm(2026, 11, 23, 0, 30))  # Monday
    assert not window.contains(hcm(2026, 11, 24, 0, 30))  # Tuesday


def test_window_to_24_00() -> None:
    item = parse_item(minimal(windows=[{"days": ["sat"], "from": "20:00", "to": "24:00"}]))
    window = item.windows[0]
    assert window.end == dt.time(0)
    assert window.contains(hcm(2026, 11, 21, 23, 59, 59))
    assert not window.contains(hcm(2026, 11, 22, 0, 0))
    assert not window.contains(hcm(2026, 11, 21, 19, 59))


def test_window_all_day() -> None:
    item = parse_item(minimal(windows=[{"days": ["mon"], "from": "00:00", "to": "24:00"}]))
    window = item.windows[0]
    assert window.contains(hcm(2026, 11, 23, 0, 0))
    assert window.contains(hcm(2026, 11, 23, 23, 59, 59))
    assert not window.contains(hcm(2026, 11, 24, 0, 0))
    assert not window.contains(hcm(2026, 11, 22, 23, 59, 59))


def test_window_end_is_exclusive_and_start_inclusive() -> None:
    window = parse_item(FULL).windows[0]
    assert window.contains(hcm(2026, 11, 23, 6, 0))
    assert window.contains(hcm(2026, 11, 23, 21, 29, 59, 999999))
    assert not window.contains(hcm(2026, 11, 23, 21, 30))
    assert not window.contains(hcm(2026, 11, 22, 12, 0))  # Sunday


# --- eligibility ---------------------------------------------------------------------------


def test_is_eligible_validity_boundaries() -> None:
    item = parse_item(
        minimal(valid_from="2026-11-20T00:00:00+07:00", valid_until="2026-12-31T00:00:00+07:00")
    )
    assert not item.is_eligible(hcm(2026, 11, 19, 23, 59, 59), TZ)
    assert item.is_eligible(hcm(2026, 11, 20), TZ)
    assert item.is_eligible(dt.datetime(2026, 11, 19, 17, tzinfo=dt.UTC), TZ)
    assert item.is_eligible(hcm(2026, 12, 30, 23, 59, 59), TZ)
    assert not item.is_eligible(hcm(2026, 12, 31), TZ)


def test_is_eligible_open_limits() -> None:
    only_until = parse_item(minimal(valid_until="2026-01-01T00:00"))
    assert only_until.is_eligible(hcm(2000, 1, 1), TZ)
    assert not only_until.is_eligible(hcm(2026, 1, 1), TZ)
    only_from = parse_item(minimal(valid_from="2026-01-01T00:00"))
    assert not only_from.is_eligible(hcm(2025, 12, 31, 23, 59), TZ)
    assert only_from.is_eligible(hcm(2999, 1, 1), TZ)
    assert parse_item(minimal()).is_eligible(hcm(2026, 1, 1), TZ)


def test_is_eligible_evaluates_windows_in_board_zone() -> None:
    item = parse_item(minimal(windows=[{"days": ["mon"], "from": "06:00", "to": "07:00"}]))
    # Monday 06:30 in Hanoi is Sunday 23:30 UTC.
    assert item.is_eligible(dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC), TZ)
    assert not item.is_eligible(dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC), TZ)
    assert item.is_eligible(dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC), board_timezone("UTC"))


def test_is_eligible_any_window_and_validity_together() -> None:
    item = parse_item(
        minimal(
            valid_until="2026-11-24T00:00",
            windows=[
                {"days": ["mon"], "from": "06:00", "to": "07:00"},
                {"days": ["mon"], "from": "18:00", "to": "19:00"},
            ],
        )
    )
    assert item.is_eligible(hcm(2026, 11, 23, 6, 30), TZ)
    assert item.is_eligible(hcm(2026, 11, 23, 18, 30), TZ)
    assert not item.is_eligible(hcm(2026, 11, 23, 12, 0), TZ)
    assert not item.is_eligible(hcm(2026, 11, 30, 6, 30), TZ)


def test_is_eligible_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_item(minimal()).is_eligible(dt.datetime(2026, 1, 1), TZ)


# --- lists ---------------------------------------------------------------------------------


def test_parse_items() -> None:
    items = parse_items([minimal(id="a"), minimal(id="b")])
    assert [item.id for item in items] == ["a", "b"]
    assert parse_items([]) == ()


def test_parse_items_prefixes_index() -> None:
    data = [minimal(id="a"), minimal(id="b"), minimal(id="c", fields={"title": 1.5, "x": None})]
    with pytest.raises(ContentError) as info:
        parse_items(data)
    assert str(info.value) == (
        "[2].fields.x: expected a string, number or boolean [content.invalid]"
    )
    with pytest.raises(ContentError, match=r"^\[1\]: expected an object"):
        parse_items([minimal(id="a"), 7])


def test_parse_items_refuses_duplicate_ids() -> None:
    data = [minimal(id="x"), minimal(id="y"), minimal(id="z"), minimal(id="x")]
    with pytest.raises(ContentError) as info:
        parse_items(data)
    assert info.value.path == "[3].id"
    assert str(info.value).startswith("[3].id: duplicate id 'x'")


def test_duplicate_ids_compare_after_nfc() -> None:
    data = [minimal(id="báo"), minimal(id=unicodedata.normalize("NFD", "báo"))]
    with pytest.raises(ContentError, match="duplicate id"):
        parse_items(data)


def test_parse_items_needs_a_list() -> None:
    with pytest.raises(ContentError, match=r"^expected a list of items"):
        parse_items(minimal())


# --- JSON text -----------------------------------------------------------------------------


def test_load_item_json_str_and_bytes() -> None:
    text = json.dumps(FULL, ensure_ascii=False)
    assert load_item_json(text) == parse_item(FULL)
    assert load_item_json(text.encode()) == parse_item(FULL)
    assert load_item_json(b"\xef\xbb\xbf" + text.encode()) == parse_item(FULL)
    assert load_items_json(f"[{text}]") == (parse_item(FULL),)


def test_json_syntax_error_gives_line_and_column() -> None:
    text = '{\n  "id": "a",\n    "template" "x"\n}'
    with pytest.raises(ContentError) as info:
        load_item_json(text)
    assert info.value.code is ErrorCode.CONTENT_JSON
    assert "line 3 column 16" in str(info.value)
    assert str(info.value).endswith("[content.json]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"", "line 1 column 1"),
        (b'{"id": "a"', "line 1 column 11"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"id": "a", "id": "b", "template": "x", "fields": {}}', "duplicate key 'id'"),
        (b'{"id": "a", "template": "x", "fields": {"n": NaN}}', "NaN is not a JSON number"),
        (b'{"id": "a", "template": "x", "fields": {"n": -Infinity}}', "-Infinity"),
        (b"[" * 100000, "nested too deeply"),
        (b"1" * 5000, "invalid JSON"),
    ],
)
def test_bad_json(text: bytes, expected: str) -> None:
    with pytest.raises(ContentError) as info:
        load_items_json(text)
    assert info.value.code is ErrorCode.CONTENT_JSON
    assert expected in str(info.value)


def test_valid_json_bad_item_is_content_invalid() -> None:
    with pytest.raises(ContentError) as info:
        load_items_json('[{"id": "a", "template": "x", "fields": {"t": null}}]')
    assert info.value.code is ErrorCode.CONTENT_INVALID
    assert info.value.path == "[0].fields.t"


def test_huge_float_in_json_is_refused() -> None:
    with pytest.raises(ContentError, match=r"fields\.n: expected a finite number"):
        load_item_json('{"id": "a", "template": "x", "fields": {"n": 1e400}}')


# --- property: nothing but Item or ContentError -------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["routine", "mon", "06:00", "24:00", "2026-11-20T08:00", "announcement"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
good_windows = st.lists(
    st.fixed_dictionaries(
        {
            "from": st.sampled_from(["00:00", "06:00", "22:00", "23:59"]),
            "to": st.sampled_from(["00:00", "02:00", "21:30", "24:00"]),
        },
        optional={"days": st.lists(st.sampled_from(["mon", "sat", "sun"]), min_size=1, max_size=1)},
    ),
    max_size=3,
)
good_fields = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True),
    st.text(max_size=20) | st.integers(-(2**53), 2**53) | st.booleans() | st.floats(-1e9, 1e9),
    max_size=4,
)
good_parts: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["a", "tb-001", "Thông báo 1"]),
    "template": st.sampled_from(["announcement", "news-photo", "clock"]),
    "priority": st.sampled_from(["routine", "priority", "emergency"]),
    "duration_s": st.integers(1, 86400) | st.floats(1, 86400),
    "valid_from": st.sampled_from(["2026-11-20T08:00", "2026-11-20T01:00Z", "0001-01-01T00:00"]),
    "valid_until": st.sampled_from(["2026-12-31T23:59:59+07:00", "9999-12-31T23:59:59-14:00"]),
    "windows": good_windows,
    "fields": good_fields,
}
good_items = st.fixed_dictionaries(
    {key: good_parts[key] for key in ("id", "template", "fields")},
    optional={
        key: good_parts[key]
        for key in ("priority", "duration_s", "valid_from", "valid_until", "windows")
    },
)
# A good item with up to two keys replaced by arbitrary JSON values.
damage = st.dictionaries(st.sampled_from([*good_parts, "extra"]), json_values, max_size=2)
near_items = st.tuples(good_items, damage).map(lambda parts: {**parts[0], **parts[1]})


def parses_or_content_error(data: object) -> None:
    try:
        item = parse_item(data)
    except ContentError as error:
        assert error.code is ErrorCode.CONTENT_INVALID
        return
    assert isinstance(item, Item)
    item.is_eligible(hcm(2026, 11, 20, 8), TZ)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_gives_item_or_content_error(data: object) -> None:
    parses_or_content_error(data)


@settings(max_examples=500, deadline=None)
@given(near_items)
def test_near_items_give_item_or_content_error(data: object) -> None:
    parses_or_content_error(data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.binary(max_size=60))
def test_arbitrary_text_gives_items_or_content_error(text: str | bytes) -> None:
    try:
        load_items_json(text)
    except ContentError as error:
        assert error.code in (ErrorCode.CONTENT_JSON, ErrorCode.CONTENT_INVALID)
