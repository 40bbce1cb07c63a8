"""Compose layer: Scene + assets + time -> image, with text, image, clock (solar and lunar date),
QR, ticker, logo and alert banner boxes."""

from signage.compose.calendar import WEEKDAYS, lunar_label, moment_label, solar_label, time_label
from signage.compose.composer import (
    SEVERITY_LABELS,
    BoardInfo,
    BoxReport,
    Composer,
    Frame,
    LineReport,
    TickerLayer,
)
from signage.compose.images import (
    DEFAULT_MAX_PIXELS,
    AssetResolver,
    fit_image,
    folder_assets,
    load_image,
    placeholder,
)
from signage.compose.lunar import LunarDate, can_chi_year, from_lunar, to_lunar

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SEVERITY_LABELS",
    "WEEKDAYS",
    "AssetResolver",
    "BoardInfo",
    "BoxReport",
    "Composer",
    "Frame",
    "LineReport",
    "LunarDate",
    "TickerLayer",
    "can_chi_year",
    "fit_image",
    "folder_assets",
    "from_lunar",
    "load_image",
    "lunar_label",
    "moment_label",
    "placeholder",
    "solar_label",
    "time_label",
    "to_lunar",
]
