"""Layout templates: the shipped ones, variant choice, geometry at every board size, rotation,
item checks and the errors a malformed template gets."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from signage.board.slides import read_item
from signage.compose import BoardInfo, Composer, folder_assets
from signage.errors import ContentError, ErrorCode, LayoutError
from signage.layout import LayoutLibrary, PlacedBox, Rect, Scene, Size, parse_template
from signage.model import FieldValue, Item
from signage.resources import data_dir
from tests.conftest import SAMPLES

LAYOUTS = data_dir("layouts")
TEMPLATE_FILES = sorted(LAYOUTS.glob("*.json"))
SAMPLE_FILES = sorted(SAMPLES.glob("*.json"))

SIZES = [
    Size(192, 96),
    Size(320, 160),
    Size(640, 320),
    Size(1280, 720),
    Size(1920, 1080),
    Size(1080, 1920),
    Size(3840, 2160),
    Size(2160, 3840),
]

# (type, required) of the fields each template must read, from the issue and docs/layouts.md.
EXPECTED_FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "announcement": {"title": ("text", True), "body": ("text", True)},
    "news-photo": {"title": ("text", True), "image": ("image", True), "caption": ("text", True)},
    "fullscreen-image": {"image": ("image", True)},
    "text-only": {"body": ("text", True)},
    "emergency": {
        "headline": ("text", True),
        "description": ("text", True),
        "instruction": ("text", False),
        "severity": ("enum", True),
        "expires": ("datetime", False),
    },
    "clock": {},
    "ticker": {"text": ("text", True)},
}
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor")
WITH_LED = {"announcement", "clock", "emergency", "fullscreen-image", "news-photo", "text-only"}
WITH_PORTRAIT = {"announcement", "emergency", "news-photo", "text-only"}
TICKER_TEXT = "Chú ý: lịch cắt điện ngày 25/11 từ 7 giờ đến 11 giờ — thôn Ea Ktur và thôn Kon Brai."
# Every optional field a template may read, to lay out the fullest version of each slide.
OPTIONAL_EXTRAS: dict[str, FieldValue] = {
    "link": "https://example.gov.vn/tin/123",
    "instruction": "Di chuyển đến nơi trú ẩn an toàn theo hướng dẫn của xã.",
    "expires": "2026-11-22T06:00:00+07:00",
    "ticker": TICKER_TEXT,
}


@pytest.fixture(scope="module")
def library() -> LayoutLibrary:
    return LayoutLibrary.load(LAYOUTS)


def _sample(stem: str) -> Item:
    return read_item(SAMPLES / f"{stem}.json")


def _overlaps(a: Rect, b: Rect) -> bool:
    return a.x < b.right and b.x < a.right and a.y < b.bottom and b.y < a.bottom


# -- shipped templates ------------------------------------------------------------------------


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=[p.stem for p in TEMPLATE_FILES])
def test_every_shipped_template_parses(path: Path) -> None:
    template = parse_template(path)
    assert template.name == path.stem
    assert template.description.strip()
    assert template.variants
    # The last variant is the fallback: it must not have conditions of its own.
    assert dict(template.variants[-1].when) == {}


def test_library_has_the_seven_templates(library: LayoutLibrary) -> None:
    assert library.names() == sorted(EXPECTED_FIELDS)


@pytest.mark.parametrize("name", sorted(EXPECTED_FIELDS))
def test_template_reads_the_fields_the_issue_names(library: LayoutLibrary, name: str) -> None:
    template = library.get(name)
    for field, (kind, required) in EXPECTED_FIELDS[name].items():
        assert field in template.fields, f"{name} lacks field {field}"
        spec = template.fields[field]
        assert spec.name == field
        assert spec.type == kind, f"{name}.{field}"
        assert spec.required is required, f"{name}.{field}"
    extra_required = {f for f, spec in template.fields.items() if spec.required} - EXPECTED_FIELDS[
        name
    ].keys()
    assert not extra_required, f"{name} requires fields the issue does not name"


@pytest.mark.parametrize("name", sorted(set(EXPECTED_FIELDS) - {"ticker"}))
def test_every_other_template_takes_an_optional_ticker(library: LayoutLibrary, name: str) -> None:
    spec = library.get(name).fields["ticker"]
    assert spec.type == "text"
    assert not spec.required


def test_emergency_severity_is_the_cap_enum(library: LayoutLibrary) -> None:
    template = library.get("emergency")
    assert template.fields["severity"].values == SEVERITIES
    assert template.theme_field == "severity"
    assert set(template.themes) >= set(SEVERITIES)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.stem for p in SAMPLE_FILES])
def test_every_sample_item_suits_its_template(library: LayoutLibrary, path: Path) -> None:
    item = read_item(path)
    library.get(item.template).check(item.fields)


def test_every_template_has_a_sample(library: LayoutLibrary) -> None:
    templates = {read_item(path).template for path in SAMPLE_FILES}
    assert templates == set(library.names())


# -- variant choice ---------------------------------------------------------------------------


def test_templates_with_an_led_variant(library: LayoutLibrary) -> None:
    have_led = {
        name for name in library.names() if any(v.name == "led" for v in library.get(name).variants)
    }
    assert have_led == WITH_LED


@pytest.mark.parametrize("size", [Size(192, 96), Size(320, 160)], ids=str)
def test_led_walls_get_the_led_variant(library: LayoutLibrary, size: Size) -> None:
    for name in WITH_LED:
        assert library.get(name).variant_for(size).name == "led", name


def test_portrait_screen_gets_the_portrait_variant_where_present(library: LayoutLibrary) -> None:
    for size in (Size(1080, 1920), Size(2160, 3840)):
        for name in library.names():
            chosen = library.get(name).variant_for(size).name
            if name in WITH_PORTRAIT:
                assert chosen == "portrait", (name, size)
            else:
                assert chosen == "screen", (name, size)


@pytest.mark.parametrize("size", [Size(1280, 720), Size(1920, 1080), Size(3840, 2160)], ids=str)
def test_landscape_screens_get_landscape_or_screen(library: LayoutLibrary, size: Size) -> None:
    for name in library.names():
        assert library.get(name).variant_for(size).name in ("landscape", "screen"), name


def test_ticker_strip_variant_is_for_long_thin_strips(library: LayoutLibrary) -> None:
    ticker = library.get("ticker")
    assert ticker.variant_for(Size(1920, 86)).name == "strip"
    assert ticker.variant_for(Size(1080, 86)).name == "strip"
    assert ticker.variant_for(Size(1920, 1080)).name == "screen"


# -- geometry at every board size -------------------------------------------------------------


def _field_sets(item: Item, library: LayoutLibrary) -> dict[str, dict[str, FieldValue]]:
    """The sample's own fields, without a ticker, with one, and with every optional field."""
    own = dict(item.fields)
    accepted = library.get(item.template).fields
    without = {k: v for k, v in own.items() if k != "ticker"}
    fullest = dict(own)
    fullest.update({k: v for k, v in OPTIONAL_EXTRAS.items() if k in accepted})
    sets = {"sample": own, "no-ticker": without, "all-optional": fullest}
    if "ticker" in accepted:
        sets["with-ticker"] = {**own, "ticker": TICKER_TEXT}
    return sets


def _ticker_strips(scene: Scene) -> list[PlacedBox]:
    return [b for b in scene.boxes if b.kind == "ticker" and b.field == "ticker"]


def _check_scene(scene: Scene, size: Size, fields: Mapping[str, FieldValue]) -> None:
    screen = Rect(0, 0, size.width, size.height)
    assert scene.size == size
    assert scene.boxes, "a slide with nothing on it"
    for box in scene.boxes:
        assert box.rect.width > 0, box
        assert box.rect.height > 0, box
        assert screen.contains(box.rect), box
    for fill in scene.fills:
        assert screen.contains(fill.rect), fill
    words = [b for b in scene.boxes if b.kind in ("text", "banner")]
    for i, first in enumerate(words):
        for second in words[i + 1 :]:
            assert not _overlaps(first.rect, second.rect), (first.name, second.name)
    if scene.variant == "led" and scene.template != "fullscreen-image":
        assert not [b for b in scene.boxes if b.kind in ("image", "logo")]
        assert not [f for f in scene.fills if f.background.image_field]
    if scene.template == "ticker":
        (only,) = scene.boxes
        assert (only.kind, only.field) == ("ticker", "text")
        return
    strips = _ticker_strips(scene)
    if not fields.get("ticker"):
        assert not strips
        if scene.variant != "led":
            assert not [b for b in scene.boxes if b.kind == "ticker"]
    elif scene.variant != "led":
        (strip,) = strips
        others = [b for b in scene.boxes if b is not strip]
        assert all(strip.rect.y >= b.rect.bottom for b in others), "strip is not at the bottom"


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.stem for p in SAMPLE_FILES])
def test_layout_geometry(library: LayoutLibrary, path: Path, size: Size) -> None:
    item = read_item(path)
    for label, fields in _field_sets(item, library).items():
        for has in (frozenset(), frozenset({"logo"})):
            scene = library.lay_out(item.template, size, fields, has)
            try:
                _check_scene(scene, size, fields)
            except AssertionError as exc:
                raise AssertionError(f"{label}, board has {set(has)}: {exc}") from exc


def test_ticker_strip_follows_the_ticker_field(library: LayoutLibrary) -> None:
    item = _sample("announcement")
    assert item.fields.get("ticker")
    size = Size(1920, 1080)
    with_ticker = library.lay_out("announcement", size, item.fields)
    (strip,) = _ticker_strips(with_ticker)
    assert strip.rect.bottom <= size.height
    assert strip.rect.bottom > size.height * 0.9
    without = {k: v for k, v in item.fields.items() if k != "ticker"}
    assert not _ticker_strips(library.lay_out("announcement", size, without))
    assert not _ticker_strips(library.lay_out("announcement", size, {**without, "ticker": ""}))


def test_optional_regions_collapse(library: LayoutLibrary) -> None:
    fields = dict(_sample("emergency").fields)
    full = library.lay_out("emergency", Size(1920, 1080), fields)
    assert {"instruction", "expires"} <= {b.name for b in full.boxes}
    bare = {k: v for k, v in fields.items() if k not in ("instruction", "expires")}
    short = library.lay_out("emergency", Size(1920, 1080), bare)
    assert not {"instruction", "expires"} & {b.name for b in short.boxes}
    (wide,) = [b for b in short.boxes if b.name == "description"]
    (narrow,) = [b for b in full.boxes if b.name == "description"]
    assert wide.rect.width > narrow.rect.width


def test_logo_region_only_when_the_board_has_a_logo(library: LayoutLibrary) -> None:
    fields = _sample("announcement").fields
    plain = library.lay_out("announcement", Size(1920, 1080), fields)
    assert "logo" not in {b.kind for b in plain.boxes}
    logo = library.lay_out("announcement", Size(1920, 1080), fields, frozenset({"logo"}))
    assert [b.name for b in logo.boxes if b.kind == "logo"] == ["logo"]


# -- rotation ---------------------------------------------------------------------------------


def _render(
    composer: Composer, board: BoardInfo, now: datetime, item: Item, size: Size, rotate: int = 0
) -> Any:
    return composer.render(item, size, now, board, folder_assets(SAMPLES), rotate=rotate)


def _corresponding(rotate: int, x: int, y: int, content: Size) -> tuple[int, int]:
    """Where content pixel (x, y) lands when the picture is turned ``rotate`` clockwise."""
    if rotate == 90:
        return content.height - 1 - y, x
    if rotate == 180:
        return content.width - 1 - x, content.height - 1 - y
    if rotate == 270:
        return y, content.width - 1 - x
    return x, y


@pytest.mark.parametrize(
    ("rotate", "content", "variant"),
    [
        (0, Size(1920, 1080), "landscape"),
        (90, Size(1080, 1920), "portrait"),
        (180, Size(1920, 1080), "landscape"),
        (270, Size(1080, 1920), "portrait"),
    ],
)
def test_rotation_lays_out_for_the_turned_screen(
    composer: Composer,
    board: BoardInfo,
    now: datetime,
    rotate: int,
    content: Size,
    variant: str,
) -> None:
    item = _sample("announcement")
    frame = _render(composer, board, now, item, Size(1920, 1080), rotate)
    assert frame.image.size == (1920, 1080)
    assert frame.scene.size == content
    assert frame.scene.variant == variant
    assert frame.rotate == rotate
    report = frame.report()
    assert report["size"] == [1920, 1080]
    assert report["content_size"] == [content.width, content.height]
    upright = _render(composer, board, now, item, content).image
    assert upright.size == (content.width, content.height)
    for x in range(0, content.width, content.width // 23):
        for y in range(0, content.height, content.height // 29):
            spot = _corresponding(rotate, x, y, content)
            assert frame.image.getpixel(spot) == upright.getpixel((x, y)), (x, y)


def test_quarter_turn_is_clockwise(composer: Composer, board: BoardInfo, now: datetime) -> None:
    # The header band (red) runs across the top of the portrait content: turned clockwise it
    # must stand along the right edge of the landscape output.
    frame = _render(composer, board, now, _sample("announcement"), Size(1920, 1080), 90)
    header = (0xB3, 0x12, 0x1F)
    image: Image.Image = frame.image
    assert image.getpixel((1919 - 5, 540)) == header
    assert image.getpixel((5, 540)) != header


# -- Template.check ---------------------------------------------------------------------------


def _announcement(**fields: FieldValue) -> dict[str, FieldValue]:
    return {"title": "Thông báo", "body": "Nội dung thông báo", **fields}


def _emergency(**fields: FieldValue) -> dict[str, FieldValue]:
    base: dict[str, FieldValue] = {
        "headline": "Bão số 9",
        "description": "Gió mạnh cấp 12",
        "severity": "Extreme",
    }
    base.update(fields)
    return base


def test_check_accepts_good_fields(library: LayoutLibrary) -> None:
    library.get("announcement").check(_announcement())
    library.get("announcement").check(_announcement(link="https://x.vn", ticker="t"))
    library.get("emergency").check(_emergency())
    library.get("emergency").check(_emergency(expires="2026-11-22T06:00:00+07:00"))
    library.get("emergency").check(_emergency(expires="2026-11-21T23:00:00Z"))
    library.get("clock").check({})
    for severity in SEVERITIES:
        library.get("emergency").check(_emergency(severity=severity))


@pytest.mark.parametrize("missing", ["title", "body"])
def test_check_missing_required_field(library: LayoutLibrary, missing: str) -> None:
    fields = _announcement()
    del fields[missing]
    with pytest.raises(ContentError) as caught:
        library.get("announcement").check(fields)
    error = caught.value
    assert error.code is ErrorCode.CONTENT_INVALID
    assert error.path == f"fields.{missing}"
    assert f"fields.{missing}" in str(error)
    assert "announcement" in str(error)
    assert str(error).endswith("[content.invalid]")


@pytest.mark.parametrize("value", [5, 2.5, True, False])
def test_check_non_string(library: LayoutLibrary, value: FieldValue) -> None:
    with pytest.raises(ContentError) as caught:
        library.get("announcement").check(_announcement(title=value))
    assert caught.value.path == "fields.title"
    assert str(caught.value).startswith("fields.title: expected a string")


def test_check_non_string_optional_field(library: LayoutLibrary) -> None:
    with pytest.raises(ContentError, match=r"^fields\.ticker: expected a string"):
        library.get("announcement").check(_announcement(ticker=7))


@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
def test_check_blank_required_text(library: LayoutLibrary, value: str) -> None:
    with pytest.raises(ContentError, match=r"^fields\.title: must not be empty"):
        library.get("announcement").check(_announcement(title=value))


def test_check_blank_required_image(library: LayoutLibrary) -> None:
    fields = {"title": "Tin", "caption": "Chú thích", "image": ""}
    with pytest.raises(ContentError, match=r"^fields\.image"):
        library.get("news-photo").check(fields)


@pytest.mark.parametrize("value", ["Catastrophic", "extreme", "EXTREME", "", "Unknown"])
def test_check_bad_severity(library: LayoutLibrary, value: str) -> None:
    with pytest.raises(ContentError) as caught:
        library.get("emergency").check(_emergency(severity=value))
    assert caught.value.path == "fields.severity"
    message = str(caught.value)
    assert message.startswith("fields.severity: expected one of")
    for severity in SEVERITIES:
        assert severity in message
    assert repr(value) in message


def test_check_missing_severity(library: LayoutLibrary) -> None:
    fields = _emergency()
    del fields["severity"]
    with pytest.raises(ContentError, match=r"^fields\.severity: required"):
        library.get("emergency").check(fields)


@pytest.mark.parametrize(
    "value", ["2026-11-22T06:00:00", "2026-11-22", "tomorrow", "22/11/2026 06:00", "06:00+07:00"]
)
def test_check_expires_needs_an_offset(library: LayoutLibrary, value: str) -> None:
    with pytest.raises(ContentError) as caught:
        library.get("emergency").check(_emergency(expires=value))
    assert caught.value.path == "fields.expires"
    assert "offset" in str(caught.value)
    assert str(caught.value).startswith("fields.expires: expected an ISO 8601 time")


def test_unknown_layout_lists_the_known_ones(library: LayoutLibrary) -> None:
    with pytest.raises(LayoutError) as caught:
        library.get("bulletin")
    error = caught.value
    assert error.code is ErrorCode.LAYOUT_UNKNOWN
    assert "'bulletin'" in str(error)
    for name in EXPECTED_FIELDS:
        assert name in str(error)
    assert str(error).endswith("[layout.unknown]")
    with pytest.raises(LayoutError) as again:
        library.lay_out("bulletin", Size(1920, 1080), {})
    assert again.value.code is ErrorCode.LAYOUT_UNKNOWN


def test_composer_refuses_before_drawing(
    composer: Composer, board: BoardInfo, now: datetime
) -> None:
    unknown = Item(id="x", template="bulletin", fields={"title": "T"})
    with pytest.raises(LayoutError) as caught:
        _render(composer, board, now, unknown, Size(1920, 1080))
    assert caught.value.code is ErrorCode.LAYOUT_UNKNOWN
    no_body = Item(id="x", template="announcement", fields={"title": "T"})
    with pytest.raises(ContentError) as refused:
        _render(composer, board, now, no_body, Size(1920, 1080))
    assert refused.value.path == "fields.body"


# -- malformed templates ----------------------------------------------------------------------


def _minimal(name: str = "bad") -> dict[str, Any]:
    return {
        "name": name,
        "description": "a small valid template",
        "fields": {"title": {"type": "text", "required": True}, "ticker": {"type": "text"}},
        "palette": {"bg": "#000000", "fg": "#FFFFFF"},
        "variants": [
            {
                "name": "only",
                "region": {
                    "regions": [
                        {
                            "size": 0.5,
                            "box": {
                                "name": "title",
                                "kind": "text",
                                "field": "title",
                                "style": {"color": "$fg", "size": [2, 8]},
                            },
                        },
                        {"box": {"name": "note", "kind": "text", "text": "{board_name}"}},
                    ]
                },
            }
        ],
    }


def _write(folder: Path, data: dict[str, Any], stem: str = "bad") -> Path:
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _title_box(data: dict[str, Any]) -> dict[str, Any]:
    box: dict[str, Any] = data["variants"][0]["region"]["regions"][0]["box"]
    return box


TITLE_BOX = "variants[0].region.regions[0].box"

Mutation = Callable[[dict[str, Any]], None]
MALFORMED: list[tuple[str, Mutation, str, str]] = [
    ("unknown top key", lambda d: d.update(colour="#FFFFFF"), "colour", "unknown key"),
    (
        "unknown box key",
        lambda d: _title_box(d).update(colour="#FFFFFF"),
        f"{TITLE_BOX}.colour",
        "unknown key",
    ),
    (
        "unknown style key",
        lambda d: _title_box(d)["style"].update(font="Arial"),
        f"{TITLE_BOX}.style.font",
        "unknown key",
    ),
    ("bad palette colour", lambda d: d["palette"].update(fg="white"), "palette.fg", "colour"),
    ("short palette colour", lambda d: d["palette"].update(fg="#FFF"), "palette.fg", "colour"),
    (
        "bad style colour",
        lambda d: _title_box(d)["style"].update(color="#GGGGGG"),
        f"{TITLE_BOX}.style.color",
        "colour",
    ),
    (
        "unknown palette colour",
        lambda d: _title_box(d)["style"].update(color="$nope"),
        f"{TITLE_BOX}.style.color",
        "unknown palette colour $nope",
    ),
    (
        "unknown palette colour in a background",
        lambda d: d["variants"][0].update(background={"color": "$nope"}),
        "variants[0].background.color",
        "unknown palette colour $nope",
    ),
    (
        "unknown box kind",
        lambda d: _title_box(d).update(kind="video"),
        f"{TITLE_BOX}.kind",
        "expected one of",
    ),
    (
        "field not declared",
        lambda d: _title_box(d).update(field="subtitle"),
        f"{TITLE_BOX}.field",
        "'subtitle' is not one of the template's fields",
    ),
    (
        "when_field not declared",
        lambda d: d["variants"][0]["region"]["regions"][0].update(when_field="subtitle"),
        "variants[0].region.regions[0].when_field",
        "not one of the template's fields",
    ),
    (
        "size min above max",
        lambda d: _title_box(d)["style"].update(size=[8, 4]),
        f"{TITLE_BOX}.style.size",
        "min is larger than max",
    ),
    (
        "size not a pair",
        lambda d: _title_box(d)["style"].update(size=[8]),
        f"{TITLE_BOX}.style.size",
        "expected [min, max]",
    ),
    (
        "name not the file name",
        lambda d: d.update(name="other"),
        "name",
        "must equal the file name 'bad'",
    ),
    ("upper-case name", lambda d: d.update(name="Bad"), "name", "lower-case"),
    ("no variants", lambda d: d.update(variants=[]), "variants", "non-empty list"),
    (
        "unknown when key",
        lambda d: d["variants"][0].update(when={"min_dpi": 3}),
        "variants[0].when.min_dpi",
        "expected one of",
    ),
    (
        "region size above 1",
        lambda d: d["variants"][0]["region"]["regions"][0].update(size=1.5),
        "variants[0].region.regions[0].size",
        "expected a number",
    ),
    (
        "bad direction",
        lambda d: d["variants"][0]["region"].update(direction="diagonal"),
        "variants[0].region.direction",
        "expected row or column",
    ),
    (
        "unknown field type",
        lambda d: d["fields"]["title"].update(type="html"),
        "fields.title.type",
        "expected one of",
    ),
    (
        "theme_field not declared",
        lambda d: d.update(theme_field="severity"),
        "theme_field",
        "not one of the template's fields",
    ),
    (
        "text box with nothing to show",
        lambda d: _title_box(d).pop("field"),
        TITLE_BOX,
        "needs a field or a text",
    ),
    (
        "weight out of range",
        lambda d: _title_box(d)["style"].update(weight=50),
        f"{TITLE_BOX}.style.weight",
        "expected a number",
    ),
    (
        "gradient of one colour",
        lambda d: d["variants"][0].update(background={"gradient": ["#000000"]}),
        "variants[0].background.gradient",
        "expected two colours",
    ),
    (
        "include edge",
        lambda d: d["variants"][0].update(include=[{"template": "ticker", "edge": "left"}]),
        "variants[0].include[0].edge",
        "expected top or bottom",
    ),
]


def test_minimal_template_is_valid(tmp_path: Path) -> None:
    path = _write(tmp_path, _minimal())
    template = parse_template(path)
    assert template.name == "bad"
    scene = LayoutLibrary.load(tmp_path).lay_out("bad", Size(640, 320), {"title": "T"})
    assert [b.name for b in scene.boxes] == ["title", "note"]


@pytest.mark.parametrize(
    ("mutate", "inner", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_template(tmp_path: Path, mutate: Mutation, inner: str, fragment: str) -> None:
    data = copy.deepcopy(_minimal())
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(LayoutError) as caught:
        parse_template(path)
    error = caught.value
    assert error.code is ErrorCode.LAYOUT_INVALID
    assert error.path == f"bad.json: {inner}"
    message = str(error)
    assert message.startswith(f"bad.json: {inner}: ")
    assert fragment in message
    assert message.endswith("[layout.invalid]")
    # The library refuses the folder with the same error.
    with pytest.raises(LayoutError) as again:
        LayoutLibrary.load(tmp_path)
    assert str(again.value) == message


@pytest.mark.parametrize(
    "text", ["{ not json", "", '{"name": "bad",}', '\ufeff{"name"', "[1, 2"], ids=repr
)
def test_invalid_json_template(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LayoutError) as caught:
        parse_template(path)
    assert caught.value.code is ErrorCode.LAYOUT_INVALID
    assert str(caught.value).startswith("bad.json: (file): cannot read template")


def test_template_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"name": "bad\xff"}')
    with pytest.raises(LayoutError, match=r"^bad\.json: \(file\): cannot read template"):
        parse_template(path)


@pytest.mark.parametrize("raw", ["[]", '"announcement"', "42", "null"])
def test_template_not_an_object(tmp_path: Path, raw: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(raw, encoding="utf-8")
    with pytest.raises(LayoutError, match=r"^bad\.json: \(top\): expected an object"):
        parse_template(path)


def _including(target: str) -> dict[str, Any]:
    data = _minimal("aaa")
    data["variants"][0]["include"] = [
        {"template": target, "edge": "bottom", "size": 0.08, "bind": {"text": "ticker"}}
    ]
    return data


def test_include_of_unknown_template_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, _including("nope"), "aaa")
    with pytest.raises(LayoutError) as caught:
        LayoutLibrary.load(tmp_path)
    assert caught.value.code is ErrorCode.LAYOUT_INVALID
    assert "unknown template 'nope'" in str(caught.value)
    assert "aaa.json" in str(caught.value)


def test_include_of_known_template_loads(tmp_path: Path) -> None:
    _write(tmp_path, _including("ticker"), "aaa")
    (tmp_path / "ticker.json").write_text(
        (LAYOUTS / "ticker.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    library = LayoutLibrary.load(tmp_path)
    scene = library.lay_out("aaa", Size(1920, 1080), {"title": "T", "ticker": "chạy"})
    assert [b.field for b in _ticker_strips(scene)] == ["ticker"]


def test_include_error_names_the_including_file_and_path(tmp_path: Path) -> None:
    _write(tmp_path, _including("nope"), "aaa")
    _write(tmp_path, _minimal("zzz"), "zzz")
    with pytest.raises(LayoutError) as caught:
        LayoutLibrary.load(tmp_path)
    message = str(caught.value)
    assert "zzz.json" not in message
    assert caught.value.path == "aaa.json: variants[0].include[0].template"


def _themed(themes: dict[str, dict[str, str]]) -> dict[str, Any]:
    data = _minimal()
    data["fields"]["severity"] = {"type": "enum", "values": ["A", "B"]}
    data["theme_field"] = "severity"
    data["themes"] = themes
    return data


def test_theme_colours_are_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, _themed({"A": {"bg": "nope"}}))
    with pytest.raises(LayoutError) as caught:
        parse_template(path)
    assert caught.value.code is ErrorCode.LAYOUT_INVALID
    assert str(caught.value).startswith("bad.json: ")


def test_bad_theme_colour_is_refused_even_when_another_theme_overrides_it(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, _themed({"A": {"bg": "nope"}, "B": {"bg": "#111111"}}))
    with pytest.raises(LayoutError) as caught:
        parse_template(path)
    assert caught.value.path == "bad.json: themes.A.bg"


def test_bad_theme_colour_is_reported_at_its_theme(tmp_path: Path) -> None:
    path = _write(tmp_path, _themed({"A": {"bg": "nope"}}))
    with pytest.raises(LayoutError) as caught:
        parse_template(path)
    assert caught.value.path == "bad.json: themes.A.bg"


def test_library_load_names_the_bad_file_among_good_ones(tmp_path: Path) -> None:
    for source in TEMPLATE_FILES:
        (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    data = json.loads((LAYOUTS / "news-photo.json").read_text(encoding="utf-8"))
    data["palette"]["accent"] = "crimson"
    _write(tmp_path, data, "news-photo")
    with pytest.raises(LayoutError) as caught:
        LayoutLibrary.load(tmp_path)
    assert caught.value.path == "news-photo.json: palette.accent"
