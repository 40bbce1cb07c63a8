"""Tests of the Vietnamese lunar calendar."""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signage.compose.lunar import LunarDate, can_chi_year, from_lunar, to_lunar

# Tết Nguyên Đán as celebrated in Vietnam (UTC+7).
TET_VIETNAM = {
    1968: date(1968, 1, 29),
    1985: date(1985, 1, 21),
    2000: date(2000, 2, 5),
    2001: date(2001, 1, 24),
    2002: date(2002, 2, 12),
    2003: date(2003, 2, 1),
    2004: date(2004, 1, 22),
    2005: date(2005, 2, 9),
    2006: date(2006, 1, 29),
    2007: date(2007, 2, 17),
    2008: date(2008, 2, 7),
    2009: date(2009, 1, 26),
    2010: date(2010, 2, 14),
    2011: date(2011, 2, 3),
    2012: date(2012, 1, 23),
    2013: date(2013, 2, 10),
    2014: date(2014, 1, 31),
    2015: date(2015, 2, 19),
    2016: date(2016, 2, 8),
    2017: date(2017, 1, 28),
    2018: date(2018, 2, 16),
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
}

# Chinese New Year (UTC+8) in years where it differs from Tết in Vietnam.
NEW_YEAR_CHINA = {
    1968: date(1968, 1, 30),
    1985: date(1985, 2, 20),
    2007: date(2007, 2, 18),
}

# Vietnamese leap months: lunar year -> (leap month number, Gregorian date of its first day).
LEAP_MONTH_STARTS = {
    2020: (4, date(2020, 5, 23)),
    2023: (2, date(2023, 3, 22)),
    2025: (6, date(2025, 7, 25)),
}

# Leap month numbers only.
LEAP_MONTHS = {
    2001: 4,
    2004: 2,
    2006: 7,
    2009: 5,
    2012: 4,
    2014: 9,
    2017: 6,
    **{year: month for year, (month, _) in LEAP_MONTH_STARTS.items()},
}

dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31))
lunar_years = st.integers(min_value=1900, max_value=2198)


def leap_months_of(lunar_year: int, tz_hours: float = 7.0) -> list[int]:
    found = []
    for month in range(1, 13):
        try:
            from_lunar(1, month, lunar_year, leap=True, tz_hours=tz_hours)
        except ValueError:
            continue
        found.append(month)
    return found


# Tết


@pytest.mark.parametrize(("year", "tet"), sorted(TET_VIETNAM.items()))
def test_tet_in_vietnam(year: int, tet: date) -> None:
    assert to_lunar(tet) == LunarDate(1, 1, year, False)
    assert from_lunar(1, 1, year) == tet


@pytest.mark.parametrize(("year", "new_year"), sorted(NEW_YEAR_CHINA.items()))
def test_new_year_in_china_differs(year: int, new_year: date) -> None:
    assert to_lunar(new_year, tz_hours=8.0) == LunarDate(1, 1, year, False)
    assert from_lunar(1, 1, year, tz_hours=8.0) == new_year
    assert from_lunar(1, 1, year) != new_year


@pytest.mark.parametrize("year", [2020, 2021, 2022, 2023, 2024, 2025, 2026])
def test_new_year_in_china_agrees_in_recent_years(year: int) -> None:
    assert from_lunar(1, 1, year, tz_hours=8.0) == TET_VIETNAM[year]


@pytest.mark.parametrize(("year", "tet"), sorted(TET_VIETNAM.items()))
def test_day_before_tet_ends_month_12_of_previous_year(year: int, tet: date) -> None:
    eve = to_lunar(tet - timedelta(days=1))
    assert (eve.month, eve.year, eve.leap) == (12, year - 1, False)
    assert eve.day in (29, 30)
    assert from_lunar(eve.day, 12, year - 1) == tet - timedelta(days=1)
    with pytest.raises(ValueError):
        from_lunar(eve.day + 1, 12, year - 1)


@given(lunar_years)
def test_tet_falls_between_late_january_and_late_february(year: int) -> None:
    tet = from_lunar(1, 1, year)
    assert date(year, 1, 19) <= tet <= date(year, 2, 21)


@given(lunar_years)
def test_month_11_holds_the_december_solstice(year: int) -> None:
    start = from_lunar(1, 11, year)
    assert date(year, 11, 21) <= start <= date(year, 12, 23)


# Leap months


@pytest.mark.parametrize(("year", "leap"), sorted(LEAP_MONTH_STARTS.items()))
def test_leap_month_starts(year: int, leap: tuple[int, date]) -> None:
    month, start = leap
    assert to_lunar(start) == LunarDate(1, month, year, True)
    assert from_lunar(1, month, year, leap=True) == start
    before = to_lunar(start - timedelta(days=1))
    assert (before.month, before.year, before.leap) == (month, year, False)
    assert before.day in (29, 30)


@pytest.mark.parametrize(("year", "month"), sorted(LEAP_MONTHS.items()))
def test_leap_month_numbers(year: int, month: int) -> None:
    assert leap_months_of(year) == [month]


@pytest.mark.parametrize("year", [2018, 2019, 2021, 2022, 2024, 2026])
def test_common_years_have_no_leap_month(year: int) -> None:
    assert leap_months_of(year) == []
    assert (from_lunar(1, 1, year + 1) - from_lunar(1, 1, year)).days in (353, 354, 355)


def test_1984_leap_month_10_exists_only_in_china() -> None:
    assert leap_months_of(1984, tz_hours=8.0) == [10]
    assert leap_months_of(1984) == []
    # Vietnam made up for it with a leap month in 1985.
    assert (from_lunar(1, 1, 1986) - from_lunar(1, 1, 1985)).days in (383, 384, 385)


def test_full_moon_of_month_11_canh_ty_differs_by_a_day() -> None:
    assert to_lunar(date(2020, 12, 28)) == LunarDate(15, 11, 2020, False)
    assert to_lunar(date(2020, 12, 29), tz_hours=8.0) == LunarDate(15, 11, 2020, False)


# Labels and year names


def test_label_of_tet_2026() -> None:
    assert to_lunar(date(2026, 2, 17)).label() == "Âm lịch 1/1 Bính Ngọ"


def test_label_in_a_leap_month() -> None:
    assert to_lunar(date(2023, 3, 26)).label() == "Âm lịch 5/2 nhuận Quý Mão"
    assert to_lunar(date(2020, 6, 6)).label() == "Âm lịch 15/4 nhuận Canh Tý"


def test_label_of_the_non_leap_month_has_no_leap_word() -> None:
    assert to_lunar(date(2023, 2, 24)).label() == "Âm lịch 5/2 Quý Mão"


def test_label_is_nfc() -> None:
    label = to_lunar(date(2023, 3, 26)).label()
    assert unicodedata.is_normalized("NFC", label)


@pytest.mark.parametrize(
    ("year", "name"),
    [
        (1900, "Canh Tý"),
        (1968, "Mậu Thân"),
        (1984, "Giáp Tý"),
        (1985, "Ất Sửu"),
        (2000, "Canh Thìn"),
        (2023, "Quý Mão"),
        (2024, "Giáp Thìn"),
        (2025, "Ất Tỵ"),
        (2026, "Bính Ngọ"),
        (2043, "Quý Hợi"),
    ],
)
def test_can_chi_year(year: int, name: str) -> None:
    assert can_chi_year(year) == name
    assert unicodedata.is_normalized("NFC", name)


def test_can_chi_cycle_has_sixty_distinct_names() -> None:
    names = [can_chi_year(year) for year in range(1984, 2044)]
    assert len(set(names)) == 60
    assert can_chi_year(2044) == names[0]


def test_year_name_uses_lunar_year_not_gregorian_year() -> None:
    assert to_lunar(date(2026, 2, 16)).year_name == "Ất Tỵ"
    assert to_lunar(date(2026, 2, 17)).year_name == "Bính Ngọ"


# Value object and errors


def test_lunar_date_is_frozen() -> None:
    lunar = LunarDate(1, 1, 2026, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lunar.day = 2  # type: ignore[misc]
    assert not hasattr(lunar, "__dict__")


@pytest.mark.parametrize(("day", "month"), [(0, 1), (31, 1), (1, 0), (1, 13)])
def test_lunar_date_rejects_impossible_fields(day: int, month: int) -> None:
    with pytest.raises(ValueError):
        LunarDate(day, month, 2026, False)


def test_from_lunar_rejects_a_leap_month_the_year_lacks() -> None:
    with pytest.raises(ValueError):
        from_lunar(1, 3, 2023, leap=True)
    with pytest.raises(ValueError):
        from_lunar(1, 1, 2024, leap=True)


def test_from_lunar_rejects_day_30_of_a_short_month() -> None:
    eve = to_lunar(date(2026, 2, 16))
    assert eve == LunarDate(29, 12, 2025, False)
    with pytest.raises(ValueError):
        from_lunar(30, 12, 2025)


@pytest.mark.parametrize(("day", "month"), [(0, 1), (31, 1), (1, 0), (1, 13)])
def test_from_lunar_rejects_out_of_range_fields(day: int, month: int) -> None:
    with pytest.raises(ValueError):
        from_lunar(day, month, 2026)


@pytest.mark.parametrize("day", [date(1799, 12, 31), date(2300, 1, 1)])
def test_to_lunar_rejects_unsupported_dates(day: date) -> None:
    with pytest.raises(ValueError):
        to_lunar(day)


@pytest.mark.parametrize("year", [1700, 2400])
def test_from_lunar_rejects_unsupported_years(year: int) -> None:
    with pytest.raises(ValueError):
        from_lunar(1, 1, year)


@pytest.mark.parametrize("tz_hours", [-13.0, 15.0, float("nan")])
def test_bad_time_zone_is_rejected(tz_hours: float) -> None:
    with pytest.raises(ValueError):
        to_lunar(date(2026, 2, 17), tz_hours=tz_hours)
    with pytest.raises(ValueError):
        from_lunar(1, 1, 2026, tz_hours=tz_hours)


def test_datetime_counts_by_its_date() -> None:
    assert to_lunar(datetime(2026, 2, 17, 23, 59)) == LunarDate(1, 1, 2026, False)


def test_supported_range_ends() -> None:
    first = to_lunar(date(1800, 1, 1))
    last = to_lunar(date(2299, 12, 31))
    assert from_lunar(first.day, first.month, first.year, first.leap) == date(1800, 1, 1)
    assert from_lunar(last.day, last.month, last.year, last.leap) == date(2299, 12, 31)


# Properties


@given(dates)
def test_round_trip(day: date) -> None:
    lunar = to_lunar(day)
    assert from_lunar(lunar.day, lunar.month, lunar.year, lunar.leap) == day


@given(dates)
def test_round_trip_in_china(day: date) -> None:
    lunar = to_lunar(day, tz_hours=8.0)
    assert from_lunar(lunar.day, lunar.month, lunar.year, lunar.leap, tz_hours=8.0) == day


@given(dates)
def test_consecutive_days(day: date) -> None:
    today = to_lunar(day)
    tomorrow = to_lunar(day + timedelta(days=1))
    if tomorrow.day == 1:
        assert today.day in (29, 30)
        if tomorrow.leap:
            assert (tomorrow.month, tomorrow.year, today.leap) == (today.month, today.year, False)
        else:
            assert tomorrow.month == today.month % 12 + 1
            assert tomorrow.year == today.year + (1 if tomorrow.month == 1 else 0)
    else:
        assert tomorrow == dataclasses.replace(today, day=today.day + 1)


@given(dates)
def test_months_have_29_or_30_days(day: date) -> None:
    lunar = to_lunar(day)
    start = from_lunar(1, lunar.month, lunar.year, lunar.leap)
    length = 30
    try:
        from_lunar(30, lunar.month, lunar.year, lunar.leap)
    except ValueError:
        length = 29
    assert to_lunar(start + timedelta(days=length)).day == 1
    assert start <= day < start + timedelta(days=length)


@given(lunar_years)
def test_years_have_12_or_13_months(year: int) -> None:
    span = (from_lunar(1, 1, year + 1) - from_lunar(1, 1, year)).days
    leaps = leap_months_of(year)
    if leaps:
        assert len(leaps) == 1
        assert span in (383, 384, 385)
    else:
        assert span in (353, 354, 355)
