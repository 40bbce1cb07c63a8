"""The diagnostics pages as images, in Vietnamese: one per report section, test patterns for
LED and LCD checks, a font test, and the log tail. Pure: a diagnosis and a size in, a Pillow
image out; the same pages serve a 1920x1080 LCD and a 192x96 LED wall.

Text is drawn with the board's default font file directly (not the font registry), so the
pages still work when the registry or RAQM is broken: that is when a technician needs them.
"""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

from signage.diag.report import FAIL, INFO, OK, SECTIONS, WARN, Diagnosis, Row
from signage.layout import Size

# (key, title) of every page, in the order of the number keys.
PAGES = (
    *SECTIONS[:6],
    ("patterns", "Mẫu kiểm tra"),
    ("fonts", "Phông chữ"),
    ("log", "Nhật ký"),
)
PATTERNS = (
    ("bars", "Sọc màu"),
    ("ramp", "Thang xám"),
    ("grid", "Lưới 1 điểm ảnh"),
    ("red", "Đỏ"),
    ("green", "Xanh lá"),
    ("blue", "Xanh dương"),
    ("white", "Trắng"),
    ("black", "Đen"),
    ("moving", "Vạch chạy"),
)
ALPHABET = "AĂÂBCDĐEÊGHIKLMNOÔƠPQRSTUƯVXY aăâbcdđeêghiklmnoôơpqrstuưvxy"
TONES = (
    "a à á ả ã ạ ă ằ ắ ẳ ẵ ặ â ầ ấ ẩ ẫ ậ e è é ẻ ẽ ẹ ê ề ế ể ễ ệ i ì í ỉ ĩ ị",
    "o ò ó ỏ õ ọ ô ồ ố ổ ỗ ộ ơ ờ ớ ở ỡ ợ u ù ú ủ ũ ụ ư ừ ứ ử ữ ự y ỳ ý ỷ ỹ ỵ",
    "ẦẤẨẪẬ ẰẮẲẴẶ ỀẾỂỄỆ ỒỐỔỖỘ ỜỚỞỠỢ ỪỨỬỮỰ ỲÝỶỸỴ Đ",
)
MINORITY = "ĕ ŏ ŭ ĭ Ĕ Ŏ Ŭ Ĭ ơ̆ ư̆ ƀ Ƀ č š ñ ç"  # Ba Na, Ê Đê, Jrai, Cơ Tu, Mường ...
OTHER_SCRIPTS = "Khmer: សេចក្តីជូនដំណឹង"  # through the fallback chain

_BACKGROUND = (14, 22, 38)
_HEADER = (25, 55, 110)
_TEXT = (235, 238, 243)
_MUTED = (150, 162, 180)
_COLOURS = {OK: (60, 200, 110), INFO: (150, 162, 180), WARN: (255, 190, 40), FAIL: (255, 80, 70)}
_BARS = (
    (255, 255, 255),
    (255, 255, 0),
    (0, 255, 255),
    (0, 255, 0),
    (255, 0, 255),
    (255, 0, 0),
    (0, 0, 255),
    (0, 0, 0),
)
_SOLID = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}


@dataclass(frozen=True, slots=True)
class View:
    """Which page to draw: its index in PAGES, the pattern, the moment (for the moving bar)."""

    page: int = 0
    pattern: int = 0
    phase: float = 0.0  # 0..1: where the moving bar is
    label: bool = True  # name the pattern on it


@lru_cache(maxsize=1)
def _font_files() -> tuple[Path | None, Path | None]:
    with contextlib.suppress(ModuleNotFoundError, FileNotFoundError):
        folder = importlib.resources.files("fontpkg_be_vietnam_pro") / "files"
        regular = Path(str(folder / "BeVietnamPro-Regular.ttf"))
        bold = Path(str(folder / "BeVietnamPro-SemiBold.ttf"))
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None, None


@lru_cache(maxsize=64)
def _font(size: int, bold: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    regular, semibold = _font_files()
    path = semibold if bold else regular
    if path is None:
        return ImageFont.load_default(size)
    # With RAQM, marks are placed by shaping; without it, NFC text still draws from the
    # font's precomposed letters, which cover Vietnamese.
    layout = ImageFont.Layout.RAQM if features.check_feature("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=layout)


class _Pen:
    """Draws lines of text on a page, top to bottom, clipped to the page."""

    def __init__(self, image: Image.Image, scale: float) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.size = max(9, round(30 * scale))
        self.margin = max(2, round(40 * scale))
        self.y = 0

    def text(
        self,
        x: int,
        y: int,
        text: str,
        size: int,
        fill: tuple[int, int, int],
        bold: bool = False,
        width: int | None = None,
    ) -> int:
        """Draw ``text`` at (x, y) (top), cut to ``width`` px; return its width."""
        font = _font(size, bold)
        if width is not None:
            text = _fit(text, font, width)
        self.draw.text((x, y), text, font=font, fill=fill)
        return round(self.draw.textlength(text, font=font))

    def line_height(self, size: int) -> int:
        return round(size * 1.45)


def _fit(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    if ImageDraw.Draw(Image.new("1", (1, 1))).textlength(text, font=font) <= width:
        return text
    while text and ImageDraw.Draw(Image.new("1", (1, 1))).textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render_page(diagnosis: Diagnosis, size: Size, view: View, board: str = "") -> Image.Image:
    """Return page ``view.page`` of ``diagnosis`` at ``size``."""
    page = view.page % len(PAGES)
    key = PAGES[page][0]
    if key == "patterns":
        return render_pattern(size, view)
    image = Image.new("RGB", (size.width, size.height), _BACKGROUND)
    scale = min(size.width / 1920, size.height / 1080)
    pen = _Pen(image, scale)
    small = size.height < 300
    top = _header(pen, size, page, diagnosis, board, small)
    body: Callable[[_Pen, Size, int, Diagnosis, bool], None]
    body = {"fonts": _fonts_page, "log": _log_page, "overview": _overview_page}.get(key, _rows_page)
    bottom = size.height if small else size.height - pen.line_height(pen.size) - pen.margin // 2
    pen.y = top
    body(pen, Size(size.width, bottom), page, diagnosis, small)
    if not small:
        hint = (
            "Mũi tên trái/phải: đổi trang · 1-9: chọn trang · lên/xuống: đổi mẫu"
            " · R: kiểm tra mạng · F12: đóng"
        )
        pen.text(pen.margin, bottom, hint, round(pen.size * 0.75), _MUTED)
    return image


def _header(pen: _Pen, size: Size, page: int, diagnosis: Diagnosis, board: str, small: bool) -> int:
    colour = _COLOURS[OK] if diagnosis.healthy else _COLOURS[FAIL]
    if small:
        height = pen.line_height(pen.size)
        pen.draw.rectangle((0, 0, size.width, height), fill=_HEADER)
        pen.draw.rectangle((0, 0, 3, height), fill=colour)
        title = f"{page + 1}/{len(PAGES)} {PAGES[page][1]}"
        pen.text(5, 1, title, pen.size, _TEXT, bold=True, width=size.width - 6)
        return height + 1
    height = round(pen.size * 3.6)
    pen.draw.rectangle((0, 0, size.width, height), fill=_HEADER)
    pen.draw.rectangle((0, height - 6, size.width, height), fill=colour)
    title = f"CHẨN ĐOÁN BẢNG TIN · {board}" if board else "CHẨN ĐOÁN BẢNG TIN"
    pen.text(pen.margin, round(pen.size * 0.3), title, round(pen.size * 1.1), _TEXT, bold=True)
    x = pen.margin
    tab_size = round(pen.size * 0.8)
    y = round(pen.size * 1.9)
    for index, (_, name) in enumerate(PAGES):
        label = f"{index + 1} {name}"
        width = round(pen.draw.textlength(label, font=_font(tab_size, index == page)))
        if index == page:
            pen.draw.rounded_rectangle(
                (x - 8, y - 4, x + width + 8, y + round(tab_size * 1.35)),
                radius=6,
                fill=(240, 244, 250),
            )
        pen.text(x, y, label, tab_size, _HEADER if index == page else _TEXT, bold=index == page)
        x += width + round(tab_size * 1.4)
    return height + pen.margin // 2


def _rows_page(pen: _Pen, size: Size, page: int, diagnosis: Diagnosis, small: bool) -> None:
    rows = diagnosis.sections.get(PAGES[page][0], [])
    _rows(pen, size, rows, small)


def _rows(pen: _Pen, size: Size, rows: Sequence[Row], small: bool) -> None:
    if small:
        # A few lines fit on an LED wall: what is wrong first, then the rest in order.
        rank = {FAIL: 0, WARN: 1}
        rows = sorted(rows, key=lambda row: rank.get(row.level, 2))
    font_size = pen.size
    step = pen.line_height(font_size)
    label_width = min(
        round(size.width * 0.42),
        max(
            (round(pen.draw.textlength(r.label, font=_font(font_size, False))) for r in rows),
            default=0,
        )
        + pen.margin,
    )
    x0 = pen.margin if not small else 3
    dot = max(2, font_size // 3)
    for row in rows:
        if pen.y + step > size.height:
            break
        colour = _COLOURS.get(row.level, _MUTED)
        centre = pen.y + round(font_size * 0.62)
        pen.draw.ellipse((x0, centre - dot, x0 + 2 * dot, centre + dot), fill=colour)
        x = x0 + 3 * dot
        if small:
            # A small LED wall: one short line per fact, in the state's colour.
            pen.text(x, pen.y, f"{row.label}: {row.value}", font_size, colour, width=size.width - x)
        else:
            pen.text(x, pen.y, row.label, font_size, _MUTED, width=label_width - pen.margin // 2)
            value_colour = _TEXT if row.level in (OK, INFO) else colour
            pen.text(x + label_width, pen.y, row.value, font_size, value_colour,
                     width=size.width - x - label_width - pen.margin)  # fmt: skip
        pen.y += step


def _overview_page(pen: _Pen, size: Size, page: int, diagnosis: Diagnosis, small: bool) -> None:
    verdict = "TỐT: bảng tin hoạt động bình thường" if diagnosis.healthy else "CÓ VẤN ĐỀ"
    colour = _COLOURS[OK] if diagnosis.healthy else _COLOURS[FAIL]
    x0 = pen.margin if not small else 3
    big = round(pen.size * (1.0 if small else 1.3))
    pen.text(x0, pen.y, verdict, big, colour, bold=True, width=size.width - 2 * x0)
    pen.y += pen.line_height(big)
    for finding in diagnosis.findings:
        if pen.y + pen.line_height(pen.size) > size.height:
            return
        text = finding.message if not small else finding.code
        pen.text(
            x0, pen.y, f"• {text}", pen.size, _COLOURS[finding.level], width=size.width - 2 * x0
        )
        pen.y += pen.line_height(pen.size)
    pen.y += pen.margin // 3
    _rows(pen, size, diagnosis.sections.get("overview", []), small)


def _log_page(pen: _Pen, size: Size, page: int, diagnosis: Diagnosis, small: bool) -> None:
    font_size = max(9, round(pen.size * 0.62))
    step = pen.line_height(font_size)
    x0 = pen.margin if not small else 3
    fitting = max(1, (size.height - pen.y) // step)
    lines = diagnosis.log[-fitting:] or ["(chưa có nhật ký)"]
    for line in lines:
        pen.text(x0, pen.y, line, font_size, _TEXT, width=size.width - 2 * x0)
        pen.y += step


def _fonts_page(pen: _Pen, size: Size, page: int, diagnosis: Diagnosis, small: bool) -> None:
    x0 = pen.margin if not small else 3
    samples = [ALPHABET, *TONES, MINORITY, OTHER_SCRIPTS]
    try:
        from signage.board.slides import build_stack

        typesetter = build_stack().composer.typesetter
    except Exception as exc:  # the page says what is wrong instead of failing
        pen.text(x0, pen.y, f"Không nạp được phông chữ: {exc}", pen.size, _COLOURS[FAIL],
                 width=size.width - 2 * x0)  # fmt: skip
        return
    families = diagnosis.fonts or [typesetter.registry.default_family]
    font_size = max(9, round(pen.size * (0.9 if not small else 1.0)))
    for family in families:
        if pen.y + pen.line_height(font_size) > size.height:
            return
        face = typesetter.registry.face(family)
        vietnamese = samples[:-1]  # the other script comes from the fallback by design
        missing = sorted({c for s in vietnamese for c in s if c != " " and not face.covers(c)})
        note = f" (thiếu {len(missing)} ký tự: lấy từ phông dự phòng)" if missing else " (đủ)"
        pen.text(x0, pen.y, family + ("" if small else note), round(font_size * 0.8),
                 _COLOURS[WARN] if missing else _COLOURS[OK], bold=True,
                 width=size.width - 2 * x0)  # fmt: skip
        pen.y += pen.line_height(round(font_size * 0.8))
        for sample in samples if not small else samples[:1]:
            if pen.y + pen.line_height(font_size) > size.height:
                return
            line = typesetter.line(sample, family, 400, font_size)
            x = float(x0)
            for run in line.runs:
                font = typesetter.registry.font(run.face, run.size)
                pen.draw.text((x, pen.y + font_size), run.text, font=font, fill=_TEXT, anchor="ls")
                x += run.width
            pen.y += pen.line_height(font_size)
        pen.y += pen.margin // 3


def render_pattern(size: Size, view: View) -> Image.Image:
    """Return test pattern ``view.pattern`` at ``size`` (named on it when ``view.label``)."""
    key, name = PATTERNS[view.pattern % len(PATTERNS)]
    width, height = size.width, size.height
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    if key == "bars":
        for index, colour in enumerate(_BARS):
            draw.rectangle(
                (index * width // 8, 0, (index + 1) * width // 8 - 1, height), fill=colour
            )
    elif key == "ramp":
        steps = min(32, width)
        for index in range(steps):
            level = round(255 * index / (steps - 1))
            draw.rectangle(
                (index * width // steps, 0, (index + 1) * width // steps - 1, height),
                fill=(level, level, level),
            )
    elif key == "grid":
        for x in range(0, width, 2):
            draw.line((x, 0, x, height), fill=(255, 255, 255))
        for y in range(0, height, 2):
            draw.line((0, y, width, y), fill=(255, 255, 255))
    elif key == "moving":
        bar = max(2, width // 24)
        x = round((width - bar) * (view.phase % 1.0))
        draw.rectangle((x, 0, x + bar - 1, height), fill=(255, 255, 255))
    else:
        draw.rectangle((0, 0, width, height), fill=_SOLID[key])
    if view.label:
        scale = min(width / 1920, height / 1080)
        font_size = max(9, round(26 * scale))
        label = f"{view.pattern + 1}/{len(PATTERNS)} {name}"
        font = _font(font_size, True)
        box = draw.textbbox((0, 0), label, font=font)
        pad = max(2, font_size // 3)
        draw.rectangle((0, 0, box[2] + 2 * pad, box[3] + 2 * pad), fill=(0, 0, 0))
        draw.text((pad, pad), label, font=font, fill=(255, 255, 255))
    return image
