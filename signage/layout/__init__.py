"""Layout layer: templates from ``layouts/``, relative geometry and rotation, resolved into a
Scene of positioned boxes."""

from signage.layout.geometry import ROTATIONS, Rect, Size
from signage.layout.templates import (
    BOX_KINDS,
    Background,
    BoxStyle,
    FieldSpec,
    Fill,
    Fit,
    LayoutLibrary,
    PlacedBox,
    Scene,
    Template,
    Variant,
    parse_template,
)

__all__ = [
    "BOX_KINDS",
    "ROTATIONS",
    "Background",
    "BoxStyle",
    "FieldSpec",
    "Fill",
    "Fit",
    "LayoutLibrary",
    "PlacedBox",
    "Rect",
    "Scene",
    "Size",
    "Template",
    "Variant",
    "parse_template",
]
