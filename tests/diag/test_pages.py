"""The diagnostics pages: golden images of every page at 1920x1080 and 192x96 from a diagnosis
built by hand, and the test patterns checked pixel by pixel.

Set SIGNAGE_UPDATE_GOLDEN=1 to rewrite the stored images after a deliberate change, then look
at every changed PNG before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from signage.diag.pages import PAGES, PATTERNS, View, render_page, render_pattern
from signage.layout import Size
from tests.conftest import REPO
from tests.diag.diagkit import fixed_diagnosis

GOLDEN = REPO / "tests" / "golden" / "diag"
UPDATE = os.environ.get("SIGNAGE_UPDATE_GOLDEN") == "1"
# The same tolerance as the slide goldens (tests/compose/test_golden.py).
MEAN_TOLERANCE = 0.6
PIXEL_TOLERANCE = 0.003
SIZES = (Size(1920, 1080), Size(192, 96))
CASES = [(index, size) for size in SIZES for index in range(len(PAGES))]
BOARD = "xa-sa-thay-01"


def _name(case: tuple[int, Size]) -> str:
    index, size = case
    return f"{index + 1}-{PAGES[index][0]}-{size.width}x{size.height}"


def _compare(actual: Image.Image, golden: Path, tmp_path: Path) -> None:
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        actual.save(golden, optimize=True)
        return
    assert golden.exists(), f"no golden image {golden.name}: run with SIGNAGE_UPDATE_GOLDEN=1"
    expected = Image.open(golden).convert("RGB")
    actual = actual.convert("RGB")
    assert actual.size == expected.size
    diff = ImageChops.difference(actual, expected)
    mean = sum(ImageStat.Stat(diff).mean) / 3
    strong = diff.convert("L").point(lambda v: 255 if v > 64 else 0)
    share = ImageStat.Stat(strong).mean[0] / 255
    if mean > MEAN_TOLERANCE or share > PIXEL_TOLERANCE:
        actual.save(tmp_path / "actual.png")
        diff.save(tmp_path / "diff.png")
        pytest.fail(
            f"{golden.name} differs: mean {mean:.3f} (max {MEAN_TOLERANCE}), "
            f"strong pixels {share:.4%} (max {PIXEL_TOLERANCE:.2%}); see {tmp_path}"
        )


@pytest.mark.parametrize("case", CASES, ids=[_name(c) for c in CASES])
def test_page_golden(case: tuple[int, Size], tmp_path: Path) -> None:
    index, size = case
    image = render_page(fixed_diagnosis(), size, View(page=index, pattern=0), BOARD)
    assert image.size == (size.width, size.height) and image.mode == "RGB"
    _compare(image, GOLDEN / f"{_name(case)}.png", tmp_path)


def test_header_shows_the_verdict_colour() -> None:
    size = Size(1920, 1080)
    degraded = render_page(fixed_diagnosis(), size, View(page=1), BOARD)
    healthy = render_page(fixed_diagnosis(healthy=True), size, View(page=1), BOARD)
    # The stripe under the tabs: red when degraded, green when healthy.
    y = next(y for y in range(200) if degraded.getpixel((1900, y)) == (255, 80, 70))
    assert healthy.getpixel((1900, y)) == (60, 200, 110)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s.width}x{s.height}")
def test_page_numbers_wrap_around(size: Size) -> None:
    # The kiosk wraps page numbers; the renderer takes any index the same way.
    diagnosis = fixed_diagnosis()
    for index in (0, 1):
        first = render_page(diagnosis, size, View(page=index), BOARD)
        again = render_page(diagnosis, size, View(page=index + len(PAGES)), BOARD)
        assert ImageChops.difference(first, again).getbbox() is None


def test_font_page_survives_a_broken_font_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from signage.board import slides
    from signage.errors import ErrorCode, FontError

    def broken() -> None:
        raise FontError(ErrorCode.TEXT_FONT_MISSING, "fonts.toml: Be Vietnam Pro not found")

    monkeypatch.setattr(slides, "build_stack", broken)
    fonts = next(i for i, (key, _) in enumerate(PAGES) if key == "fonts")
    image = render_page(fixed_diagnosis(), Size(1920, 1080), View(page=fonts), BOARD)
    # The error is written in red below the header instead of the samples.
    body = image.crop((0, 110, 1920, 180))
    assert (255, 80, 70) in {colour for _, colour in body.getcolors(1 << 16) or []}


# -- the test patterns ----------------------------------------------------------------------------

PATTERN = {key: index for index, (key, _) in enumerate(PATTERNS)}
PATTERN_SIZES = (Size(1920, 1080), Size(192, 96), Size(100, 37))


def _pattern(key: str, size: Size, phase: float = 0.0, label: bool = False) -> Image.Image:
    return render_pattern(size, View(page=6, pattern=PATTERN[key], phase=phase, label=label))


def _row(image: Image.Image, y: int) -> list[tuple[int, int, int]]:
    return [image.getpixel((x, y)) for x in range(image.width)]  # type: ignore[misc]


@pytest.mark.parametrize("size", PATTERN_SIZES, ids=lambda s: f"{s.width}x{s.height}")
def test_colour_bars(size: Size) -> None:
    image = _pattern("bars", size)
    row = _row(image, size.height - 1)
    runs = [row[0]]
    for colour in row[1:]:
        if colour != runs[-1]:
            runs.append(colour)
    # Eight bars, each a different colour, side by side from the left edge to the right one.
    assert runs == [
        (255, 255, 255),
        (255, 255, 0),
        (0, 255, 255),
        (0, 255, 0),
        (255, 0, 255),
        (255, 0, 0),
        (0, 0, 255),
        (0, 0, 0),
    ]
    widths = [row.count(colour) for colour in runs]
    assert max(widths) - min(widths) <= 1
    assert _row(image, 0) == row  # full height


@pytest.mark.parametrize("size", PATTERN_SIZES, ids=lambda s: f"{s.width}x{s.height}")
def test_grey_ramp(size: Size) -> None:
    row = _row(_pattern("ramp", size), size.height // 2)
    assert all(r == g == b for r, g, b in row)
    levels = [r for r, _, _ in row]
    assert levels == sorted(levels)
    assert levels[0] == 0 and levels[-1] == 255
    assert len(set(levels)) == min(32, size.width)


@pytest.mark.parametrize("size", PATTERN_SIZES, ids=lambda s: f"{s.width}x{s.height}")
def test_one_pixel_grid(size: Size) -> None:
    image = _pattern("grid", size)
    white, black = b"\xff\xff\xff", b"\x00\x00\x00"
    lines = white * size.width  # even rows: a white line
    gaps = b"".join(white if x % 2 == 0 else black for x in range(size.width))  # odd rows
    for y in range(size.height):
        row = image.crop((0, y, size.width, y + 1)).tobytes()
        assert row == (lines if y % 2 == 0 else gaps), f"row {y}"


@pytest.mark.parametrize("key", ["red", "green", "blue", "white", "black"])
def test_solid_colours(key: str) -> None:
    colour = {
        "red": (255, 0, 0),
        "green": (0, 255, 0),
        "blue": (0, 0, 255),
        "white": (255, 255, 255),
        "black": (0, 0, 0),
    }[key]
    for size in PATTERN_SIZES:
        image = _pattern(key, size)
        assert image.getcolors() == [(size.width * size.height, colour)]
    for size in SIZES:
        # Named in the top left corner when asked; the rest stays exactly that colour.
        named = _pattern(key, size, label=True)
        corner = ImageChops.difference(named, _pattern(key, size)).getbbox()
        assert corner is not None
        assert corner[2] < size.width * 0.6 and corner[3] < size.height * 0.35


@pytest.mark.parametrize("size", PATTERN_SIZES[:2], ids=lambda s: f"{s.width}x{s.height}")
def test_moving_bar_follows_the_phase(size: Size) -> None:
    def bar(phase: float) -> tuple[int, int]:
        image = _pattern("moving", size, phase=phase)
        white = [x for x, colour in enumerate(_row(image, size.height - 1)) if colour != (0, 0, 0)]
        assert all(image.getpixel((x, size.height - 1)) == (255, 255, 255) for x in white)
        assert _row(image, 0) == _row(image, size.height - 1)
        return white[0], white[-1] + 1

    width = max(2, size.width // 24)
    assert bar(0.0) == (0, width)
    assert bar(1.0) == bar(0.0)  # a whole period later
    middle = bar(0.5)
    assert middle[1] - middle[0] == width
    assert abs((middle[0] + middle[1]) / 2 - size.width / 2) <= 1
    assert size.width - bar(0.9999)[1] <= 1  # the far edge, never beyond
    positions = [bar(phase / 10)[0] for phase in range(10)]
    assert positions == sorted(positions) and len(set(positions)) == 10


def test_patterns_page_is_a_pattern() -> None:
    page = next(i for i, (key, _) in enumerate(PAGES) if key == "patterns")
    size = Size(192, 96)
    view = View(page=page, pattern=PATTERN["ramp"])
    page_image = render_page(fixed_diagnosis(), size, view)
    assert ImageChops.difference(page_image, render_pattern(size, view)).getbbox() is None
