"""Font registry: families, weights, the fallback chain, coverage, and sized Pillow fonts.

Configured by ``fonts/fonts.toml``. Fonts are opened from their files directly, so a font an
operator drops into ``fonts/`` works without being installed in the operating system. Shaping is
always Pillow's RAQM layout (HarfBuzz + FriBiDi); the BASIC layout breaks NFD Vietnamese and
stacked marks, so the registry refuses to start without RAQM rather than fall back to it.
"""

from __future__ import annotations

import importlib.util
import threading
import tomllib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import uharfbuzz
from PIL import ImageFont, features

from signage.errors import ErrorCode, FontError

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
REGULAR = 400
BOLD = 700
_FONT_CACHE_SIZE = 96  # sized fonts kept open; each holds its shaping tables

# Name-table style words and the weight they stand for, for fonts dropped into a folder.
_STYLE_WEIGHTS = {
    "thin": 100,
    "extralight": 200,
    "ultralight": 200,
    "light": 300,
    "regular": 400,
    "normal": 400,
    "book": 400,
    "medium": 500,
    "semibold": 600,
    "demibold": 600,
    "bold": 700,
    "extrabold": 800,
    "ultrabold": 800,
    "black": 900,
    "heavy": 900,
}


@dataclass(frozen=True, slots=True)
class FontFace:
    """One usable face: a family at a weight, backed by a file.

    ``variable`` faces are set to ``weight`` on their wght axis when a sized font is made.
    ``coverage`` is the set of code points the file maps to glyphs.
    """

    family: str
    weight: int
    path: Path
    variable: bool
    coverage: frozenset[int]

    def covers(self, text: str) -> bool:
        """Return True when every code point of ``text`` (ignorables aside) has a glyph."""
        return all(ord(ch) in self.coverage or _ignorable(ch) for ch in text)


def _ignorable(ch: str) -> bool:
    # Joiners, variation selectors and the BOM are format characters that shape to nothing.
    cp = ord(ch)
    return cp in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF) or 0xFE00 <= cp <= 0xFE0F


def require_raqm() -> None:
    """Return None when Pillow can shape text with RAQM.

    Raises FontError (text.raqm_missing) when it cannot.
    """
    if not features.check_feature("raqm"):
        raise FontError(
            ErrorCode.TEXT_RAQM_MISSING,
            "Pillow cannot shape text: its RAQM layout needs the system library libfribidi0 "
            "(install it: apt-get install -y libfribidi0). Vietnamese would render wrongly "
            "without it, so the board refuses to start.",
        )


@dataclass(frozen=True, slots=True)
class _FamilySpec:
    name: str
    files: Mapping[int, Path]  # weight -> file; key 0 marks a variable font


class FontRegistry:
    """Families, the fallback chain and a bounded cache of sized fonts.

    Build it with :meth:`load`. Thread-safe: sized fonts are created under a lock.
    """

    def __init__(
        self,
        families: Mapping[str, _FamilySpec],
        default_family: str,
        fallback: Iterable[str],
    ) -> None:
        self._families = dict(families)
        self.default_family = default_family
        self.fallback = tuple(fallback)
        self._coverage: dict[Path, frozenset[int]] = {}
        self._faces: dict[tuple[str, int], FontFace] = {}
        self._fonts: OrderedDict[tuple[Path, int, int], ImageFont.FreeTypeFont] = OrderedDict()
        self._lock = threading.Lock()
        for name in (default_family, *self.fallback):
            if name.casefold() not in self._families:
                raise FontError(
                    ErrorCode.TEXT_FONT_CONFIG,
                    f"family {name!r} is named in fonts.toml but has no files",
                    path="fonts.toml",
                )

    @classmethod
    def load(cls, config: Path, extra_dirs: Iterable[Path] = ()) -> FontRegistry:
        """Return a registry built from ``config`` (fonts.toml) and the font files beside it.

        Fonts in the config's folder, its ``extra_dirs`` and ``extra_dirs`` given here are added
        by their own family names. Raises FontError: text.raqm_missing without RAQM,
        text.font_config for a malformed config, text.font_missing for a file that is not there.
        """
        require_raqm()
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise FontError(
                ErrorCode.TEXT_FONT_CONFIG, f"cannot read font registry: {exc}", path=str(config)
            ) from exc
        families: dict[str, _FamilySpec] = {}
        folders = [config.parent]
        folders += [config.parent / str(d) for d in _list_of_str(data, "extra_dirs", config)]
        folders += list(extra_dirs)
        for folder in folders:
            for spec in _discover(folder):
                families.setdefault(spec.name.casefold(), spec)
        table = data.get("families", {})
        if not isinstance(table, dict):
            raise FontError(
                ErrorCode.TEXT_FONT_CONFIG, "[families] must be a table", path=str(config)
            )
        for name, weights in table.items():
            families[name.casefold()] = _family_from_config(name, weights, config)
        default = data.get("default_family", "Be Vietnam Pro")
        if not isinstance(default, str):
            raise FontError(
                ErrorCode.TEXT_FONT_CONFIG, "default_family must be a string", path=str(config)
            )
        return cls(families, default, _list_of_str(data, "fallback", config))

    def families(self) -> list[str]:
        """Return the names of every known family, sorted."""
        return sorted(spec.name for spec in self._families.values())

    def face(self, family: str | None, weight: int = REGULAR) -> FontFace:
        """Return the face of ``family`` (default family if None) nearest to ``weight``.

        Raises FontError (text.font_missing) for an unknown family.
        """
        name = family or self.default_family
        key = (name.casefold(), weight)
        cached = self._faces.get(key)
        if cached is not None:
            return cached
        spec = self._families.get(name.casefold())
        if spec is None:
            known = ", ".join(self.families())
            raise FontError(
                ErrorCode.TEXT_FONT_MISSING, f"unknown font family {name!r} (known: {known})"
            )
        if 0 in spec.files:
            path, variable, chosen = spec.files[0], True, weight
        else:
            chosen = min(spec.files, key=lambda w: (abs(w - weight), -w))
            path, variable = spec.files[chosen], False
        face = FontFace(spec.name, chosen, path, variable, self._coverage_of(path))
        self._faces[key] = face
        return face

    def chain(self, family: str | None, weight: int = REGULAR) -> tuple[FontFace, ...]:
        """Return the faces to try in order: ``family`` then the fallbacks, at ``weight``."""
        primary = self.face(family, weight)
        rest = [self.face(name, weight) for name in self.fallback]
        return (primary, *(f for f in rest if f.path != primary.path))

    def font(self, face: FontFace, size: int) -> ImageFont.FreeTypeFont:
        """Return a Pillow font for ``face`` at ``size`` pixels, shaped with RAQM (cached)."""
        key = (face.path, face.weight if face.variable else 0, size)
        with self._lock:
            font = self._fonts.get(key)
            if font is not None:
                self._fonts.move_to_end(key)
                return font
            font = ImageFont.truetype(str(face.path), size, layout_engine=ImageFont.Layout.RAQM)
            if face.variable:
                _set_weight(font, face.weight)
            self._fonts[key] = font
            if len(self._fonts) > _FONT_CACHE_SIZE:
                self._fonts.popitem(last=False)
            return font

    def _coverage_of(self, path: Path) -> frozenset[int]:
        cached = self._coverage.get(path)
        if cached is None:
            try:
                face = uharfbuzz.Face(uharfbuzz.Blob.from_file_path(str(path)))
                cached = frozenset(face.unicodes)
                ImageFont.truetype(str(path), 12)  # what drawing will do; raises for junk
            except Exception as exc:  # uharfbuzz and FreeType raise plain exceptions
                raise FontError(
                    ErrorCode.TEXT_FONT_MISSING, f"cannot read font file: {exc}", path=str(path)
                ) from exc
            if not cached:
                # uharfbuzz gives an empty face for a file that is not a font (an LFS pointer).
                raise FontError(
                    ErrorCode.TEXT_FONT_MISSING,
                    "not a usable font file (it maps no characters)",
                    path=str(path),
                )
            self._coverage[path] = cached
        return cached


def _set_weight(font: ImageFont.FreeTypeFont, weight: int) -> None:
    axes = font.get_variation_axes()
    values: list[float] = []
    for axis in axes:
        low, high, default = axis["minimum"] or 0, axis["maximum"] or 0, axis["default"] or 0
        values.append(max(low, min(high, weight)) if _axis_label(axis) == "weight" else default)
    font.set_variation_by_axes(values)


def _has_weight_axis(font: ImageFont.FreeTypeFont) -> bool:
    try:
        axes = font.get_variation_axes()
    except OSError:
        return False  # not a variable font
    return any(_axis_label(axis) == "weight" for axis in axes)


def _axis_label(axis: Mapping[str, object]) -> str:
    name = axis["name"]
    return (name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)).lower()


def _list_of_str(data: Mapping[str, object], key: str, config: Path) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FontError(
            ErrorCode.TEXT_FONT_CONFIG, f"{key} must be a list of strings", path=str(config)
        )
    return [str(v) for v in value]


def _family_from_config(name: str, weights: object, config: Path) -> _FamilySpec:
    where = f"{config}: families.{name}"
    if not isinstance(weights, dict) or not weights:
        raise FontError(ErrorCode.TEXT_FONT_CONFIG, "expected a table of weights", path=where)
    files: dict[int, Path] = {}
    for key, entry in weights.items():
        if key == "variable":
            weight = 0
        elif key.isdigit() and 1 <= int(key) <= 1000:
            weight = int(key)
        else:
            raise FontError(
                ErrorCode.TEXT_FONT_CONFIG,
                f"weight {key!r} must be a number 1..1000 or 'variable'",
                path=where,
            )
        files[weight] = _file_from_entry(entry, config, f"{where}.{key}")
    return _FamilySpec(name, files)


def _file_from_entry(entry: object, config: Path, where: str) -> Path:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise FontError(ErrorCode.TEXT_FONT_CONFIG, "expected { file = ... }", path=where)
    package = entry.get("package")
    if package is None:
        base = config.parent
    elif isinstance(package, str):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FontError(
                ErrorCode.TEXT_FONT_MISSING,
                f"font package {package!r} is not installed (pip install "
                f"{package.replace('_', '-')})",
                path=where,
            )
        base = Path(next(iter(spec.submodule_search_locations)))
    else:
        raise FontError(ErrorCode.TEXT_FONT_CONFIG, "package must be a string", path=where)
    path = (base / str(entry["file"])).resolve()
    if not path.is_file():
        raise FontError(ErrorCode.TEXT_FONT_MISSING, f"font file not found: {path}", path=where)
    return path


def _discover(folder: Path) -> list[_FamilySpec]:
    """Return the families of the font files directly inside ``folder`` (none if absent)."""
    found: dict[str, dict[int, Path]] = {}
    names: dict[str, str] = {}
    if not folder.is_dir():
        return []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in FONT_SUFFIXES or not path.is_file():
            continue
        try:
            font = ImageFont.truetype(str(path), 12)
            family, style = font.getname()
        except OSError:
            continue  # not a font we can open: diagnostics report it, playback ignores it
        family = family or path.stem
        words = (style or "regular").lower().replace("-", " ").split()
        if "italic" in words or "oblique" in words:
            continue  # an upright face is what boards show; italics would take its slot
        key = family.casefold()
        names.setdefault(key, family)
        weight = _STYLE_WEIGHTS.get("".join(words), REGULAR)
        if _has_weight_axis(font):
            weight = 0  # a variable font: every weight comes from its wght axis
        found.setdefault(key, {}).setdefault(weight, path.resolve())
        # The file stem is a second name, so layouts can name a dropped file directly.
        stem_key = path.stem.casefold()
        if stem_key != key:
            names.setdefault(stem_key, path.stem)
            found.setdefault(stem_key, {}).setdefault(REGULAR, path.resolve())
    return [_FamilySpec(names[k], v) for k, v in found.items()]
