"""Composer behaviour: images (limits, EXIF, broken files), QR, rotation, themes, dates, reports."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import date, datetime
from pathlib import Path

import pytest
from PIL import Image

from signage.board.slides import read_item
from signage.compose import (
    BoardInfo,
    BoxReport,
    Composer,
    Frame,
    folder_assets,
    load_image,
    lunar_label,
    solar_label,
)
from signage.errors import AssetError, ErrorCode
from signage.layout import Size
from signage.model import Item, parse_item
from signage.resources import data_dir

SAMPLES = data_dir("layouts") / "samples"
PLACEHOLDER_GREY = (72, 76, 82)
LANDSCAPE = Size(1920, 1080)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose data is tiny (a bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _render(
    composer: Composer,
    board: BoardInfo,
    now: datetime,
    item: Item,
    folder: Path,
    size: Size = LANDSCAPE,
    rotate: int = 0,
) -> Frame:
    return composer.render(item, size, now, board, folder_assets(folder), rotate)


def _news(folder: Path, image: str) -> Item:
    return parse_item(
        {
            "id": "n1",
            "template": "news-photo",
            "fields": {"title": "Tin ảnh", "image": image, "caption": "Chú thích ảnh."},
        }
    )


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(60000, 60000))
    with pytest.raises(AssetError) as caught:
        load_image(bomb)
    assert caught.value.code is ErrorCode.ASSET_IMAGE_TOO_LARGE
    assert "limit" in caught.value.message


def test_truncated_jpeg_is_broken(tmp_path: Path) -> None:
    data = (SAMPLES / "dong-lua.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(AssetError) as caught:
        load_image(cut)
    assert caught.value.code is ErrorCode.ASSET_IMAGE_BROKEN


def test_not_an_image_is_broken(tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a picture")
    with pytest.raises(AssetError) as caught:
        load_image(fake)
    assert caught.value.code is ErrorCode.ASSET_IMAGE_BROKEN


def test_exif_orientation_is_applied_and_draft_keeps_enough_pixels(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise to show
    path = tmp_path / "side.jpg"
    image.save(path, exif=exif)
    assert load_image(path).size == (20, 40)
    big = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), (10, 120, 10)).save(big, exif=exif)
    # Shown sideways in a 300x400 box: decoding may shrink, but never below the box.
    loaded = load_image(big, at_least=Size(300, 400))
    assert loaded.size[0] >= 300 and loaded.size[1] >= 400
    assert loaded.size[0] < 1200


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "missing.jpg"])
def test_asset_names_stay_inside_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(AssetError) as caught:
        folder_assets(tmp_path)(name)
    assert caught.value.code is ErrorCode.ASSET_MISSING


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"garbage", ErrorCode.ASSET_IMAGE_BROKEN),
        (_png_header_only(60000, 60000), ErrorCode.ASSET_IMAGE_TOO_LARGE),
        (None, ErrorCode.ASSET_MISSING),
    ],
)
def test_bad_image_shows_placeholder_and_reports(
    composer: Composer,
    board: BoardInfo,
    now: datetime,
    tmp_path: Path,
    content: bytes | None,
    code: ErrorCode,
) -> None:
    if content is not None:
        (tmp_path / "photo.jpg").write_bytes(content)
    frame = _render(composer, board, now, _news(tmp_path, "photo.jpg"), tmp_path)
    (image_box,) = [b for b in frame.boxes if b.name == "image"]
    assert [e.code for e in image_box.errors] == [code]
    x, y, _, _ = image_box.rect.as_list()
    assert frame.image.getpixel((x + 3, y + 3)) == PLACEHOLDER_GREY
    # The rest of the slide is still there.
    assert any(b.name == "title" and b.lines for b in frame.boxes)
    report = frame.report()
    assert (
        report["boxes"][[b["name"] for b in report["boxes"]].index("image")]["errors"][0]["code"]
        == code.value
    )


def test_qr_is_drawn_and_too_long_data_is_reported(
    composer: Composer, board: BoardInfo, now: datetime, tmp_path: Path
) -> None:
    def qr_box(link: str) -> tuple[Frame, BoxReport]:
        fields = {"title": "Tiêu đề", "body": "Nội dung.", "link": link}
        item = parse_item({"id": "a", "template": "announcement", "fields": fields})
        frame = _render(composer, board, now, item, tmp_path)
        (box,) = [b for b in frame.boxes if b.kind == "qr"]
        return frame, box

    frame, qr = qr_box("https://example.gov.vn/a")
    assert not qr.errors
    x, y, w, h = qr.rect.as_list()
    colours = {c for _, c in frame.image.crop((x, y, x + w, y + h)).getcolors(1 << 16) or []}
    assert (0, 0, 0) in colours and (255, 255, 255) in colours
    _, qr = qr_box("https://example.gov.vn/" + "x" * 5000)
    assert [e.code for e in qr.errors] == [ErrorCode.ASSET_QR_TOO_LONG]


def test_rotation_turns_the_portrait_layout_clockwise(
    composer: Composer, board: BoardInfo, now: datetime
) -> None:
    item = read_item(SAMPLES / "announcement.json")
    turned = _render(composer, board, now, item, SAMPLES, Size(1920, 1080), rotate=90)
    upright = _render(composer, board, now, item, SAMPLES, Size(1080, 1920))
    assert turned.image.size == (1920, 1080)
    assert turned.scene.variant == "portrait"
    expected = upright.image.transpose(Image.Transpose.ROTATE_270)
    assert turned.image.tobytes() == expected.tobytes()
    upside = _render(composer, board, now, item, SAMPLES, Size(1920, 1080), rotate=180)
    normal = _render(composer, board, now, item, SAMPLES, Size(1920, 1080))
    assert upside.image.tobytes() == normal.image.transpose(Image.Transpose.ROTATE_180).tobytes()


@pytest.mark.parametrize(
    ("severity", "colour"),
    [
        ("Extreme", (0xB0, 0x00, 0x20)),
        ("Severe", (0xC4, 0x3E, 0x00)),
        ("Moderate", (0xFF, 0xB3, 0x00)),
        ("Minor", (0xFF, 0xEB, 0x3B)),
    ],
)
def test_emergency_colour_follows_severity(
    composer: Composer, board: BoardInfo, now: datetime, severity: str, colour: tuple[int, ...]
) -> None:
    item = parse_item(
        {
            "id": "e",
            "template": "emergency",
            "fields": {"headline": "Lũ quét", "description": "Mưa lớn.", "severity": severity},
        }
    )
    frame = _render(composer, board, now, item, SAMPLES)
    width, height = frame.image.size
    assert frame.image.getpixel((width - 5, height // 2)) == colour


def test_clock_and_header_show_vietnamese_dates(
    composer: Composer, board: BoardInfo, now: datetime
) -> None:
    frame = _render(composer, board, now, read_item(SAMPLES / "clock.json"), SAMPLES)
    (clock,) = [b for b in frame.boxes if b.kind == "clock"]
    assert [line.text for line in clock.lines] == [
        "08:30",
        "Thứ Bảy, 21/11/2026",
        "Âm lịch 13/10 Bính Ngọ",
    ]
    assert not clock.truncated
    frame = _render(composer, board, now, read_item(SAMPLES / "announcement.json"), SAMPLES)
    texts = {b.name: " ".join(line.text for line in b.lines) for b in frame.boxes}
    assert texts["board"] == "UBND xã Sa Thầy"
    assert texts["date"] == "Thứ Bảy, 21/11/2026"


def test_date_labels() -> None:
    tz_now = datetime(2026, 2, 17, 9, 0)
    assert solar_label(tz_now) == "Thứ Ba, 17/02/2026"
    assert lunar_label(tz_now) == "Âm lịch 1/1 Bính Ngọ"
    assert solar_label(datetime.combine(date(2026, 11, 22), datetime.min.time())).startswith(
        "Chủ Nhật"
    )


def test_ticker_box_reports_the_whole_text(
    composer: Composer, board: BoardInfo, now: datetime
) -> None:
    item = read_item(SAMPLES / "announcement.json")
    frame = _render(composer, board, now, item, SAMPLES)
    (ticker,) = [b for b in frame.boxes if b.kind == "ticker"]
    assert "".join(line.text for line in ticker.lines) == item.fields["ticker"]
    assert not ticker.truncated


def test_png_roundtrip_of_a_frame(composer: Composer, board: BoardInfo, now: datetime) -> None:
    frame = _render(
        composer, board, now, read_item(SAMPLES / "text-only.json"), SAMPLES, Size(3840, 2160)
    )
    buffer = io.BytesIO()
    frame.image.save(buffer, format="PNG")
    assert Image.open(buffer).size == (3840, 2160)
