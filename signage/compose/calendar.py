"""Vietnamese date and time labels for the screen: solar date, time, lunar date."""

from __future__ import annotations

from datetime import datetime

from signage.compose.lunar import to_lunar

WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


def solar_label(moment: datetime) -> str:
    """Return the solar date as boards show it, e.g. ``Thứ Bảy, 21/11/2026``."""
    return f"{WEEKDAYS[moment.weekday()]}, {moment.day:02d}/{moment.month:02d}/{moment.year}"


def time_label(moment: datetime) -> str:
    """Return the 24-hour time, e.g. ``07:05``."""
    return f"{moment.hour:02d}:{moment.minute:02d}"


def lunar_label(moment: datetime) -> str:
    """Return the Vietnamese lunar date (UTC+7 calendar), e.g. ``Âm lịch 1/1 Bính Ngọ``."""
    return to_lunar(moment.date()).label()


def moment_label(moment: datetime) -> str:
    """Return a time and date such as ``18:00 ngày 21/11/2026`` for deadlines and expiry."""
    return f"{time_label(moment)} ngày {moment.day:02d}/{moment.month:02d}/{moment.year}"
