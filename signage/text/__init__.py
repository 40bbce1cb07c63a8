"""Text layer: NFC normalisation, the font registry with fallback by coverage, shaping through
Pillow's RAQM layout, line breaking and auto-fit."""

from signage.text.fonts import BOLD, REGULAR, FontFace, FontRegistry, require_raqm
from signage.text.typeset import (
    ELLIPSIS,
    Align,
    Line,
    Run,
    TextBlock,
    TextStyle,
    Typesetter,
    clusters,
)

__all__ = [
    "BOLD",
    "ELLIPSIS",
    "REGULAR",
    "Align",
    "FontFace",
    "FontRegistry",
    "Line",
    "Run",
    "TextBlock",
    "TextStyle",
    "Typesetter",
    "clusters",
    "require_raqm",
]
