"""Scene + item fields + assets + time -> RGB image and a report of what was drawn.

The composer never raises for bad content inside a valid item: a broken or missing image shows a
neutral placeholder, a character no font has shows a missing-glyph box, and the report carries
each error with its stable code. Invalid items and unknown templates are refused before drawing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from math import ceil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import segno
from PIL import Image, ImageColor, ImageDraw

from signage.compose.calendar import lunar_label, moment_label, solar_label, time_label
from signage.compose.images import (
    DEFAULT_MAX_PIXELS,
    AssetResolver,
    fit_image,
    load_image,
    placeholder,
)
from signage.errors import AssetError, ErrorCode, SignageError, UsageError
from signage.layout import Background, LayoutLibrary, PlacedBox, Rect, Scene, Size
from signage.lru import LRU
from signage.model import DEFAULT_TIMEZONE, FieldValue, Item
from signage.text import TextBlock, TextStyle, Typesetter

SEVERITY_LABELS = {
    "Extreme": "CỰC KỲ NGUY HIỂM",
    "Severe": "NGUY HIỂM",
    "Moderate": "CẢNH BÁO",
    "Minor": "LƯU Ý",
}
TICKER_SEPARATOR = "      "  # a wide gap: the strip adds no characters of its own
_IMAGE_CACHE_SIZE = 48
_TICKER_SPEED = 2.5  # font sizes per second: about three characters a second at any size


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What the composer needs to know about the board: its name, time zone and logo."""

    name: str = "Bảng tin điện tử công cộng"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    logo: Path | None = None


@dataclass(frozen=True, slots=True)
class LineReport:
    """One drawn line: its text, width in px and font runs."""

    text: str
    width: float
    runs: tuple[tuple[str, str, int], ...]  # (text, absolute font file, size px)

    def as_dict(self) -> dict[str, Any]:
        """Return the line as the JSON the render report uses."""
        return {
            "text": self.text,
            "width": round(self.width, 2),
            "runs": [{"text": t, "font_file": f, "font_size": s} for t, f, s in self.runs],
        }


@dataclass(frozen=True, slots=True)
class BoxReport:
    """What one box drew: its rect, whether text was cut, its errors and lines."""

    name: str
    kind: str
    rect: Rect
    truncated: bool
    errors: tuple[SignageError, ...]
    lines: tuple[LineReport, ...]
    font_size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the box as the JSON the render report uses."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "rect": self.rect.as_list(),
            "truncated": self.truncated,
            "errors": [e.as_dict() for e in self.errors],
            "lines": [line.as_dict() for line in self.lines],
        }
        if self.font_size is not None:
            out["font_size"] = self.font_size
        return out


@dataclass(frozen=True, slots=True)
class TickerLayer:
    """What the display needs to scroll a ticker box: the strip without its text, the whole line
    as an RGBA image, where it goes, and how fast it moves.

    ``rect`` is in content coordinates (before rotation); ``key`` is the same for the same text
    and style, so the display keeps scrolling without a restart when the next slide has it too.
    """

    key: tuple[object, ...]
    rect: Rect
    backdrop: Image.Image
    line: Image.Image
    speed: float  # px per second


@dataclass(frozen=True, slots=True)
class Frame:
    """A composed slide: the image at the output size and the report of its boxes."""

    image: Image.Image
    scene: Scene
    rotate: int
    boxes: tuple[BoxReport, ...]
    tickers: tuple[TickerLayer, ...] = ()

    @property
    def errors(self) -> list[SignageError]:
        """Return every error of every box."""
        return [e for box in self.boxes for e in box.errors]

    def report(self) -> dict[str, Any]:
        """Return the render report as JSON-ready data (see docs/layouts.md, "Render report")."""
        return {
            "size": list(self.image.size),
            "content_size": [self.scene.size.width, self.scene.size.height],
            "rotate": self.rotate,
            "template": self.scene.template,
            "variant": self.scene.variant,
            "boxes": [box.as_dict() for box in self.boxes],
        }


class Composer:
    """Turns items into slides with a typesetter and a layout library.

    Keeps bounded caches of decoded, scaled images, gradients and QR codes so a slide that is
    shown again composes quickly. Safe to call from a small thread pool.
    """

    def __init__(
        self,
        typesetter: Typesetter,
        library: LayoutLibrary,
        *,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.typesetter = typesetter
        self.library = library
        self.max_image_pixels = max_image_pixels
        self._images: LRU[Image.Image] = LRU(_IMAGE_CACHE_SIZE)

    def render(
        self,
        item: Item,
        size: Size,
        now: datetime,
        board: BoardInfo,
        assets: AssetResolver,
        rotate: int = 0,
        layers: bool = False,
    ) -> Frame:
        """Return ``item`` composed for a ``size`` screen turned ``rotate`` degrees clockwise.

        Raises LayoutError for an unknown template, ContentError when the item's fields do not
        suit the template and UsageError for a rotation other than 0/90/180/270. Asset and glyph
        problems do not raise: they are in the frame's report.
        """
        if rotate not in _TRANSPOSE and rotate != 0:
            raise UsageError(ErrorCode.USAGE, f"rotation must be 0, 90, 180 or 270 (got {rotate})")
        template = self.library.get(item.template)
        template.check(item.fields)
        has = frozenset({"logo"}) if board.logo is not None else frozenset()
        scene = self.library.lay_out(item.template, size.rotated(rotate), item.fields, has)
        return self.draw(scene, item.fields, now, board, assets, rotate, layers)

    def draw(
        self,
        scene: Scene,
        fields: Mapping[str, FieldValue],
        now: datetime,
        board: BoardInfo,
        assets: AssetResolver,
        rotate: int = 0,
        layers: bool = False,
    ) -> Frame:
        """Return ``scene`` drawn with ``fields`` at time ``now`` (see :meth:`render`).

        With ``layers``, every scrolling line also comes as a :class:`TickerLayer` for the display.
        """
        local = now.astimezone(board.tz)
        image = Image.new("RGB", (scene.size.width, scene.size.height))
        reports: list[BoxReport] = []
        for fill in scene.fills:
            error = self._fill(image, fill.rect, fill.background, fields, assets)
            if error is not None:
                reports.append(BoxReport("background", "image", fill.rect, False, (error,), ()))
        draw = ImageDraw.Draw(image)
        tickers: list[TickerLayer] | None = [] if layers else None
        for box in scene.boxes:
            if box.style.fill is not None:
                draw.rectangle(_pil_box(box.rect), fill=box.style.fill)
            report = self._box(image, draw, box, fields, local, board, assets, tickers)
            if report is not None:
                reports.append(report)
        if rotate:
            image = image.transpose(_TRANSPOSE[rotate])
        return Frame(image, scene, rotate, tuple(reports), tuple(tickers or ()))

    # -- backgrounds ------------------------------------------------------------------------

    def _fill(
        self,
        image: Image.Image,
        rect: Rect,
        bg: Background,
        fields: Mapping[str, FieldValue],
        assets: AssetResolver,
    ) -> SignageError | None:
        if rect.width <= 0 or rect.height <= 0:
            return None
        if bg.color is not None:
            image.paste(ImageColor.getrgb(bg.color), _pil_box(rect))
        if bg.gradient is not None:
            image.paste(self._gradient(rect.size, bg.gradient, bg.vertical), (rect.x, rect.y))
        if bg.image_field is not None:
            name = fields.get(bg.image_field)
            if isinstance(name, str) and name:
                try:
                    picture = self._picture(assets(name), rect.size, "cover")
                except AssetError as exc:
                    return exc
                if bg.dim > 0:
                    shade = Image.new("RGB", picture.size, (0, 0, 0))
                    picture = Image.blend(picture.convert("RGB"), shade, bg.dim)
                image.paste(picture, (rect.x, rect.y))
        return None

    def _gradient(self, size: Size, colours: tuple[str, str], vertical: bool) -> Image.Image:
        key = ("gradient", size, colours, vertical)
        cached = self._images.get(key)
        if cached is not None:
            return cached
        ramp = Image.linear_gradient("L")  # 256x256, black at the top to white at the bottom
        if not vertical:
            ramp = ramp.transpose(Image.Transpose.ROTATE_90).transpose(
                Image.Transpose.FLIP_LEFT_RIGHT
            )
        mask = ramp.resize((size.width, size.height), Image.Resampling.BILINEAR)
        start = Image.new("RGB", mask.size, ImageColor.getrgb(colours[0]))
        end = Image.new("RGB", mask.size, ImageColor.getrgb(colours[1]))
        result = Image.composite(end, start, mask)
        self._images.put(key, result)
        return result

    def _picture(self, path: Path, size: Size, fit: Any) -> Image.Image:
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError as exc:
            raise AssetError(
                ErrorCode.ASSET_MISSING, "asset file not found", path=path.name
            ) from exc
        key = ("picture", path, stamp, size, fit)
        cached = self._images.get(key)
        if cached is None:
            cached = fit_image(load_image(path, self.max_image_pixels, size), size, fit)
            self._images.put(key, cached)
        return cached

    # -- boxes ------------------------------------------------------------------------------

    def _box(
        self,
        image: Image.Image,
        draw: ImageDraw.ImageDraw,
        box: PlacedBox,
        fields: Mapping[str, FieldValue],
        local: datetime,
        board: BoardInfo,
        assets: AssetResolver,
        tickers: list[TickerLayer] | None,
    ) -> BoxReport | None:
        inner = box.rect.inset(box.style.padding)
        if inner.width <= 0 or inner.height <= 0:
            return None
        if box.kind in ("text", "banner"):
            text = self._text_of(box, fields, local, board)
            if not text.strip():
                return None
            block = self.typesetter.fit(text, box.style.text, inner.width, inner.height)
            if block.truncated and box.style.overflow == "ticker":
                # Too long to stand still: the board scrolls it rather than cut it.
                block = self.ticker_block(text, box.style.text, inner.height)
                self._ticker_layer(image, block, inner, box, tickers)
                self._draw_block(draw, block, inner, box, clip=image)
                return self._report(box, [block], kind="ticker")
            self._draw_block(draw, block, inner, box)
            return self._report(box, [block])
        if box.kind == "ticker":
            text = self._text_of(box, fields, local, board)
            if not text.strip():
                return None
            block = self.ticker_block(text, box.style.text, inner.height)
            self._ticker_layer(image, block, inner, box, tickers)
            self._draw_block(draw, block, inner, box, clip=image)
            return self._report(box, [block])
        if box.kind == "clock":
            return self._clock(draw, box, inner, local)
        if box.kind in ("image", "logo"):
            return self._image_box(image, box, inner, fields, board, assets)
        if box.kind == "qr":
            return self._qr(image, box, inner, fields, local, board)
        return None

    def _text_of(
        self, box: PlacedBox, fields: Mapping[str, FieldValue], local: datetime, board: BoardInfo
    ) -> str:
        if box.field is not None:
            value = fields.get(box.field)
            return "" if value is None else str(value)
        return (box.text or "").format_map(_Placeholders(fields, local, board))

    def ticker_block(self, text: str, style: TextStyle, height: int) -> TextBlock:
        """Return ``text`` set on one unbroken line sized to a strip ``height`` px tall.

        Line breaks in the text become a wide gap; nothing is truncated (the strip
        scrolls on the board).
        """
        one_line = TICKER_SEPARATOR.join(p.strip() for p in text.splitlines() if p.strip())
        unwrapped = TextStyle(
            family=style.family,
            weight=style.weight,
            min_size=style.min_size,
            max_size=style.max_size,
            max_lines=1,
            line_spacing=1.0,
            wrap=False,
        )
        return self.typesetter.fit(one_line, unwrapped, 10**7, height)

    def _ticker_layer(
        self,
        image: Image.Image,
        block: TextBlock,
        rect: Rect,
        box: PlacedBox,
        tickers: list[TickerLayer] | None,
    ) -> None:
        if tickers is None:
            return
        # Only the band the text occupies scrolls: a tall strip (a full-screen ticker) would
        # otherwise cost megabytes per pass of the text and a large redraw every frame.
        top = (rect.height - block.height) // 2 if box.style.valign == "middle" else 0
        margin = max(2, block.size // 10)
        band_top = max(0, top - margin)
        band = Rect(
            rect.x,
            rect.y + band_top,
            rect.width,
            min(rect.height - band_top, block.height + 2 * margin),
        )
        backdrop = image.crop(band.as_box())  # before the static text is drawn over it
        gap = max(band.height, block.size * 3)  # blank run between two passes of the text
        width = max(1, ceil(block.width) + gap)
        line = Image.new("RGBA", (width, band.height), (0, 0, 0, 0))
        self.typesetter.draw(
            ImageDraw.Draw(line), block, (0, top - band_top), width, box.style.color
        )
        key = (block.lines[0].text if block.lines else "", block.size, box.style.color, band.size)
        speed = _TICKER_SPEED * block.size
        tickers.append(TickerLayer(key, band, backdrop, line, speed))

    def _draw_block(
        self,
        draw: ImageDraw.ImageDraw,
        block: TextBlock,
        rect: Rect,
        box: PlacedBox,
        clip: Image.Image | None = None,
    ) -> None:
        if box.style.valign == "middle":
            top = rect.y + (rect.height - block.height) // 2
        elif box.style.valign == "bottom":
            top = rect.bottom - block.height
        else:
            top = rect.y
        if clip is None:
            self.typesetter.draw(
                draw, block, (rect.x, top), rect.width, box.style.color, box.style.align
            )
            return
        # A ticker's line runs past its strip: draw it on a strip-sized layer, then paste.
        layer = clip.crop(rect.as_box())
        layer_draw = ImageDraw.Draw(layer)
        align = box.style.align if block.width <= rect.width else "left"
        self.typesetter.draw(
            layer_draw, block, (0, top - rect.y), rect.width, box.style.color, align
        )
        clip.paste(layer, (rect.x, rect.y))

    def _clock(
        self, draw: ImageDraw.ImageDraw, box: PlacedBox, inner: Rect, local: datetime
    ) -> BoxReport:
        parts = {
            "time": (time_label(local), 2.2),
            "date": (solar_label(local), 1.0),
            "lunar": (lunar_label(local), 0.8),
        }
        shown = [parts[name] for name in box.style.show if name in parts]
        total = sum(weight for _, weight in shown) or 1.0
        blocks: list[TextBlock] = []
        top = inner.y
        for index, (text, weight) in enumerate(shown):
            height = round(inner.height * weight / total)
            if index == len(shown) - 1:
                height = inner.bottom - top
            style = box.style.text
            sized = TextStyle(
                family=style.family,
                weight=style.weight if index == 0 else max(400, style.weight - 200),
                min_size=max(8, round(style.min_size * weight / shown[0][1])),
                max_size=max(8, round(style.max_size * weight / shown[0][1])),
                max_lines=1,
                line_spacing=1.0,
            )
            block = self.typesetter.fit(text, sized, inner.width, height)
            part = Rect(inner.x, top, inner.width, height)
            self._draw_block(draw, block, part, box)
            blocks.append(block)
            top += height
        return self._report(box, blocks)

    def _image_box(
        self,
        image: Image.Image,
        box: PlacedBox,
        inner: Rect,
        fields: Mapping[str, FieldValue],
        board: BoardInfo,
        assets: AssetResolver,
    ) -> BoxReport | None:
        try:
            if box.kind == "logo":
                if board.logo is None:
                    return None
                path = board.logo
            else:
                name = fields.get(box.field) if box.field else box.text
                if not isinstance(name, str) or not name:
                    return None
                path = assets(name)
            picture = self._picture(path, inner.size, box.style.fit)
        except AssetError as exc:
            image.paste(placeholder(inner.size), (inner.x, inner.y))
            return BoxReport(box.name, box.kind, box.rect, False, (exc,), ())
        x = inner.x + (inner.width - picture.width) // 2
        y = inner.y + (inner.height - picture.height) // 2
        if picture.mode == "RGBA":
            image.paste(picture, (x, y), picture)
        else:
            image.paste(picture, (x, y))
        return BoxReport(box.name, box.kind, box.rect, False, (), ())

    def _qr(
        self,
        image: Image.Image,
        box: PlacedBox,
        inner: Rect,
        fields: Mapping[str, FieldValue],
        local: datetime,
        board: BoardInfo,
    ) -> BoxReport | None:
        data = self._text_of(box, fields, local, board)
        if not data:
            return None
        side = min(inner.width, inner.height)
        key = ("qr", data, side)
        code = self._images.get(key)
        if code is None:
            try:
                qr = segno.make(data, error="m", micro=False)
            except (segno.DataOverflowError, ValueError) as exc:
                error = AssetError(
                    ErrorCode.ASSET_QR_TOO_LONG, f"cannot encode QR code: {exc}", path=box.field
                )
                image.paste(placeholder(Size(side, side)), (inner.x, inner.y))
                return BoxReport(box.name, box.kind, box.rect, False, (error,), ())
            rows = [list(row) for row in qr.matrix_iter(scale=1, border=2)]
            modules = len(rows)
            code = Image.new("1", (modules, modules), 1)
            code.putdata([0 if cell else 1 for row in rows for cell in row])
            scale = max(1, side // modules)
            code = code.resize((modules * scale, modules * scale), Image.Resampling.NEAREST)
            code = code.convert("RGB")
            self._images.put(key, code)
        x = inner.x + (inner.width - code.width) // 2
        y = inner.y + (inner.height - code.height) // 2
        image.paste(code, (x, y))
        return BoxReport(box.name, box.kind, box.rect, False, (), ())

    def _report(
        self, box: PlacedBox, blocks: list[TextBlock], kind: str | None = None
    ) -> BoxReport:
        lines = tuple(
            LineReport(
                line.text,
                line.width,
                tuple((r.text, str(r.face.path), r.size) for r in line.runs),
            )
            for block in blocks
            for line in block.lines
        )
        errors = tuple(e for block in blocks for e in block.errors())
        truncated = any(block.truncated for block in blocks)
        size = blocks[0].size if blocks else None
        return BoxReport(box.name, kind or box.kind, box.rect, truncated, errors, lines, size)


class _Placeholders(dict[str, str]):
    """Values for ``{name}`` in a box's fixed text; unknown names stay as written."""

    def __init__(self, fields: Mapping[str, FieldValue], local: datetime, board: BoardInfo) -> None:
        super().__init__()
        self.fields = fields
        self.local = local
        self.board = board

    def __missing__(self, key: str) -> str:
        if key == "board_name":
            return self.board.name
        if key == "date":
            return solar_label(self.local)
        if key == "time":
            return time_label(self.local)
        if key == "lunar":
            return lunar_label(self.local)
        if key == "severity_label":
            return SEVERITY_LABELS.get(str(self.fields.get("severity", "")), "KHẨN CẤP")
        if key == "expires":
            value = self.fields.get("expires")
            if isinstance(value, str) and value:
                moment = datetime.fromisoformat(value).astimezone(self.board.tz)
                return f"Hiệu lực đến {moment_label(moment)}"
            return ""
        value = self.fields.get(key)
        return "" if value is None else str(value)


def _pil_box(rect: Rect) -> tuple[int, int, int, int]:
    return (rect.x, rect.y, rect.right - 1, rect.bottom - 1)


_TRANSPOSE = {
    90: Image.Transpose.ROTATE_270,  # Pillow turns counter-clockwise; boards count clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
