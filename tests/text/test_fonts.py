"""Font registry: the default chain, nearest weights, variable fonts, config errors, RAQM,
fonts dropped into a folder."""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

import pytest
from PIL import features

from signage.errors import ErrorCode, FontError
from signage.resources import data_dir
from signage.text import BOLD, REGULAR, FontRegistry, Typesetter, require_raqm

SHIPPED = data_dir("fonts") / "fonts.toml"
DEFAULT_CHAIN = ("Be Vietnam Pro", "Noto Sans", "Noto Sans Khmer")
KHMER = "ព្រះរាជាណាចក្រកម្ពុជា ខ្មែរ និង"
LATIN = "Xin chào bà con Sa Thầy"


def shipped_without_family(family: str) -> str:
    """Return the shipped fonts.toml with the table of ``family`` cut out (it is the last ones)."""
    text = SHIPPED.read_text(encoding="utf-8")
    head, marker, _ = text.partition(f'[families."{family}"]')
    assert marker, f"{family} is not a table of the shipped fonts.toml"
    return head


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fonts.toml"
    config.write_text(text, encoding="utf-8")
    return config


# -- the shipped registry ---------------------------------------------------------------------


def test_default_chain_is_be_vietnam_pro_then_noto_sans_then_noto_sans_khmer(
    registry: FontRegistry,
) -> None:
    assert registry.default_family == "Be Vietnam Pro"
    assert registry.fallback == ("Noto Sans", "Noto Sans Khmer")
    for weight in (REGULAR, BOLD):
        chain = registry.chain(None, weight)
        assert tuple(face.family for face in chain) == DEFAULT_CHAIN
        assert len({face.path for face in chain}) == 3


def test_chain_of_a_fallback_family_does_not_repeat_it(registry: FontRegistry) -> None:
    chain = registry.chain("Noto Sans", REGULAR)
    assert tuple(face.family for face in chain) == ("Noto Sans", "Noto Sans Khmer")


def test_shipped_fonts_come_from_the_font_packages(registry: FontRegistry) -> None:
    assert registry.face(None).path.name == "BeVietnamPro-Regular.ttf"
    assert "fontpkg_be_vietnam_pro" in registry.face(None).path.parts
    assert "fontpkg_noto_sans" in registry.face("Noto Sans").path.parts
    assert "fontpkg_noto_sans_khmer" in registry.face("Noto Sans Khmer").path.parts
    assert set(DEFAULT_CHAIN) <= set(registry.families())


@pytest.mark.parametrize(
    ("asked", "weight", "file"),
    [
        (REGULAR, 400, "BeVietnamPro-Regular.ttf"),
        (BOLD, 700, "BeVietnamPro-Bold.ttf"),
        (300, 300, "BeVietnamPro-Light.ttf"),
        (100, 300, "BeVietnamPro-Light.ttf"),  # lighter than any file: the lightest
        (1000, 900, "BeVietnamPro-Black.ttf"),  # heavier than any file: the heaviest
        (420, 400, "BeVietnamPro-Regular.ttf"),
        (480, 500, "BeVietnamPro-Medium.ttf"),
        (680, 700, "BeVietnamPro-Bold.ttf"),
        (850, 900, "BeVietnamPro-Black.ttf"),
    ],
)
def test_face_picks_the_nearest_weight(
    registry: FontRegistry, asked: int, weight: int, file: str
) -> None:
    face = registry.face("Be Vietnam Pro", asked)
    assert (face.family, face.weight, face.path.name) == ("Be Vietnam Pro", weight, file)
    assert not face.variable


def test_face_of_none_is_the_default_family_and_names_are_case_insensitive(
    registry: FontRegistry,
) -> None:
    assert registry.face(None, BOLD) == registry.face("Be Vietnam Pro", BOLD)
    assert registry.face("be vietnam pro", BOLD).path == registry.face("BE VIETNAM PRO", BOLD).path
    assert registry.face("noto sans khmer").family == "Noto Sans Khmer"


def test_variable_font_gets_the_asked_weight(registry: FontRegistry) -> None:
    regular, bold = registry.face("Noto Sans", REGULAR), registry.face("Noto Sans", BOLD)
    assert regular.variable and bold.variable
    assert regular.path == bold.path
    assert (regular.weight, bold.weight) == (400, 700)
    assert registry.face("Noto Sans", 650).weight == 650  # any weight, not the nearest file


def test_bold_noto_sans_run_is_wider_than_a_regular_one(registry: FontRegistry) -> None:
    regular = registry.font(registry.face("Noto Sans", REGULAR), 32)
    bold = registry.font(registry.face("Noto Sans", BOLD), 32)
    black = registry.font(registry.face("Noto Sans", 900), 32)
    assert regular is not bold
    text = "Ƀuôn Ma Thuột ĕ ŏ ŭ"
    assert regular.getlength(text) < bold.getlength(text) < black.getlength(text)


def test_bold_khmer_through_the_typesetter_is_wider(registry: FontRegistry) -> None:
    typesetter = Typesetter(registry)
    assert typesetter.width(KHMER, "Noto Sans Khmer", BOLD, 40) > typesetter.width(
        KHMER, "Noto Sans Khmer", REGULAR, 40
    )


def test_sized_fonts_are_cached_per_weight_and_size(registry: FontRegistry) -> None:
    face = registry.face("Noto Sans", 600)
    assert registry.font(face, 21) is registry.font(face, 21)
    assert registry.font(face, 21) is not registry.font(face, 22)
    assert registry.font(face, 21) is not registry.font(registry.face("Noto Sans", 500), 21)


def test_unknown_family_is_font_missing_and_names_the_known_ones(registry: FontRegistry) -> None:
    with pytest.raises(FontError) as caught:
        registry.face("Times New Roman")
    assert caught.value.code is ErrorCode.TEXT_FONT_MISSING
    assert "Times New Roman" in caught.value.message
    assert "Be Vietnam Pro" in caught.value.message
    with pytest.raises(FontError) as caught:
        registry.chain("Comic Sans", BOLD)
    assert caught.value.code is ErrorCode.TEXT_FONT_MISSING


# -- RAQM ---------------------------------------------------------------------------------------


def test_registry_loads_with_raqm_on_this_machine() -> None:
    assert features.check_feature("raqm")
    require_raqm()
    assert FontRegistry.load(SHIPPED).default_family == "Be Vietnam Pro"


def test_without_raqm_load_refuses_and_names_libfribidi0(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def check_feature(feature: str) -> bool:
        asked.append(feature)
        return False

    monkeypatch.setattr(features, "check_feature", check_feature)
    with pytest.raises(FontError) as caught:
        FontRegistry.load(SHIPPED)
    assert caught.value.code is ErrorCode.TEXT_RAQM_MISSING
    assert "libfribidi0" in caught.value.message
    assert "raqm" in asked
    with pytest.raises(FontError) as caught:
        require_raqm()
    assert caught.value.code is ErrorCode.TEXT_RAQM_MISSING


# -- malformed fonts.toml -------------------------------------------------------------------------

_NOTO = 'variable = { package = "fontpkg_noto_sans", file = "files/NotoSans[wdth,wght].ttf" }'
_KHMER = (
    'variable = { package = "fontpkg_noto_sans_khmer", '
    'file = "files/NotoSansKhmer[wdth,wght].ttf" }'
)
_BVP = '400 = { package = "fontpkg_be_vietnam_pro", file = "files/BeVietnamPro-Regular.ttf" }'


_HEAD = 'default_family = "Be Vietnam Pro"\nfallback = ["Noto Sans"]'


def _config(*, head: str = _HEAD, bvp: str | None = _BVP) -> str:
    """Return a small valid fonts.toml, with ``head`` or Be Vietnam Pro's weights replaced."""
    tables = [f'[families."Noto Sans"]\n{_NOTO}', f'[families."Noto Sans Khmer"]\n{_KHMER}']
    if bvp is not None:
        tables.insert(0, f'[families."Be Vietnam Pro"]\n{bvp}')
    return "\n".join([head, *tables]) + "\n"


def test_the_minimal_config_of_these_tests_is_valid(tmp_path: Path) -> None:
    registry = FontRegistry.load(write_config(tmp_path, _config()))
    assert registry.face(None).path.name == "BeVietnamPro-Regular.ttf"
    assert registry.fallback == ("Noto Sans",)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('default_family = "Be Vietnam Pro\n', id="toml-syntax"),
        pytest.param("families = 3\n", id="families-not-a-table"),
        pytest.param('default_family = 5\nfallback = ["Noto Sans"]', id="default-not-a-string"),
        pytest.param('fallback = "Noto Sans"', id="fallback-not-a-list"),
        pytest.param("fallback = [1, 2]", id="fallback-not-strings"),
        pytest.param("extra_dirs = [3]", id="extra-dirs-not-strings"),
        pytest.param('fallback = ["Noto Serif Ahom"]', id="fallback-family-without-files"),
        pytest.param('default_family = "Arial"', id="default-family-without-files"),
    ],
)
def test_malformed_config_head_is_font_config(tmp_path: Path, text: str) -> None:
    config = write_config(tmp_path, text if "families" in text else _config(head=text))
    with pytest.raises(FontError) as caught:
        FontRegistry.load(config)
    assert caught.value.code is ErrorCode.TEXT_FONT_CONFIG


@pytest.mark.parametrize(
    "bvp",
    [
        pytest.param('bold = { file = "x.ttf" }', id="weight-word"),
        pytest.param('0 = { file = "x.ttf" }', id="weight-zero"),
        pytest.param('1001 = { file = "x.ttf" }', id="weight-too-high"),
        pytest.param('400 = "BeVietnamPro-Regular.ttf"', id="entry-not-a-table"),
        pytest.param('400 = { package = "fontpkg_be_vietnam_pro" }', id="entry-without-file"),
        pytest.param('400 = { package = 7, file = "x.ttf" }', id="package-not-a-string"),
        pytest.param("", id="family-without-weights"),
    ],
)
def test_malformed_family_is_font_config_and_names_it(tmp_path: Path, bvp: str) -> None:
    config = write_config(tmp_path, _config(bvp=bvp))
    with pytest.raises(FontError) as caught:
        FontRegistry.load(config)
    assert caught.value.code is ErrorCode.TEXT_FONT_CONFIG
    assert caught.value.path is not None
    assert "Be Vietnam Pro" in caught.value.path


def test_config_that_is_not_there_is_font_config(tmp_path: Path) -> None:
    with pytest.raises(FontError) as caught:
        FontRegistry.load(tmp_path / "fonts.toml")
    assert caught.value.code is ErrorCode.TEXT_FONT_CONFIG
    assert caught.value.path == str(tmp_path / "fonts.toml")


@pytest.mark.parametrize("encoding", ["cp1258", "utf-16"])
def test_config_not_in_utf8_is_font_config(tmp_path: Path, encoding: str) -> None:
    # A Vietnamese comment, in the decomposed form Windows-1258 can encode.
    text = unicodedata.normalize("NFD", "# Bảng tin xã\n") + _config()
    (tmp_path / "fonts.toml").write_bytes(text.encode(encoding))
    with pytest.raises(UnicodeDecodeError):
        (tmp_path / "fonts.toml").read_text(encoding="utf-8")
    with pytest.raises(FontError) as caught:
        FontRegistry.load(tmp_path / "fonts.toml")
    assert caught.value.code is ErrorCode.TEXT_FONT_CONFIG


@pytest.mark.parametrize(
    "bvp",
    [
        pytest.param('400 = { file = "Missing-Regular.ttf" }', id="file-not-there"),
        pytest.param(
            '400 = { package = "fontpkg_not_installed_here", file = "x.ttf" }',
            id="package-not-installed",
        ),
        pytest.param(
            '400 = { package = "fontpkg_be_vietnam_pro", file = "files/Nope.ttf" }',
            id="file-not-in-package",
        ),
    ],
)
def test_missing_font_file_is_font_missing(tmp_path: Path, bvp: str) -> None:
    config = write_config(tmp_path, _config(bvp=bvp))
    with pytest.raises(FontError) as caught:
        FontRegistry.load(config)
    assert caught.value.code is ErrorCode.TEXT_FONT_MISSING


def test_package_not_installed_says_what_to_install(tmp_path: Path) -> None:
    bvp = '400 = { package = "fontpkg_not_installed_here", file = "x.ttf" }'
    with pytest.raises(FontError) as caught:
        FontRegistry.load(write_config(tmp_path, _config(bvp=bvp)))
    assert "pip install fontpkg-not-installed-here" in caught.value.message


def test_configured_file_that_is_not_a_font_is_font_missing(tmp_path: Path) -> None:
    (tmp_path / "Broken.ttf").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    config = write_config(tmp_path, _config(bvp='400 = { file = "Broken.ttf" }'))
    with pytest.raises(FontError) as caught:
        registry = FontRegistry.load(config)
        registry.font(registry.face(None), 20)
    assert caught.value.code is ErrorCode.TEXT_FONT_MISSING


# -- fonts dropped into a folder --------------------------------------------------------------


def test_dropped_font_is_used_by_its_family_name(tmp_path: Path, registry: FontRegistry) -> None:
    # The config no longer names Noto Sans Khmer: only the dropped file can provide it.
    source = registry.face("Noto Sans Khmer").path
    config = write_config(tmp_path / "fonts", shipped_without_family("Noto Sans Khmer"))
    dropped = tmp_path / "fonts" / "KhmerDropped.ttf"
    shutil.copyfile(source, dropped)

    loaded = FontRegistry.load(config)
    assert loaded.face("Noto Sans Khmer").path == dropped.resolve()
    assert loaded.face("KhmerDropped").path == dropped.resolve()  # by its file name too
    chain = loaded.chain(None, REGULAR)
    assert tuple(face.family for face in chain) == DEFAULT_CHAIN
    assert chain[2].path == dropped.resolve()
    typesetter = Typesetter(loaded)
    families = {face.family: piece for piece, face in typesetter.runs(LATIN + " និង", None, 400)}
    assert families["Noto Sans Khmer"] == "និង"
    assert typesetter.missing(KHMER, None, REGULAR) == ()


def test_dropped_font_beside_the_shipped_config_is_usable(
    tmp_path: Path, registry: FontRegistry
) -> None:
    # The shipped config, unchanged, in a folder with a dropped copy of Noto Sans Khmer.
    source = registry.face("Noto Sans Khmer").path
    shutil.copyfile(SHIPPED, tmp_path / "fonts.toml")
    dropped = tmp_path / "DroppedKhmer.ttf"
    shutil.copyfile(source, dropped)

    loaded = FontRegistry.load(tmp_path / "fonts.toml")
    assert loaded.face("DroppedKhmer").path == dropped.resolve()
    assert loaded.face("DroppedKhmer").covers("និង")
    assert "DroppedKhmer" in loaded.families()
    # A family named in fonts.toml keeps its configured file: the config is explicit.
    assert loaded.face("Noto Sans Khmer").path == source


def test_extra_dirs_argument_adds_the_fonts_of_that_folder(
    tmp_path: Path, registry: FontRegistry
) -> None:
    config = write_config(tmp_path / "config", shipped_without_family("Noto Sans Khmer"))
    extra = tmp_path / "operator-fonts"
    extra.mkdir()
    dropped = extra / "Khmer-Extra.ttf"
    shutil.copyfile(registry.face("Noto Sans Khmer").path, dropped)

    with pytest.raises(FontError) as caught:
        FontRegistry.load(config)  # without the extra folder the fallback has no files
    assert caught.value.code is ErrorCode.TEXT_FONT_CONFIG

    loaded = FontRegistry.load(config, extra_dirs=[extra])
    assert loaded.face("Noto Sans Khmer").path == dropped.resolve()
    assert loaded.face("Khmer-Extra").path == dropped.resolve()


def test_extra_dirs_of_the_config_are_relative_to_it(
    tmp_path: Path, registry: FontRegistry
) -> None:
    text = shipped_without_family("Noto Sans Khmer").replace(
        "extra_dirs = []", 'extra_dirs = ["more"]'
    )
    assert 'extra_dirs = ["more"]' in text
    config = write_config(tmp_path, text)
    (tmp_path / "more").mkdir()
    dropped = tmp_path / "more" / "NotoSansKhmer-Copy.ttf"
    shutil.copyfile(registry.face("Noto Sans Khmer").path, dropped)
    assert FontRegistry.load(config).face("Noto Sans Khmer").path == dropped.resolve()


def test_files_that_are_not_fonts_in_the_folder_are_ignored(tmp_path: Path) -> None:
    shutil.copyfile(SHIPPED, tmp_path / "fonts.toml")
    (tmp_path / "Broken.ttf").write_bytes(b"\x00\x01\x00\x00 truncated")
    (tmp_path / "readme.txt").write_text("not a font", encoding="utf-8")
    loaded = FontRegistry.load(tmp_path / "fonts.toml")
    assert "Broken" not in loaded.families()
    assert tuple(face.family for face in loaded.chain(None)) == DEFAULT_CHAIN


def test_dropped_variable_font_gets_weight_from_its_axis(
    tmp_path: Path, registry: FontRegistry
) -> None:
    config = write_config(tmp_path, shipped_without_family("Noto Sans Khmer"))
    dropped = tmp_path / "KhmerDropped.ttf"
    shutil.copyfile(registry.face("Noto Sans Khmer").path, dropped)
    loaded = FontRegistry.load(config)
    assert loaded.face("Noto Sans Khmer", BOLD).path == dropped.resolve()
    typesetter = Typesetter(loaded)
    assert typesetter.width(KHMER, "Noto Sans Khmer", BOLD, 40) > typesetter.width(
        KHMER, "Noto Sans Khmer", REGULAR, 40
    )
    assert loaded.face("Noto Sans Khmer", BOLD).variable


def test_dropped_family_with_italics_keeps_upright_regular_and_bold(
    tmp_path: Path, registry: FontRegistry
) -> None:
    # Be Vietnam Pro is not in this config: it comes only from the four dropped files.
    config = write_config(tmp_path, _config(bvp=None))
    folder = registry.face(None).path.parent
    names = ["BoldItalic", "Bold", "Italic", "Regular"]
    for style in names:
        shutil.copyfile(
            folder / f"BeVietnamPro-{style}.ttf", tmp_path / f"BeVietnamPro-{style}.ttf"
        )
    loaded = FontRegistry.load(config)
    assert loaded.face("Be Vietnam Pro", BOLD).path.name == "BeVietnamPro-Bold.ttf"
    assert loaded.face("Be Vietnam Pro", REGULAR).path.name == "BeVietnamPro-Regular.ttf"
