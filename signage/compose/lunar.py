"""Vietnamese lunar calendar (âm lịch).

The calendar is computed astronomically for a time zone passed in as an offset from UTC (UTC+7
for Vietnam; UTC+8 gives the Chinese calendar, which differs in some years):

* a lunar month starts on the local day of a new moon (Meeus, Astronomical Algorithms, ch. 49:
  mean new moon plus periodic and planetary terms, converted from TT to UT with an estimate of ΔT);
* month 11 is the month that contains the winter solstice (apparent solar longitude 270°, from
  Meeus ch. 25, low-accuracy series);
* when 13 months separate two consecutive month 11s, the first month after the first month 11
  that contains no major solar term (a multiple of 30° of solar longitude) is a leap month and
  repeats the number of the month before it.

Supported Gregorian dates run from 1800-01-01 to 2299-12-31.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import NamedTuple

__all__ = ["LunarDate", "can_chi_year", "from_lunar", "to_lunar"]

_STEMS = ("Giáp", "Ất", "Bính", "Đinh", "Mậu", "Kỷ", "Canh", "Tân", "Nhâm", "Quý")
_BRANCHES = ("Tý", "Sửu", "Dần", "Mão", "Thìn", "Tỵ", "Ngọ", "Mùi", "Thân", "Dậu", "Tuất", "Hợi")

_FIRST_DAY = date(1800, 1, 1)
_LAST_DAY = date(2299, 12, 31)
_MIN_TZ_HOURS = -12.0
_MAX_TZ_HOURS = 14.0

# date.toordinal() plus this is the Julian day number (the JD at noon of that day).
_JDN_MINUS_ORDINAL = 1721425
_JD_J2000 = 2451545.0
_DAYS_PER_YEAR = 365.25
_SECONDS_PER_DAY = 86400.0
_SYNODIC_MONTH = 29.530588861
# JDE of the mean new moon numbered k = 0 (2000-01-06).
_NEW_MOON_EPOCH = 2451550.09766
_LUNATIONS_PER_CENTURY = 1236.85
_WINTER_SOLSTICE_SECTOR = 9  # 270° / 30°

# Periodic terms of the true new moon, Meeus table 49.A:
# (coefficient in days, power of E, multiple of M, multiple of M', multiple of F).
_NEW_MOON_TERMS: tuple[tuple[float, int, int, int, int], ...] = (
    (-0.40720, 0, 0, 1, 0),
    (0.17241, 1, 1, 0, 0),
    (0.01608, 0, 0, 2, 0),
    (0.01039, 0, 0, 0, 2),
    (0.00739, 1, -1, 1, 0),
    (-0.00514, 1, 1, 1, 0),
    (0.00208, 2, 2, 0, 0),
    (-0.00111, 0, 0, 1, -2),
    (-0.00057, 0, 0, 1, 2),
    (0.00056, 1, 1, 2, 0),
    (-0.00042, 0, 0, 3, 0),
    (0.00042, 1, 1, 0, 2),
    (0.00038, 1, 1, 0, -2),
    (-0.00024, 1, -1, 2, 0),
    (-0.00007, 0, 2, 1, 0),
    (0.00004, 0, 0, 2, -2),
    (0.00004, 0, 3, 0, 0),
    (0.00003, 0, 1, 1, -2),
    (0.00003, 0, 0, 2, 2),
    (-0.00003, 0, 1, 1, 2),
    (0.00003, 0, -1, 1, 2),
    (-0.00002, 0, -1, 1, -2),
    (-0.00002, 0, 1, 3, 0),
    (0.00002, 0, 0, 4, 0),
)
_NEW_MOON_NODE_TERM = -0.00017

# Planetary arguments, Meeus ch. 49:
# (coefficient in days, angle at k = 0, degrees per lunation, degrees per century squared).
_PLANETARY_TERMS: tuple[tuple[float, float, float, float], ...] = (
    (0.000325, 299.77, 0.107408, -0.009173),
    (0.000165, 251.88, 0.016321, 0.0),
    (0.000164, 251.83, 26.651886, 0.0),
    (0.000126, 349.42, 36.412478, 0.0),
    (0.000110, 84.66, 18.206239, 0.0),
    (0.000062, 141.74, 53.303771, 0.0),
    (0.000060, 207.14, 2.453732, 0.0),
    (0.000056, 154.84, 7.306860, 0.0),
    (0.000047, 34.52, 27.261239, 0.0),
    (0.000042, 207.19, 0.121824, 0.0),
    (0.000040, 291.34, 1.844379, 0.0),
    (0.000037, 161.72, 24.198154, 0.0),
    (0.000035, 239.56, 25.513099, 0.0),
    (0.000023, 331.55, 3.592518, 0.0),
)


@dataclass(frozen=True, slots=True)
class LunarDate:
    """A day of the Vietnamese lunar calendar.

    ``year`` is the lunar year number: the Gregorian year in which Tết (1/1) of that lunar year
    falls. ``leap`` is True in a leap (nhuận) month, which repeats the number of the month before.
    Construction raises ValueError when ``day`` is outside 1..30 or ``month`` outside 1..12.
    """

    day: int
    month: int
    year: int
    leap: bool

    def __post_init__(self) -> None:
        if not 1 <= self.day <= 30:
            raise ValueError(f"lunar day must be 1..30, got {self.day}")
        if not 1 <= self.month <= 12:
            raise ValueError(f"lunar month must be 1..12, got {self.month}")

    @property
    def year_name(self) -> str:
        """Return the Can Chi name of the lunar year, e.g. "Bính Ngọ" for 2026."""
        return can_chi_year(self.year)

    def label(self) -> str:
        """Return the board text, e.g. "Âm lịch 1/1 Bính Ngọ" or "Âm lịch 5/2 nhuận Quý Mão"."""
        leap = " nhuận" if self.leap else ""
        return f"Âm lịch {self.day}/{self.month}{leap} {self.year_name}"


def can_chi_year(lunar_year: int) -> str:
    """Return the Can Chi (sexagenary) name of ``lunar_year``, e.g. "Giáp Tý" for 1984.

    Defined for every integer year; raises nothing.
    """
    return f"{_STEMS[(lunar_year + 6) % 10]} {_BRANCHES[(lunar_year + 8) % 12]}"


def to_lunar(day: date, tz_hours: float = 7.0) -> LunarDate:
    """Return the lunar date of the Gregorian ``day`` in the time zone UTC+``tz_hours``.

    A ``datetime`` is accepted; only its date part counts. Raises ValueError when ``day`` is
    outside 1800-01-01..2299-12-31 or ``tz_hours`` is outside -12..14.
    """
    _check_tz(tz_hours)
    plain_day = _as_date(day)
    if not _FIRST_DAY <= plain_day <= _LAST_DAY:
        raise ValueError(f"date {plain_day} is outside {_FIRST_DAY}..{_LAST_DAY}")
    jdn = day.toordinal() + _JDN_MINUS_ORDINAL
    months = _months_of_cycle(day.year, tz_hours)
    if jdn >= months[-1].end:
        months = _months_of_cycle(day.year + 1, tz_hours)
    month = months[bisect_right(months, jdn, key=_month_start) - 1]
    return LunarDate(jdn - month.start + 1, month.number, month.year, month.leap)


def from_lunar(
    lunar_day: int,
    lunar_month: int,
    lunar_year: int,
    leap: bool = False,
    tz_hours: float = 7.0,
) -> date:
    """Return the Gregorian date of a lunar date in the time zone UTC+``tz_hours``.

    Raises ValueError when the lunar date does not exist (a month outside 1..12, a leap month the
    year does not have, day 30 of a 29-day month, ...), when it falls outside
    1800-01-01..2299-12-31, or when ``tz_hours`` is outside -12..14.
    """
    _check_tz(tz_hours)
    if not 1 <= lunar_month <= 12:
        raise ValueError(f"lunar month must be 1..12, got {lunar_month}")
    if not _FIRST_DAY.year - 1 <= lunar_year <= _LAST_DAY.year:
        raise ValueError(f"lunar year {lunar_year} is outside the supported range")
    # A cycle runs from month 11 to month 11, so months 11 and 12 sit in the next year's cycle.
    cycle_year = lunar_year + 1 if lunar_month >= 11 else lunar_year
    for month in _months_of_cycle(cycle_year, tz_hours):
        if month.number == lunar_month and month.leap == leap:
            break
    else:
        raise ValueError(f"lunar year {lunar_year} has no leap month {lunar_month}")
    if not 1 <= lunar_day <= month.end - month.start:
        length = month.end - month.start
        raise ValueError(f"lunar day {lunar_day} is outside 1..{length} for that month")
    result = date.fromordinal(month.start + lunar_day - 1 - _JDN_MINUS_ORDINAL)
    if not _FIRST_DAY <= result <= _LAST_DAY:
        raise ValueError(f"date {result} is outside {_FIRST_DAY}..{_LAST_DAY}")
    return result


class _Month(NamedTuple):
    start: int  # local Julian day number of day 1
    end: int  # local Julian day number of day 1 of the next month
    number: int
    leap: bool
    year: int


def _month_start(month: _Month) -> int:
    return month.start


def _as_date(day: date) -> date:
    # datetime is a subclass of date but does not compare with a plain date.
    return date(day.year, day.month, day.day)


def _check_tz(tz_hours: float) -> None:
    if not _MIN_TZ_HOURS <= tz_hours <= _MAX_TZ_HOURS:
        raise ValueError(f"tz_hours must be within {_MIN_TZ_HOURS}..{_MAX_TZ_HOURS}")


@lru_cache(maxsize=128)
def _months_of_cycle(year: int, tz_hours: float) -> tuple[_Month, ...]:
    """Months from month 11 of lunar year ``year - 1`` up to month 11 of ``year`` (excluded)."""
    first = _month11_lunation(year - 1, tz_hours)
    last = _month11_lunation(year, tz_hours)
    starts = [_new_moon_day(k, tz_hours) for k in range(first, last + 1)]
    count = last - first
    leap_index = -1
    if count == 13:
        sectors = [_solar_term_sector(start, tz_hours) for start in starts]
        # 12 major terms fall in 13 months, so some month after month 11 holds none.
        for index in range(1, count):
            if sectors[index] == sectors[index + 1]:
                leap_index = index
                break
        else:
            raise RuntimeError(f"no month without a major solar term before month 11 of {year}")
    months: list[_Month] = []
    number = 10
    for index in range(count):
        is_leap = index == leap_index
        if not is_leap:
            number = number % 12 + 1
        owner = year - 1 if number >= 11 else year
        months.append(_Month(starts[index], starts[index + 1], number, is_leap, owner))
    return tuple(months)


@lru_cache(maxsize=128)
def _month11_lunation(year: int, tz_hours: float) -> int:
    """Number k of the new moon that starts the month holding the winter solstice of ``year``."""
    dec31 = date(year, 12, 31).toordinal() + _JDN_MINUS_ORDINAL
    k = math.floor((dec31 - _NEW_MOON_EPOCH) / _SYNODIC_MONTH)
    while _new_moon_day(k + 1, tz_hours) <= dec31:
        k += 1
    while _new_moon_day(k, tz_hours) > dec31:
        k -= 1
    # The solstice (Dec 20-23) lies either in this month or, if it came before this month
    # began, in the one before.
    if _solar_term_sector(_new_moon_day(k, tz_hours), tz_hours) >= _WINTER_SOLSTICE_SECTOR:
        k -= 1
    return k


def _new_moon_day(k: int, tz_hours: float) -> int:
    """Local Julian day number of the day on which new moon number ``k`` occurs."""
    return math.floor(_new_moon_ut(k) + 0.5 + tz_hours / 24.0)


def _solar_term_sector(jdn: int, tz_hours: float) -> int:
    """Index 0..11 of the 30° arc of solar longitude the sun is in at local midnight
    starting day ``jdn``."""
    midnight_ut = jdn - 0.5 - tz_hours / 24.0
    return math.floor(_sun_apparent_longitude(midnight_ut) / 30.0) % 12


def _new_moon_ut(k: int) -> float:
    """Julian date (UT) of the true new moon number ``k`` (k = 0 near 2000-01-06)."""
    t = k / _LUNATIONS_PER_CENTURY
    t2 = t * t
    jde = (
        _NEW_MOON_EPOCH
        + _SYNODIC_MONTH * k
        + 0.00015437 * t2
        - 0.000000150 * t2 * t
        + 0.00000000073 * t2 * t2
    )
    e = 1.0 - 0.002516 * t - 0.0000074 * t2
    sun_anomaly = _radians(2.5534 + 29.10535670 * k - 0.0000014 * t2 - 0.00000011 * t2 * t)
    moon_anomaly = _radians(
        201.5643 + 385.81693528 * k + 0.0107582 * t2 + 0.00001238 * t2 * t - 0.000000058 * t2 * t2
    )
    latitude_arg = _radians(
        160.7108 + 390.67050284 * k - 0.0016118 * t2 - 0.00000227 * t2 * t + 0.000000011 * t2 * t2
    )
    node = _radians(124.7746 - 1.56375588 * k + 0.0020672 * t2 + 0.00000215 * t2 * t)

    correction = _NEW_MOON_NODE_TERM * math.sin(node)
    for coefficient, e_power, m, mp, f in _NEW_MOON_TERMS:
        angle = m * sun_anomaly + mp * moon_anomaly + f * latitude_arg
        correction += coefficient * e**e_power * math.sin(angle)
    for coefficient, start, per_lunation, per_century2 in _PLANETARY_TERMS:
        correction += coefficient * math.sin(_radians(start + per_lunation * k + per_century2 * t2))
    jde += correction
    return jde - _delta_t_seconds(_decimal_year(jde)) / _SECONDS_PER_DAY


def _sun_apparent_longitude(jd_ut: float) -> float:
    """Apparent geocentric longitude of the sun in degrees, 0 <= result < 360."""
    jde = jd_ut + _delta_t_seconds(_decimal_year(jd_ut)) / _SECONDS_PER_DAY
    t = (jde - _JD_J2000) / 36525.0
    mean_longitude = 280.46646 + 36000.76983 * t + 0.0003032 * t * t
    anomaly = _radians(357.52911 + 35999.05029 * t - 0.0001537 * t * t)
    center = (
        (1.914602 - 0.004817 * t - 0.000014 * t * t) * math.sin(anomaly)
        + (0.019993 - 0.000101 * t) * math.sin(2.0 * anomaly)
        + 0.000289 * math.sin(3.0 * anomaly)
    )
    node = _radians(125.04 - 1934.136 * t)
    # Nutation and aberration.
    apparent = mean_longitude + center - 0.00569 - 0.00478 * math.sin(node)
    return apparent % 360.0


def _radians(degrees: float) -> float:
    return math.radians(degrees % 360.0)


def _decimal_year(jd: float) -> float:
    return 2000.0 + (jd - _JD_J2000) / _DAYS_PER_YEAR


def _delta_t_seconds(year: float) -> float:
    """TT - UT in seconds (Espenak and Meeus polynomials, valid 1800-2300)."""
    if year < 1860.0:
        t = year - 1800.0
        return (
            13.72
            - 0.332447 * t
            + 0.0068612 * t**2
            + 0.0041116 * t**3
            - 0.00037436 * t**4
            + 0.0000121272 * t**5
            - 0.0000001699 * t**6
            + 0.000000000875 * t**7
        )
    if year < 1900.0:
        t = year - 1860.0
        return (
            7.62
            + 0.5737 * t
            - 0.251754 * t**2
            + 0.01680668 * t**3
            - 0.0004473624 * t**4
            + t**5 / 233174.0
        )
    if year < 1920.0:
        t = year - 1900.0
        return -2.79 + 1.494119 * t - 0.0598939 * t**2 + 0.0061966 * t**3 - 0.000197 * t**4
    if year < 1941.0:
        t = year - 1920.0
        return 21.20 + 0.84493 * t - 0.076100 * t**2 + 0.0020936 * t**3
    if year < 1961.0:
        t = year - 1950.0
        return 29.07 + 0.407 * t - t**2 / 233.0 + t**3 / 2547.0
    if year < 1986.0:
        t = year - 1975.0
        return 45.45 + 1.067 * t - t**2 / 260.0 - t**3 / 718.0
    if year < 2005.0:
        t = year - 2000.0
        return (
            63.86
            + 0.3345 * t
            - 0.060374 * t**2
            + 0.0017275 * t**3
            + 0.000651814 * t**4
            + 0.00002373599 * t**5
        )
    if year < 2050.0:
        t = year - 2000.0
        return 62.92 + 0.32217 * t + 0.005589 * t**2
    u = (year - 1820.0) / 100.0
    if year < 2150.0:
        return -20.0 + 32.0 * u * u - 0.5628 * (2150.0 - year)
    return -20.0 + 32.0 * u * u
