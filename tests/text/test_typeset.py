"""Typesetting: NFC, per-character fallback, line breaking, auto-fit, truncation, line height,
and properties over random Vietnamese, minority and Khmer text."""

from __future__ import annotations

import dataclasses
import itertools
import math
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from signage.errors import ErrorCode
from signage.text import (
    BOLD,
    ELLIPSIS,
    REGULAR,
    FontRegistry,
    TextBlock,
    TextStyle,
    Typesetter,
    clusters,
)

BVP, NOTO, KHMER_FONT = "Be Vietnam Pro", "Noto Sans", "Noto Sans Khmer"
VOWELS = "aăâeêioôơuưy"
TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # none, huyền, sắc, hỏi, ngã, nặng
BREVE = "\u0306"
NOTICE = (
    "Thông báo: lịch tiêm chủng mở rộng cho trẻ em dưới năm tuổi tại trạm y tế xã Sa Thầy, "
    "từ ngày hai mươi đến hết tháng mười một."
)
KHMER_WORD = "ព្រះរាជាណាចក្រកម្ពុជា"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def fixed(size: int, **options: object) -> TextStyle:
    """Return a style that may only use ``size`` (so breaking and truncation are tested alone)."""
    return dataclasses.replace(TextStyle(min_size=size, max_size=size), **options)


def texts(block: TextBlock) -> list[str]:
    return [line.text for line in block.lines]


def squeeze(text: str) -> str:
    """Return ``text`` in NFC with every whitespace character removed."""
    return "".join(nfc(text).split())


def boundaries(text: str) -> set[int]:
    """Return the offsets in ``text`` between its extended grapheme clusters (ends included)."""
    out, pos = {0}, 0
    for cluster in clusters(text):
        pos += len(cluster)
        out.add(pos)
    return out


def spans(block: TextBlock, text: str) -> list[tuple[int, int]]:
    """Return where each line of ``block`` lies in NFC ``text``, as (start, end) offsets.

    Fails unless every line, less its leading and trailing spaces and a final ellipsis when
    truncated, is found in ``text`` in order with only whitespace between lines.
    """
    text = nfc(text)
    out: list[tuple[int, int]] = []
    pos = 0
    for index, line in enumerate(block.lines):
        body = nfc(line.text)
        if block.truncated and index == len(block.lines) - 1 and body.endswith(ELLIPSIS):
            body = body[: -len(ELLIPSIS)]
        body = body.strip()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        assert text.startswith(body, pos), f"line {index} {body!r} is not at {text[pos:]!r}"
        out.append((pos, pos + len(body)))
        pos += len(body)
    if not block.truncated:
        assert not text[pos:].strip(), f"lost {text[pos:]!r}"
    return out


def splits_a_word(block: TextBlock, text: str) -> bool:
    """Return True when a line break of ``block`` falls inside a word (not at a space or dash)."""
    places = spans(block, text)
    for (_, end), (start, _), line in zip(places, places[1:], block.lines, strict=False):
        if end == start and line.text and line.text[-1] not in "-\u2013\u2014":
            return True
    return False


def render(typesetter: Typesetter, block: TextBlock, width: int, height: int) -> Image.Image:
    image = Image.new("L", (width, height), 0)
    typesetter.draw(ImageDraw.Draw(image), block, (0, 0), width, fill=255)
    return image


def vietnamese_alphabet() -> str:
    letters = [nfc(v + tone) for v in VOWELS + VOWELS.upper() for tone in TONES]
    letters += list("bcdđghklmnpqrstvx" + "BCDĐGHKLMNPQRSTVX")
    return " ".join(letters)


def minority_letters() -> str:
    bases = ["ĕ", "ŏ", "ŭ", "ĭ", "Ĕ", "Ŏ", "Ŭ", "Ĭ", "ơ" + BREVE, "ư" + BREVE, "Ơ" + BREVE]
    bases.append("Ư" + BREVE)
    letters = [nfc(base + tone) for base in bases for tone in TONES]
    return " ".join([*letters, *"ƀɃčČñÑ"])


def khmer_text() -> str:
    consonants = [chr(cp) for cp in range(0x1780, 0x17A3)]
    vowels = [chr(cp) for cp in range(0x17A3, 0x17B4)]
    signs = ["ក" + chr(cp) for cp in range(0x17B6, 0x17D2)]
    subscripts = ["ក\u17d2" + c for c in consonants]
    rest = [chr(cp) for cp in (*range(0x17D4, 0x17DB), *range(0x17E0, 0x17EA))]
    words = ["ភាសាខ្មែរ", KHMER_WORD, "និង", "ស្ត្រី"]
    return " ".join([*consonants, *vowels, *signs, *subscripts, *rest, *words])


# -- NFC: the same lines and the same pixels from NFC and NFD -----------------------------------

SAME_IN_BOTH_FORMS = [
    "Ấ Ễ Ỗ Ợ ấ ễ ỗ ợ ẤỄỖỢ",
    "Ĕ ĕ Ŏ ŏ Ŭ ŭ Ĭ ĭ Ƀ ƀ Č č Ñ ñ",
    "ơ̆ ư̆ Ơ̆ Ư̆ ơ̆́ ư̆́ ơ̆̀ ư̆̃ ơ̆̉ ự̆ ĕ́ ŏ̀ ŭ̃ ĭ̉ ẹ̆",
    "Xin chào ƀuôn និង — Thông báo khẩn: Ợ ĕ́ ơ̆́",
    "Người dân buôn Ƀuôn Đơ̆ng họp lúc 8 giờ\nĐịa điểm: nhà rông ĭ́ ŭ̀",
]


@pytest.mark.parametrize("text", SAME_IN_BOTH_FORMS)
def test_nfd_and_nfc_give_the_same_lines_and_pixels(registry: FontRegistry, text: str) -> None:
    composed, decomposed = nfc(text), nfd(text)
    assert composed != decomposed  # the two inputs really differ
    style = TextStyle(min_size=12, max_size=40)
    width, height = 260, 320
    first, second = Typesetter(registry), Typesetter(registry)  # no shared cache
    block_c = first.fit(composed, style, width, height)
    block_d = second.fit(decomposed, style, width, height)
    assert texts(block_c) == texts(block_d)
    assert len(block_c.lines) > 1
    assert (block_c.size, block_c.ascent, block_c.descent) == (
        block_d.size,
        block_d.ascent,
        block_d.descent,
    )
    image_c = render(first, block_c, width, height)
    image_d = render(second, block_d, width, height)
    assert image_c.getbbox() is not None
    assert image_c.tobytes() == image_d.tobytes()


def test_lines_are_nfc_whatever_the_input(typesetter: Typesetter) -> None:
    block = typesetter.fit(nfd("Ấ Ễ Ỗ Ợ ệ " + "ơ̆́ ĕ́"), TextStyle(), 800, 400)
    for line in block.lines:
        assert line.text == nfc(line.text)


def test_pixels_tell_tone_marks_apart(registry: FontRegistry) -> None:
    # The pixel comparison above is sensitive: a different tone on the breve gives other pixels.
    typesetter = Typesetter(registry)
    style = fixed(40)
    acute = typesetter.fit("ơ̆́ ĕ́", style, 300, 120)
    grave = typesetter.fit("ơ̆̀ ĕ̀", style, 300, 120)
    assert render(typesetter, acute, 300, 120).tobytes() != (
        render(typesetter, grave, 300, 120).tobytes()
    )


# -- per-character fallback ---------------------------------------------------------------------


def families_by_char(block: TextBlock) -> list[tuple[str, str]]:
    return [
        (ch, run.face.family)
        for line in block.lines
        for run in line.runs
        for ch in nfc(run.text)
        if not ch.isspace()
    ]


@pytest.mark.parametrize("form", ["NFC", "NFD"])
@pytest.mark.parametrize("weight", [REGULAR, BOLD])
def test_each_character_is_set_in_the_first_font_that_has_it(
    typesetter: Typesetter, form: str, weight: int
) -> None:
    text = unicodedata.normalize(form, "Xin chào ƀuôn និង")
    block = typesetter.fit(text, fixed(32, weight=weight), 1000, 200)
    assert texts(block) == ["Xin chào ƀuôn និង"]
    expected = [(ch, BVP) for ch in "Xinchào"] + [("ƀ", NOTO)]
    expected += [(ch, BVP) for ch in "uôn"] + [(ch, KHMER_FONT) for ch in "និង"]
    assert families_by_char(block) == expected
    for run in block.lines[0].runs:
        assert run.face.weight == weight
        assert run.size == 32
    assert block.missing == ()


def test_runs_of_a_line_cover_its_text_and_switch_font_each_time(typesetter: Typesetter) -> None:
    text = "Buôn Ƀuôn ĕ́ និង ខ្មែរ và Ma Thuột"
    (line,) = typesetter.fit(text, fixed(24), 2000, 200).lines
    assert line.text == text
    assert line.width == pytest.approx(sum(run.width for run in line.runs))
    for before, after in zip(line.runs, line.runs[1:], strict=False):
        assert before.face != after.face


def test_spaces_join_the_run_before_them(typesetter: Typesetter) -> None:
    (line,) = typesetter.fit("ខ្មែរ និង ព្រះ", fixed(SIZE), 1000, 200).lines
    assert [(run.text, run.face.family) for run in line.runs] == [("ខ្មែរ និង ព្រះ", KHMER_FONT)]
    (line,) = typesetter.fit("ƀ ƀ chào", fixed(SIZE), 1000, 200).lines
    assert [(run.text, run.face.family) for run in line.runs] == [("ƀ ƀ ", NOTO), ("chào", BVP)]


def test_a_cluster_no_font_has_composed_is_set_decomposed(typesetter: Typesetter) -> None:
    # No font of the chain has U+226E (not less-than), every one has '<' and U+0338.
    assert not any(face.covers("\u226e") for face in typesetter.registry.chain(None))
    (line,) = typesetter.fit("a ≮ b", fixed(SIZE), 500, 100).lines
    assert nfc(line.text) == "a ≮ b"
    assert "<\u0338" in line.text
    assert typesetter.missing("a ≮ b", None, REGULAR) == ()


def test_minority_letters_missing_from_be_vietnam_pro_fall_back_to_noto_sans(
    typesetter: Typesetter, registry: FontRegistry
) -> None:
    primary = registry.face(None)
    for letter in "ƀɃĕŏŭĭ":
        assert not primary.covers(letter)
        block = typesetter.fit(f"a{letter}a", fixed(20), 500, 100)
        assert families_by_char(block) == [("a", BVP), (letter, NOTO), ("a", BVP)]


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_nothing_is_missing_in_vietnamese_minority_and_khmer_text(
    typesetter: Typesetter, form: str
) -> None:
    text = unicodedata.normalize(
        form, "\n".join([vietnamese_alphabet(), minority_letters(), khmer_text()])
    )
    for weight in (300, REGULAR, BOLD, 900):
        assert typesetter.missing(text, None, weight) == ()
    block = typesetter.fit(text, TextStyle(min_size=12, max_size=24), 1920, 1080)
    assert block.missing == ()
    assert block.errors() == []


@pytest.mark.parametrize("unknown", ["\U0010fffd", "\U00013000"])
def test_a_character_no_font_has_is_reported(typesetter: Typesetter, unknown: str) -> None:
    text = f"Thông báo {unknown} ƀuôn {unknown}{unknown} និង"
    assert typesetter.missing(text, None, REGULAR) == (unknown,)
    block = typesetter.fit(text, fixed(24), 1000, 200)
    assert block.missing == (unknown,)
    assert unknown in block.lines[0].text  # still there, drawn as a missing-glyph box
    (error,) = block.errors()
    assert error.code is ErrorCode.TEXT_GLYPH_MISSING
    assert f"U+{ord(unknown):04X}" in error.message


def test_missing_characters_are_listed_once_in_order(typesetter: Typesetter) -> None:
    text = "\U00013000 a \U0010fffd b \U00013000"
    block = typesetter.fit(text, fixed(20), 800, 100)
    assert block.missing == ("\U00013000", "\U0010fffd")
    (error,) = block.errors()
    assert "U+13000 U+10FFFD" in error.message
    assert error.as_dict()["code"] == "text.glyph_missing"


# -- line breaking ------------------------------------------------------------------------------

SIZE = 20


def width_of(typesetter: Typesetter, text: str) -> int:
    return math.ceil(typesetter.width(nfc(text), None, REGULAR, SIZE))


def test_breaks_at_spaces_greedily(typesetter: Typesetter) -> None:
    box = width_of(typesetter, "Thông báo: lịch")
    block = typesetter.fit(NOTICE, fixed(SIZE), box, 2000)
    lines = texts(block)
    assert lines[0] == "Thông báo: lịch"
    assert len(lines) > 5
    assert not block.truncated
    for line, after in itertools.pairwise(lines):
        assert typesetter.width(line, None, REGULAR, SIZE) <= box
        # The next word would not have fitted: the break is as late as it can be.
        assert typesetter.width(f"{line} {after.split()[0]}", None, REGULAR, SIZE) > box
    assert not splits_a_word(block, NOTICE)
    assert squeeze("".join(lines)) == squeeze(NOTICE)


@pytest.mark.parametrize("dash", ["-", "\u2013", "\u2014"])
def test_breaks_after_hyphens_and_dashes(typesetter: Typesetter, dash: str) -> None:
    text = f"Bắc{dash}Nam"
    # Room for one letter after the dash: only a break at the dash keeps both words whole.
    box = width_of(typesetter, f"Bắc{dash}N")
    assert width_of(typesetter, "Nam") <= box < width_of(typesetter, text)
    block = typesetter.fit(text, TextStyle(min_size=12, max_size=SIZE), box, 500)
    assert (block.size, texts(block)) == (SIZE, [f"Bắc{dash}", "Nam"])
    # With room, the dash does not break anything.
    assert texts(typesetter.fit(text, fixed(SIZE), 1000, 500)) == [text]


def test_a_leading_hyphen_is_not_a_break(typesetter: Typesetter) -> None:
    # Room for "Nhiệt độ -": a hyphen that starts a word (a minus sign) must not be a break.
    box = width_of(typesetter, "Nhiệt độ -")
    assert width_of(typesetter, "-5 độ C") <= box < width_of(typesetter, "Nhiệt độ -5")
    block = typesetter.fit("Nhiệt độ -5 độ C", fixed(SIZE), box, 500)
    assert texts(block) == ["Nhiệt độ", "-5 độ C"]


def test_a_space_and_a_hyphen_in_a_box_wide_enough_keep_one_line(typesetter: Typesetter) -> None:
    text = "Đắk Lắk - Gia Lai—Kon Tum"
    assert texts(typesetter.fit(text, fixed(SIZE), 1000, 500)) == [text]


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("Thông báo\nHọp dân", ["Thông báo", "Họp dân"]),
        ("Thông báo\n\nHọp dân", ["Thông báo", "", "Họp dân"]),
        ("Thông báo\n\n\nHọp dân", ["Thông báo", "", "", "Họp dân"]),
        ("\nHọp dân", ["", "Họp dân"]),
        ("Họp dân   \nlúc 8 giờ", ["Họp dân", "lúc 8 giờ"]),
        ("ខ្មែរ\nនិង", ["ខ្មែរ", "និង"]),
    ],
)
def test_newline_is_a_hard_break_and_empty_lines_are_kept(
    typesetter: Typesetter, text: str, lines: list[str]
) -> None:
    block = typesetter.fit(text, fixed(SIZE), 1000, 1000)
    assert texts(block) == lines
    assert not block.truncated
    assert block.height == block.ascent + block.descent + (len(lines) - 1) * block.pitch


@pytest.mark.parametrize("cluster", [nfd("ệ"), "ơ̆́", "ĕ́", nfd("Ự")])
def test_a_long_word_breaks_between_clusters(typesetter: Typesetter, cluster: str) -> None:
    word = cluster * 30
    assert len(clusters(word)) == 30 and len(word) > 30
    box = 100
    block = typesetter.fit(word, fixed(SIZE), box, 2000)
    assert len(block.lines) > 2
    assert not block.truncated
    assert "".join(texts(block)) == nfc(word)
    for line in block.lines:
        assert line.text and set(clusters(line.text)) == {nfc(cluster)}
        assert line.width <= box
    for line in block.lines[:-1]:  # each line takes as many clusters as fit
        assert typesetter.width(line.text + nfc(cluster), None, REGULAR, SIZE) > box


def test_a_long_khmer_word_breaks_between_clusters(typesetter: Typesetter) -> None:
    text = KHMER_WORD * 3
    box = 100
    block = typesetter.fit(text, fixed(SIZE), box, 2000)
    assert len(block.lines) > 2
    assert "".join(texts(block)) == text
    cuts = boundaries(text)
    for start, end in spans(block, text):
        assert start in cuts and end in cuts
    assert all(line.width <= box for line in block.lines)


def test_a_long_word_after_short_ones_starts_its_own_line(typesetter: Typesetter) -> None:
    text = "Xin chào " + "nghiêng" * 8
    block = typesetter.fit(text, fixed(SIZE), 150, 2000)
    lines = texts(block)
    assert lines[0] == "Xin chào"
    assert "".join(lines[1:]) == "nghiêng" * 8
    assert all(line.width <= 150 for line in block.lines)


def test_above_the_minimum_size_no_word_is_split(typesetter: Typesetter) -> None:
    text = "Xin chào " + "nghiêng" * 3 + " bà con"
    block = typesetter.fit(text, TextStyle(min_size=12, max_size=60), 300, 1000)
    assert block.size > 12
    assert not splits_a_word(block, text)
    assert "nghiêng" * 3 in texts(block)


def test_trailing_spaces_are_dropped_at_line_ends_only(typesetter: Typesetter) -> None:
    wide = typesetter.fit("  alpha   beta   ", fixed(SIZE), 1000, 500)
    assert texts(wide) == ["  alpha   beta"]
    box = max(width_of(typesetter, word) for word in ("alpha", "beta", "gamma")) + 2
    assert width_of(typesetter, "beta gamma") > box
    narrow = typesetter.fit("alpha     beta  gamma", fixed(SIZE), box, 500)
    assert texts(narrow) == ["alpha", "beta", "gamma"]
    both = typesetter.fit("Họp  dân\tlúc 8 giờ ", fixed(SIZE), 1000, 500)
    assert texts(both) == ["Họp  dân\tlúc 8 giờ"]


def test_no_character_is_added_or_lost_when_it_fits(typesetter: Typesetter) -> None:
    text = NOTICE + "\n\nƀuôn ĕ́ ơ̆́ — និង ខ្មែរ-Việt"
    block = typesetter.fit(text, TextStyle(min_size=12, max_size=40), 240, 2000)
    assert not block.truncated
    assert len(block.lines) > 4
    assert squeeze("".join(texts(block))) == squeeze(text)
    assert ELLIPSIS not in "".join(texts(block))
    spans(block, text)  # in order, inner spaces kept


def test_without_wrap_only_newlines_break(typesetter: Typesetter) -> None:
    block = typesetter.fit("Một hai ba\nbốn năm", fixed(SIZE, wrap=False), 1000, 500)
    assert texts(block) == ["Một hai ba", "bốn năm"]


def test_without_wrap_the_size_shrinks_until_the_line_fits(typesetter: Typesetter) -> None:
    text = "Thông báo khẩn cấp về bão số 9"
    style = TextStyle(min_size=12, max_size=60, wrap=False)
    block = typesetter.fit(text, style, 300, 200)
    assert texts(block) == [text]
    assert not block.truncated
    assert 12 < block.size < 60
    assert block.width <= 300
    wider = typesetter.fit(text, dataclasses.replace(style, min_size=block.size + 1), 300, 200)
    assert wider.truncated


def test_without_wrap_a_line_too_long_is_cut_with_an_ellipsis(typesetter: Typesetter) -> None:
    block = typesetter.fit(NOTICE, TextStyle(min_size=12, max_size=60, wrap=False), 200, 200)
    (line,) = block.lines
    assert block.truncated
    assert line.text.endswith(ELLIPSIS)
    assert line.width <= 200
    assert NOTICE.startswith(line.text.removesuffix(ELLIPSIS))


@pytest.mark.parametrize("glue", ["\u00a0", "\u202f"])
def test_no_break_space_does_not_break(typesetter: Typesetter, glue: str) -> None:
    amount = f"1{glue}000{glue}000"
    text = f"Giá {amount} đồng"
    box = width_of(typesetter, f"Giá {amount}") - 1
    assert width_of(typesetter, amount) <= box
    block = typesetter.fit(text, fixed(SIZE), box, 500)
    assert any(amount in line for line in texts(block)), texts(block)


# -- auto-fit ----------------------------------------------------------------------------------


def fits_without_splitting(
    typesetter: Typesetter, text: str, style: TextStyle, width: int, height: int, size: int
) -> bool:
    """Return True when ``text`` fits the box at exactly ``size`` with whole words."""
    block = typesetter.fit(
        text, dataclasses.replace(style, min_size=size, max_size=size), width, height
    )
    return not block.truncated and not splits_a_word(block, text)


FIT_CASES = [
    (NOTICE, TextStyle(min_size=12, max_size=72), 400, 200),
    ("Buôn Ƀuôn Ma Thuột ĕ́ ơ̆́ និង ខ្មែរ ẤỄỖỢ", TextStyle(min_size=12, max_size=90), 300, 150),
    (
        "Một hai ba bốn năm sáu bảy tám chín mười",
        TextStyle(min_size=12, max_size=120, max_lines=2),
        500,
        500,
    ),
    (
        "Thông báo\nHọp dân lúc 8 giờ\n\nUBND xã Sa Thầy",
        TextStyle(min_size=10, max_size=80),
        300,
        300,
    ),
    (NOTICE, TextStyle(min_size=12, max_size=72, weight=BOLD, line_spacing=1.4), 640, 240),
]


@pytest.mark.parametrize(("text", "style", "width", "height"), FIT_CASES)
def test_fit_picks_the_largest_size_that_fits(
    typesetter: Typesetter, text: str, style: TextStyle, width: int, height: int
) -> None:
    block = typesetter.fit(text, style, width, height)
    assert style.min_size < block.size < style.max_size  # the case is between the limits
    assert not block.truncated
    assert block.height <= height
    assert all(line.width <= width for line in block.lines)
    if style.max_lines:
        assert len(block.lines) <= style.max_lines
    assert not splits_a_word(block, text)
    assert squeeze("".join(texts(block))) == squeeze(text)
    fresh = Typesetter(typesetter.registry)
    assert fits_without_splitting(fresh, text, style, width, height, block.size)
    assert not fits_without_splitting(fresh, text, style, width, height, block.size + 1)


@pytest.mark.parametrize("text", ["Xin chào", "ẤỖỆ gỵ", "ƀuôn ĕ́", "និង ខ្មែរ", ""])
def test_short_text_gets_the_maximum_size(typesetter: Typesetter, text: str) -> None:
    block = typesetter.fit(text, TextStyle(min_size=12, max_size=72), 1000, 500)
    assert block.size == 72
    assert not block.truncated
    assert texts(block) == [text]


def test_max_lines_limits_the_lines_and_costs_size(typesetter: Typesetter) -> None:
    text = "Một hai ba bốn năm sáu bảy tám chín mười"
    free = typesetter.fit(text, TextStyle(min_size=12, max_size=200), 600, 600)
    assert len(free.lines) > 2
    for limit in (1, 2):
        limited = typesetter.fit(
            text, TextStyle(min_size=12, max_size=200, max_lines=limit), 600, 600
        )
        assert len(limited.lines) <= limit
        assert not limited.truncated
        assert limited.size < free.size
        assert squeeze("".join(texts(limited))) == squeeze(text)


def check_truncated(block: TextBlock, text: str, width: int, height: int) -> str:
    """Check a truncated block and return the text it keeps (ellipsis removed, NFC)."""
    assert block.truncated
    shown = nfc("".join(texts(block)))
    assert shown.endswith(ELLIPSIS)
    assert shown.count(ELLIPSIS) == 1
    assert block.lines[-1].text.endswith(ELLIPSIS)
    kept = shown[: -len(ELLIPSIS)]
    assert squeeze(text).startswith(squeeze(kept))
    assert len(squeeze(kept)) < len(squeeze(text))
    assert all(line.width <= width for line in block.lines)
    assert block.height <= height
    spans(block, text)
    return kept


def test_text_too_long_is_truncated_at_the_minimum_size(typesetter: Typesetter) -> None:
    text = " ".join([NOTICE] * 6)
    style = TextStyle(min_size=14, max_size=40)
    block = typesetter.fit(text, style, 220, 90)
    assert block.size == 14
    assert len(block.lines) >= 2
    kept = check_truncated(block, text, 220, 90)
    assert kept.startswith("Thông báo: lịch")


def test_truncation_respects_max_lines(typesetter: Typesetter) -> None:
    text = " ".join([NOTICE] * 3)
    for limit in (1, 2, 3):
        style = TextStyle(min_size=14, max_size=40, max_lines=limit)
        block = typesetter.fit(text, style, 300, 2000)
        assert len(block.lines) == limit
        check_truncated(block, text, 300, 2000)


@pytest.mark.parametrize("cluster", [nfd("ệ"), "ơ̆́", "ĕ́"])
def test_truncation_of_a_long_word_keeps_whole_clusters(
    typesetter: Typesetter, cluster: str
) -> None:
    text = cluster * 200
    block = typesetter.fit(text, fixed(SIZE), 100, 60)
    kept = check_truncated(block, text, 100, 60)
    assert kept and kept == nfc(cluster) * len(clusters(kept))


def test_truncation_of_khmer_keeps_whole_clusters(typesetter: Typesetter) -> None:
    text = KHMER_WORD * 10
    block = typesetter.fit(text, fixed(SIZE), 120, 45)
    kept = check_truncated(block, text, 120, 45)
    parts = clusters(kept)
    assert parts and parts == clusters(text)[: len(parts)]


@pytest.mark.parametrize(
    "text",
    ["Xin chào bà con\n" + "ក្រុង ព្រះ កម្ពុជា " * 6, "Xin chào bà con\nកម្ពុជា"],
)
def test_truncated_block_fits_its_box_whatever_the_later_lines(
    typesetter: Typesetter, text: str
) -> None:
    latin = typesetter.fit("Xin chào bà con\nXin chào", fixed(SIZE), 200, 1000)
    height = latin.height + 1  # room for two lines of Vietnamese
    block = typesetter.fit(text, fixed(SIZE), 200, height)
    assert block.height <= height
    if block.truncated:
        assert block.lines[-1].text.endswith(ELLIPSIS)


@pytest.mark.parametrize("width", range(90, 150, 6))
def test_the_ellipsis_never_cuts_a_khmer_cluster(typesetter: Typesetter, width: int) -> None:
    # Each cluster is a consonant and a spacing vowel sign that has its own advance.
    text = "កាកីកុំកោ" * 40
    block = typesetter.fit(text, fixed(SIZE), width, 50)
    kept = check_truncated(block, text, width, 50)
    parts = clusters(kept)
    assert parts and parts == clusters(text)[: len(parts)]


def test_a_box_smaller_than_one_line_still_shows_an_ellipsis(typesetter: Typesetter) -> None:
    block = typesetter.fit(NOTICE, fixed(SIZE), 200, 5)
    assert block.truncated
    assert len(block.lines) == 1
    assert block.lines[0].text.endswith(ELLIPSIS)
    assert block.lines[0].width <= 200


def test_fit_is_cached_and_repeatable(registry: FontRegistry) -> None:
    first, second = Typesetter(registry), Typesetter(registry)
    style = TextStyle(min_size=12, max_size=48)
    assert first.fit(NOTICE, style, 300, 200) is first.fit(NOTICE, style, 300, 200)
    assert first.fit(NOTICE, style, 300, 200) == second.fit(nfd(NOTICE), style, 300, 200)


# -- line height from the real ink ------------------------------------------------------------


def test_stacked_marks_raise_the_ascent_above_the_cap_height(
    typesetter: Typesetter, registry: FontRegistry
) -> None:
    for size in (16, 48, 120):
        block = typesetter.fit("ẤỖỆ", fixed(size), 2000, 2000)
        font = registry.font(registry.face(None), size)
        cap_height = -font.getbbox("A", anchor="ls")[1]
        stacked = -font.getbbox("ẤỖỆ", anchor="ls")[1]
        assert stacked > cap_height
        assert block.ascent >= stacked > cap_height


INK_TEXTS = [
    "ẤỖỆ",
    "Ỹ gỵ Ợ",
    "Ƀuôn ĕ́ ơ̆́ Ư̆̃",
    "ស្ត្រី កម្ពុជា ព្រះ",
    "Xin chào\nកម្ពុជា ẤỖỆ ស្ត្រី",
]


@pytest.mark.parametrize("text", INK_TEXTS)
@pytest.mark.parametrize(("size", "weight"), [(13, REGULAR), (40, BOLD), (96, 900)])
def test_ascent_and_descent_cover_the_ink_of_every_run(
    typesetter: Typesetter, registry: FontRegistry, text: str, size: int, weight: int
) -> None:
    block = typesetter.fit(text, fixed(size, weight=weight), 4000, 4000)
    assert not block.truncated
    for line in block.lines:
        for run in line.runs:
            if run.text.isspace():
                continue
            _, top, _, bottom = registry.font(run.face, run.size).getbbox(run.text, anchor="ls")
            assert block.ascent >= -top, run.text
            assert block.descent >= bottom, run.text
    assert block.pitch >= block.ascent + block.descent


@pytest.mark.parametrize("text", INK_TEXTS)
def test_drawn_ink_stays_inside_the_block_height(typesetter: Typesetter, text: str) -> None:
    block = typesetter.fit(text, fixed(64), 4000, 4000)
    pad = 20
    width = math.ceil(block.width) + 2 * pad
    image = Image.new("L", (width, block.height + 2 * pad), 0)
    typesetter.draw(ImageDraw.Draw(image), block, (pad, pad), width, fill=255)
    ink = image.getbbox()
    assert ink is not None
    assert ink[1] >= pad
    assert ink[3] <= pad + block.height


@pytest.mark.parametrize("spacing", [1.0, 1.25, 1.6])
def test_line_spacing_sets_the_pitch(typesetter: Typesetter, spacing: float) -> None:
    block = typesetter.fit("Hai\ndòng\nba", fixed(30, line_spacing=spacing), 500, 1000)
    assert len(block.lines) == 3
    assert block.pitch == round((block.ascent + block.descent) * spacing)
    assert block.height == block.ascent + block.descent + 2 * block.pitch


def test_lines_are_drawn_one_pitch_apart(typesetter: Typesetter) -> None:
    block = typesetter.fit("H\nH", fixed(40, line_spacing=1.5), 200, 1000)
    pad = 10
    image = Image.new("L", (200, block.height + 2 * pad), 0)
    typesetter.draw(ImageDraw.Draw(image), block, (pad, pad), 200, fill=255)
    rows = [y for y in range(image.height) if image.crop((0, y, 200, y + 1)).getbbox()]
    tops = [rows[0]] + [b for a, b in itertools.pairwise(rows) if b - a > 1]
    assert len(tops) == 2  # two separate letters
    assert tops[1] - tops[0] == block.pitch
    assert rows[-1] + 1 == pad + block.ascent + block.pitch  # H sits on the second baseline


def test_alignment_moves_lines_within_the_box(typesetter: Typesetter) -> None:
    block = typesetter.fit("Thông báo", fixed(30), 400, 100)
    boxes = {}
    for align in ("left", "center", "right"):
        image = Image.new("L", (400, 100), 0)
        typesetter.draw(ImageDraw.Draw(image), block, (0, 10), 400, fill=255, align=align)
        boxes[align] = image.getbbox()
    assert boxes["left"] is not None and boxes["center"] is not None and boxes["right"] is not None
    assert boxes["left"][0] < boxes["center"][0] < boxes["right"][0]
    assert boxes["right"][2] <= 400
    assert abs((boxes["center"][0] + boxes["center"][2]) / 2 - 200) <= 3


# -- properties ---------------------------------------------------------------------------------

_WORDS = [
    "Việt",
    "Nam",
    "nghiêng",
    "đường",
    "Thủ",
    "tướng",
    "Ấ",
    "Ễ",
    "Ỗ",
    "Ợ",
    "ẤỖỆ",
    "ơ̆́",
    "ĕ́",
    "ư̆",
    "Ƀuôn",
    "ĭ",
    "ŭ",
    "č",
    "ñ",
    "ខ្មែរ",
    "និង",
    "ក",
    KHMER_WORD,
    "nghiêngnghiêngnghiêngnghiêng",
    "ệ" * 15,
]

_letters = st.builds(
    lambda base, tone, form: unicodedata.normalize(form, base + tone),
    st.sampled_from(VOWELS + VOWELS.upper() + "ĕŏŭĭ"),
    st.sampled_from(TONES),
    st.sampled_from(["NFC", "NFD"]),
)
_syllables = st.lists(
    st.one_of(_letters, st.sampled_from(list("bcdđghklmnptvxƀčñ"))), min_size=1, max_size=8
).map("".join)
_words = st.one_of(
    _syllables,
    st.builds(unicodedata.normalize, st.sampled_from(["NFC", "NFD"]), st.sampled_from(_WORDS)),
)
_separators = st.sampled_from(
    [" ", " ", " ", "  ", "-", "\u2013", "\u2014", " \u2014 ", "\n", "\n\n", ""]
)
vietnamese_texts = st.lists(st.tuples(_words, _separators), min_size=1, max_size=30).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)
styles = st.builds(
    TextStyle,
    min_size=st.just(12),
    max_size=st.integers(12, 48),
    max_lines=st.integers(0, 4),
    weight=st.sampled_from([REGULAR, BOLD]),
)
widths = st.integers(48, 400)
heights = st.integers(24, 600)
PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(text=vietnamese_texts, style=styles, width=widths, height=heights)
def test_property_no_line_is_wider_than_its_box(
    registry: FontRegistry, text: str, style: TextStyle, width: int, height: int
) -> None:
    block = Typesetter(registry).fit(text, style, width, height)
    assert block.lines
    assert all(line.width <= width for line in block.lines)
    assert style.min_size <= block.size <= style.max_size
    if style.max_lines:
        assert len(block.lines) <= style.max_lines
    if not block.truncated:
        assert block.height <= height


@PROPERTY
@given(text=vietnamese_texts, style=styles, width=widths, height=heights)
def test_property_no_character_is_lost_unless_truncated(
    registry: FontRegistry, text: str, style: TextStyle, width: int, height: int
) -> None:
    block = Typesetter(registry).fit(text, style, width, height)
    shown = squeeze("".join(texts(block)))
    if not block.truncated:
        assert shown == squeeze(text)
        return
    assert block.size == style.min_size
    assert ELLIPSIS not in shown[:-1]  # at most one, at the very end
    kept = shown.removesuffix(ELLIPSIS)
    assert squeeze(text).startswith(kept)


@PROPERTY
@given(text=vietnamese_texts, style=styles, width=widths, height=heights)
def test_property_every_break_is_on_a_cluster_boundary(
    registry: FontRegistry, text: str, style: TextStyle, width: int, height: int
) -> None:
    block = Typesetter(registry).fit(text, style, width, height)
    cuts = boundaries(nfc(text))
    for start, end in spans(block, text):
        assert start in cuts and end in cuts
    if block.size > style.min_size:
        assert not splits_a_word(block, text)


@settings(max_examples=80, deadline=None)
@given(text=vietnamese_texts, style=styles, width=widths, height=heights)
def test_property_the_chosen_size_is_the_largest_that_fits(
    registry: FontRegistry, text: str, style: TextStyle, width: int, height: int
) -> None:
    typesetter = Typesetter(registry)
    block = typesetter.fit(text, style, width, height)
    if block.truncated or block.size == style.max_size:
        return
    size = block.size + 1
    assert not fits_without_splitting(typesetter, text, style, width, height, size)
