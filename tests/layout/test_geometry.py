"""Screen geometry: Size parsing and rotation, Rect insets, containment and report form."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signage.layout import ROTATIONS, Rect, Size

LIMIT_LOW = 16
LIMIT_HIGH = 16384

sides = st.integers(min_value=LIMIT_LOW, max_value=LIMIT_HIGH)
coords = st.integers(min_value=-5000, max_value=5000)
extents = st.integers(min_value=0, max_value=5000)
insets = st.integers(min_value=0, max_value=6000)
rects = st.builds(Rect, coords, coords, extents, extents)


# -- Size.parse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1920x1080", Size(1920, 1080)),
        ("1080x1920", Size(1080, 1920)),
        ("192x96", Size(192, 96)),
        ("3840x2160", Size(3840, 2160)),
        ("1920X1080", Size(1920, 1080)),
        ("1920×1080", Size(1920, 1080)),
        (" 1920 x 1080 ", Size(1920, 1080)),
        ("0192x096", Size(192, 96)),
        ("16x16", Size(16, 16)),
        ("16384x16384", Size(16384, 16384)),
        ("16x16384", Size(16, 16384)),
    ],
)
def test_size_parse_accepts(text: str, expected: Size) -> None:
    assert Size.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "1920",
        "1920x",
        "x1080",
        "1920x1080x3",
        "1920*1080",
        "1920,1080",
        "1920 1080",
        "-1920x1080",
        "1920x-1080",
        "+1920x1080",
        "1920.0x1080",
        "1e3x1080",
        "0x1080",
        "wide x tall",
        "1920x1080px",
    ],
)
def test_size_parse_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError, match=r"WIDTHxHEIGHT|outside 16\.\.16384"):
        Size.parse(text)


@pytest.mark.parametrize(
    "text", ["15x1080", "1920x15", "16385x1080", "1920x16385", "0x0", "100000x100000"]
)
def test_size_parse_refuses_sizes_outside_limits(text: str) -> None:
    with pytest.raises(ValueError, match=r"outside 16\.\.16384 pixels per side"):
        Size.parse(text)


def test_size_parse_message_quotes_the_input_and_an_example() -> None:
    with pytest.raises(ValueError) as caught:
        Size.parse("big")
    assert "'big'" in str(caught.value)
    assert "1920x1080" in str(caught.value)


def test_size_parse_superscript_digit_gets_the_helpful_message() -> None:
    with pytest.raises(ValueError, match="expected WIDTHxHEIGHT"):
        Size.parse("1920x1080²")


@given(width=sides, height=sides)
def test_size_parse_round_trips_every_size_in_range(width: int, height: int) -> None:
    assert Size.parse(f"{width}x{height}") == Size(width, height)
    assert Size.parse(f"{width}×{height}") == Size(width, height)
    assert Size.parse(f"{width}X{height}") == Size(width, height)


@given(
    width=st.integers(min_value=0, max_value=10**6),
    height=st.integers(min_value=0, max_value=10**6),
)
def test_size_parse_accepts_exactly_the_limits(width: int, height: int) -> None:
    inside = LIMIT_LOW <= width <= LIMIT_HIGH and LIMIT_LOW <= height <= LIMIT_HIGH
    if inside:
        assert Size.parse(f"{width}x{height}") == Size(width, height)
    else:
        with pytest.raises(ValueError):
            Size.parse(f"{width}x{height}")


# -- Size properties and rotation -------------------------------------------------------------


def test_size_aspect_and_vmin() -> None:
    assert Size(1920, 1080).aspect == pytest.approx(16 / 9)
    assert Size(1080, 1920).aspect == pytest.approx(9 / 16)
    assert Size(100, 0).aspect == 0.0
    assert Size(1920, 1080).vmin == pytest.approx(10.8)
    assert Size(1080, 1920).vmin == pytest.approx(10.8)
    assert Size(192, 96).vmin == pytest.approx(0.96)


@pytest.mark.parametrize("degrees", [90, 270])
def test_rotated_swaps_for_quarter_turns(degrees: int) -> None:
    assert Size(1920, 1080).rotated(degrees) == Size(1080, 1920)
    assert Size(192, 96).rotated(degrees) == Size(96, 192)


@pytest.mark.parametrize("degrees", [0, 180])
def test_rotated_keeps_size_for_half_and_no_turns(degrees: int) -> None:
    assert Size(1920, 1080).rotated(degrees) == Size(1920, 1080)


def test_rotations_are_the_four_quarter_turns() -> None:
    assert ROTATIONS == (0, 90, 180, 270)


@given(width=sides, height=sides, degrees=st.sampled_from(ROTATIONS))
def test_rotated_preserves_area_and_turning_twice_is_identity(
    width: int, height: int, degrees: int
) -> None:
    size = Size(width, height)
    turned = size.rotated(degrees)
    assert turned.width * turned.height == width * height
    assert turned.rotated(degrees) == size
    assert {turned.width, turned.height} == {width, height}
    assert turned.vmin == size.vmin


def test_size_and_rect_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Size(1, 2).width = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Rect(0, 0, 1, 1).x = 3  # type: ignore[misc]


# -- Rect ----------------------------------------------------------------------------------


def test_rect_edges_size_and_report_forms() -> None:
    rect = Rect(10, 20, 300, 40)
    assert rect.right == 310
    assert rect.bottom == 60
    assert rect.size == Size(300, 40)
    assert rect.as_list() == [10, 20, 300, 40]
    assert isinstance(rect.as_list(), list)
    assert rect.as_box() == (10, 20, 310, 60)


def test_inset_shrinks_each_side() -> None:
    assert Rect(0, 0, 100, 50).inset(10) == Rect(10, 10, 80, 30)
    assert Rect(5, 7, 100, 50).inset(10, 4) == Rect(15, 11, 80, 42)
    assert Rect(5, 7, 100, 50).inset(0) == Rect(5, 7, 100, 50)
    assert Rect(5, 7, 100, 50).inset(0, 5) == Rect(5, 12, 100, 40)


def test_inset_larger_than_the_rect_collapses_to_its_centre() -> None:
    assert Rect(0, 0, 10, 10).inset(50) == Rect(5, 5, 0, 0)
    assert Rect(0, 0, 11, 7).inset(50) == Rect(5, 3, 1, 1)
    assert Rect(0, 0, 100, 6).inset(10) == Rect(10, 3, 80, 0)


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (Rect(0, 0, 100, 50), True),
        (Rect(10, 10, 10, 10), True),
        (Rect(99, 49, 1, 1), True),
        (Rect(0, 0, 0, 0), True),
        (Rect(100, 50, 0, 0), True),
        (Rect(-1, 0, 10, 10), False),
        (Rect(0, -1, 10, 10), False),
        (Rect(91, 0, 10, 10), False),
        (Rect(0, 41, 10, 10), False),
        (Rect(0, 0, 101, 50), False),
        (Rect(0, 0, 100, 51), False),
        (Rect(-10, -10, 200, 200), False),
    ],
)
def test_contains(inner: Rect, expected: bool) -> None:
    assert Rect(0, 0, 100, 50).contains(inner) is expected


def test_contains_is_not_symmetric() -> None:
    outer, inner = Rect(0, 0, 100, 100), Rect(10, 10, 5, 5)
    assert outer.contains(inner)
    assert not inner.contains(outer)


# -- inset properties -------------------------------------------------------------------------


@given(rect=rects, dx=insets, dy=insets)
def test_inset_stays_inside_with_non_negative_size(rect: Rect, dx: int, dy: int) -> None:
    inner = rect.inset(dx, dy)
    assert inner.width >= 0
    assert inner.height >= 0
    assert rect.contains(inner)


@given(rect=rects, dx=insets, dy=insets)
def test_inset_keeps_the_centre_and_equal_margins(rect: Rect, dx: int, dy: int) -> None:
    inner = rect.inset(dx, dy)
    assert inner.x - rect.x == rect.right - inner.right
    assert inner.y - rect.y == rect.bottom - inner.bottom
    assert 2 * inner.x + inner.width == 2 * rect.x + rect.width
    assert 2 * inner.y + inner.height == 2 * rect.y + rect.height


@given(rect=rects, dx=insets, dy=insets)
def test_inset_is_exact_when_it_fits(rect: Rect, dx: int, dy: int) -> None:
    inner = rect.inset(dx, dy)
    if 2 * dx <= rect.width:
        assert inner.x == rect.x + dx
        assert inner.width == rect.width - 2 * dx
    else:
        assert inner.width in (0, 1)
    if 2 * dy <= rect.height:
        assert inner.y == rect.y + dy
        assert inner.height == rect.height - 2 * dy
    else:
        assert inner.height in (0, 1)


@given(rect=rects, d=insets)
def test_inset_with_one_amount_uses_it_on_both_axes(rect: Rect, d: int) -> None:
    assert rect.inset(d) == rect.inset(d, d)


@given(rect=rects)
def test_inset_zero_is_identity(rect: Rect) -> None:
    assert rect.inset(0) == rect
    assert rect.inset(0, 0) == rect


@given(rect=rects, a=insets, b=insets, c=insets, d=insets)
def test_insets_compose(rect: Rect, a: int, b: int, c: int, d: int) -> None:
    assert rect.inset(a, c).inset(b, d) == rect.inset(a + b, c + d)


@given(rect=rects, a=insets, b=insets)
def test_inset_is_monotonic(rect: Rect, a: int, b: int) -> None:
    small, large = sorted((a, b))
    assert rect.inset(small).contains(rect.inset(large))


@given(rect=rects, dx=insets, dy=insets)
def test_as_list_round_trips(rect: Rect, dx: int, dy: int) -> None:
    inner = rect.inset(dx, dy)
    assert Rect(*inner.as_list()) == inner
    left, top, right, bottom = inner.as_box()
    assert (right - left, bottom - top) == (inner.width, inner.height)
