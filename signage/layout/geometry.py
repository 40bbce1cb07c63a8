"""Immutable screen geometry: sizes, rectangles and rotation, with pure methods."""

from __future__ import annotations

from dataclasses import dataclass

ROTATIONS = (0, 90, 180, 270)


@dataclass(frozen=True, slots=True)
class Size:
    """A width and height in pixels."""

    width: int
    height: int

    @property
    def aspect(self) -> float:
        """Return width / height (0 for an empty size)."""
        return self.width / self.height if self.height else 0.0

    @property
    def vmin(self) -> float:
        """Return one hundredth of the shorter side: the unit of relative font sizes."""
        return min(self.width, self.height) / 100

    def rotated(self, degrees: int) -> Size:
        """Return the size content must have to fill this screen turned by ``degrees``."""
        return Size(self.height, self.width) if degrees in (90, 270) else self

    @classmethod
    def parse(cls, text: str) -> Size:
        """Return the size written as ``WxH`` (e.g. ``1920x1080``); raise ValueError otherwise."""
        parts = text.lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise ValueError(f"expected WIDTHxHEIGHT such as 1920x1080, got {text!r}")
        width, height = (int(p) for p in parts)
        if not (16 <= width <= 16384 and 16 <= height <= 16384):
            raise ValueError(f"size {width}x{height} is outside 16..16384 pixels per side")
        return cls(width, height)


@dataclass(frozen=True, slots=True)
class Rect:
    """A rectangle in pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        """Return the x just past the right edge."""
        return self.x + self.width

    @property
    def bottom(self) -> int:
        """Return the y just past the bottom edge."""
        return self.y + self.height

    @property
    def size(self) -> Size:
        """Return the rectangle's size."""
        return Size(self.width, self.height)

    def inset(self, dx: int, dy: int | None = None) -> Rect:
        """Return the rectangle shrunk by ``dx`` left and right and ``dy`` top and bottom."""
        dy = dx if dy is None else dy
        dx, dy = min(dx, self.width // 2), min(dy, self.height // 2)
        return Rect(self.x + dx, self.y + dy, self.width - 2 * dx, self.height - 2 * dy)

    def contains(self, other: Rect) -> bool:
        """Return True when ``other`` lies wholly inside this rectangle."""
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def rotated(self, content: Size, degrees: int) -> Rect:
        """Return where this rectangle of a ``content``-sized image lands after turning the image
        ``degrees`` clockwise (0, 90, 180 or 270)."""
        w, h = content.width, content.height
        if degrees == 90:
            return Rect(h - self.y - self.height, self.x, self.height, self.width)
        if degrees == 180:
            return Rect(w - self.x - self.width, h - self.y - self.height, self.width, self.height)
        if degrees == 270:
            return Rect(self.y, w - self.x - self.width, self.height, self.width)
        return self

    def as_list(self) -> list[int]:
        """Return ``[x, y, width, height]`` for JSON reports."""
        return [self.x, self.y, self.width, self.height]

    def as_box(self) -> tuple[int, int, int, int]:
        """Return ``(left, top, right, bottom)`` as Pillow expects."""
        return (self.x, self.y, self.right, self.bottom)
