"""Frozen content model and its JSON parsers (no I/O). See docs/content.md."""

from signage.model.item import (
    DAY_NAMES,
    DEFAULT_DURATION_S,
    DEFAULT_TIMEZONE,
    MAX_DURATION_S,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    MIN_DURATION_S,
    FieldValue,
    Item,
    Priority,
    Window,
    board_timezone,
    load_item_json,
    load_items_json,
    parse_item,
    parse_items,
)

__all__ = [
    "DAY_NAMES",
    "DEFAULT_DURATION_S",
    "DEFAULT_TIMEZONE",
    "MAX_DURATION_S",
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "MIN_DURATION_S",
    "FieldValue",
    "Item",
    "Priority",
    "Window",
    "board_timezone",
    "load_item_json",
    "load_items_json",
    "parse_item",
    "parse_items",
]
