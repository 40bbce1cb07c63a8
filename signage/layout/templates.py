"""Layout templates (``layouts/*.json``) and their resolution into a Scene of positioned boxes.

A template lists the item fields it uses and a few variants; the first variant whose ``when``
matches the screen's size and aspect is used. A variant is a tree of regions split along rows or
columns in relative sizes with optional pixel minimums; leaves hold one box each. See
docs/layouts.md for the format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from signage.errors import ContentError, ErrorCode, LayoutError
from signage.layout.geometry import Rect, Size
from signage.model import FieldValue
from signage.text import TextStyle

BOARD_THINGS = frozenset({"@logo"})  # when_field values that ask about the board, not the item
BOX_KINDS = frozenset({"text", "image", "clock", "qr", "ticker", "logo", "banner"})
FIELD_TYPES = frozenset({"text", "image", "enum", "datetime", "url"})
_WHEN_KEYS = frozenset(
    {"min_width", "max_width", "min_height", "max_height", "min_aspect", "max_aspect"}
)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")

VAlign = Literal["top", "middle", "bottom"]
Fit = Literal["contain", "cover", "stretch"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field a template reads from an item: its type, whether required, allowed values."""

    name: str
    type: str
    required: bool
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Background:
    """A fill: a colour, a two-colour gradient, or an image from an item field."""

    color: str | None = None
    gradient: tuple[str, str] | None = None
    vertical: bool = True
    image_field: str | None = None
    dim: float = 0.0


@dataclass(frozen=True, slots=True)
class BoxStyle:
    """A box's resolved style in pixels and concrete colours."""

    text: TextStyle
    color: str
    align: Literal["left", "center", "right"]
    valign: VAlign
    fill: str | None
    padding: int
    fit: Fit
    show: tuple[str, ...]
    overflow: Literal["ellipsis", "ticker"]


@dataclass(frozen=True, slots=True)
class PlacedBox:
    """A box of the scene: where it is, what it shows and how.

    ``field`` names the item field it shows (already mapped for included templates); ``text`` is
    a fixed string with placeholders such as ``{board_name}`` and ``{date}``.
    """

    name: str
    kind: str
    rect: Rect
    field: str | None
    text: str | None
    style: BoxStyle


@dataclass(frozen=True, slots=True)
class Fill:
    """A background area of the scene."""

    rect: Rect
    background: Background


@dataclass(frozen=True, slots=True)
class Scene:
    """A template laid out for one screen size: backgrounds then boxes, in drawing order."""

    size: Size
    template: str
    variant: str
    fills: tuple[Fill, ...]
    boxes: tuple[PlacedBox, ...]


@dataclass(frozen=True, slots=True)
class _BoxSpec:
    name: str
    kind: str
    field: str | None
    text: str | None
    optional: bool
    style: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Region:
    name: str
    size: float | None  # None: share what the sized siblings leave
    min_px: int
    max_px: int
    padding: float
    direction: Literal["row", "column"]
    background: Mapping[str, Any] | None
    box: _BoxSpec | None
    children: tuple[_Region, ...]
    when_field: str | None  # region collapses when this item field is absent


@dataclass(frozen=True, slots=True)
class _Include:
    template: str
    edge: Literal["top", "bottom"]
    size: float
    min_px: int
    bind: Mapping[str, str]  # field of the included template -> item field


@dataclass(frozen=True, slots=True)
class Variant:
    """One arrangement of a template, used when ``when`` matches the screen."""

    name: str
    when: Mapping[str, float]
    margin: float
    margin_min_px: int
    background: Mapping[str, Any]
    root: _Region
    includes: tuple[_Include, ...]

    def matches(self, size: Size) -> bool:
        """Return True when every condition of ``when`` holds for ``size``."""
        checks = {
            "min_width": size.width >= self.when.get("min_width", 0),
            "max_width": size.width <= self.when.get("max_width", 1e9),
            "min_height": size.height >= self.when.get("min_height", 0),
            "max_height": size.height <= self.when.get("max_height", 1e9),
            "min_aspect": size.aspect >= self.when.get("min_aspect", 0),
            "max_aspect": size.aspect <= self.when.get("max_aspect", 1e9),
        }
        return all(checks.values())


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed layout template."""

    name: str
    description: str
    fields: Mapping[str, FieldSpec]
    variants: tuple[Variant, ...]
    palette: Mapping[str, str]
    theme_field: str | None
    themes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def variant_for(self, size: Size) -> Variant:
        """Return the first variant that matches ``size`` (the last one if none does)."""
        for variant in self.variants:
            if variant.matches(size):
                return variant
        return self.variants[-1]

    def check(self, fields: Mapping[str, FieldValue]) -> None:
        """Return None when ``fields`` suit this template; raise ContentError naming the field.

        Required fields must be present, text and image fields must be strings, enum fields one
        of their values, datetime fields ISO 8601 with an offset.
        """
        for spec in self.fields.values():
            path = f"fields.{spec.name}"
            value = fields.get(spec.name)
            if value is None:
                if spec.required:
                    raise ContentError(
                        ErrorCode.CONTENT_INVALID,
                        f"required by template {self.name!r} but missing",
                        path=path,
                    )
                continue
            if not isinstance(value, str):
                raise ContentError(ErrorCode.CONTENT_INVALID, "expected a string", path=path)
            if not value.strip() and spec.type != "enum":  # enums list their values below
                if spec.required:
                    raise ContentError(ErrorCode.CONTENT_INVALID, "must not be empty", path=path)
                continue  # an empty optional field is the same as an absent one
            if spec.type == "enum" and value not in spec.values:
                allowed = ", ".join(spec.values)
                raise ContentError(
                    ErrorCode.CONTENT_INVALID,
                    f"expected one of {allowed}, got {value!r}",
                    path=path,
                )
            if spec.type == "datetime":
                try:
                    moment = datetime.fromisoformat(value)
                except ValueError:
                    moment = None
                if moment is None or moment.tzinfo is None:
                    raise ContentError(
                        ErrorCode.CONTENT_INVALID,
                        "expected an ISO 8601 time with offset such as 2026-11-21T18:00:00+07:00",
                        path=path,
                    )

    def colours(self, fields: Mapping[str, FieldValue]) -> Mapping[str, str]:
        """Return the palette for ``fields``: the base palette with the matching theme over it."""
        palette = dict(self.palette)
        if self.theme_field is not None:
            value = fields.get(self.theme_field)
            palette.update(self.themes.get(str(value), self.themes.get("default", {})))
        return palette


class LayoutLibrary:
    """The templates of a ``layouts/`` folder, parsed once and kept."""

    def __init__(self, templates: Mapping[str, Template]) -> None:
        self._templates = dict(templates)

    @classmethod
    def load(cls, folder: Path) -> LayoutLibrary:
        """Return the library of every ``*.json`` template in ``folder``.

        Raises LayoutError (layout.invalid) naming the file and path of a malformed template.
        """
        templates: dict[str, Template] = {}
        files: dict[str, Path] = {}
        for path in sorted(folder.glob("*.json")):
            template = parse_template(path)
            templates[template.name] = template
            files[template.name] = path
        for template in templates.values():
            for i, variant in enumerate(template.variants):
                for j, inc in enumerate(variant.includes):
                    if inc.template not in templates:
                        raise LayoutError(
                            ErrorCode.LAYOUT_INVALID,
                            f"includes unknown template {inc.template!r}",
                            path=f"{files[template.name].name}: "
                            f"variants[{i}].include[{j}].template",
                        )
        return cls(templates)

    def names(self) -> list[str]:
        """Return the template names, sorted."""
        return sorted(self._templates)

    def get(self, name: str) -> Template:
        """Return the template ``name``; raise LayoutError (layout.unknown) listing known names."""
        template = self._templates.get(name)
        if template is None:
            raise LayoutError(
                ErrorCode.LAYOUT_UNKNOWN,
                f"unknown layout template {name!r} (known: {', '.join(self.names())})",
            )
        return template

    def lay_out(
        self,
        name: str,
        size: Size,
        fields: Mapping[str, FieldValue],
        board_has: frozenset[str] = frozenset(),
    ) -> Scene:
        """Return template ``name`` laid out for a ``size`` screen showing ``fields``.

        Boxes whose optional field is absent are left out; included strips (the ticker) take
        their edge only when their field is present; regions with ``when_field: "@logo"`` only
        when ``board_has`` contains ``"logo"``. Raises LayoutError for an unknown template.
        """
        present = {k: v for k, v in fields.items() if v not in (None, "")}
        present.update({f"@{thing}": True for thing in board_has})
        template = self.get(name)
        variant = template.variant_for(size)
        fills: list[Fill] = []
        boxes: list[PlacedBox] = []
        full = Rect(0, 0, size.width, size.height)
        fills.append(Fill(full, _background(variant.background, template.colours(fields))))
        margin = max(variant.margin_min_px, round(variant.margin * size.vmin))
        area = full.inset(margin)
        for inc in variant.includes:
            bound = inc.bind.values()
            if not all(fields.get(f) for f in bound):
                continue
            height = min(area.height // 2, max(inc.min_px, round(inc.size * size.height)))
            if inc.edge == "bottom":
                strip = Rect(0, area.bottom - height + margin, size.width, height)
                area = Rect(area.x, area.y, area.width, area.height - height)
            else:
                strip = Rect(0, area.y - margin, size.width, height)
                area = Rect(area.x, area.y + height, area.width, area.height - height)
            inner = self.lay_out_region(inc.template, strip, fields, inc.bind)
            fills.extend(inner.fills)
            boxes.extend(inner.boxes)
        colours = template.colours(fields)
        _place(variant.root, area, size, present, colours, {}, fills, boxes)
        return Scene(size, template.name, variant.name, tuple(fills), tuple(boxes))

    def lay_out_region(
        self, name: str, rect: Rect, fields: Mapping[str, FieldValue], bind: Mapping[str, str]
    ) -> Scene:
        """Return template ``name`` laid out inside ``rect`` of a larger screen.

        ``bind`` maps the included template's field names to the item's (``text`` -> ``ticker``).
        """
        template = self.get(name)
        size = rect.size
        variant = template.variant_for(size)
        local = {k: fields[v] for k, v in bind.items() if v in fields}
        colours = template.colours(local)
        fills = [Fill(rect, _background(variant.background, colours))]
        boxes: list[PlacedBox] = []
        margin = max(variant.margin_min_px, round(variant.margin * size.vmin))
        _place(variant.root, rect.inset(margin), size, local, colours, bind, fills, boxes)
        return Scene(size, template.name, variant.name, tuple(fills), tuple(boxes))


def _place(
    region: _Region,
    rect: Rect,
    screen: Size,
    fields: Mapping[str, FieldValue],
    colours: Mapping[str, str],
    bind: Mapping[str, str],
    fills: list[Fill],
    boxes: list[PlacedBox],
) -> None:
    if region.background is not None:
        fills.append(Fill(rect, _background(region.background, colours)))
    pad = round(region.padding * screen.vmin)
    inner = rect.inset(pad)
    if region.box is not None:
        spec = region.box
        if not (spec.optional and spec.field and not fields.get(spec.field)):
            style = _box_style(spec.style, screen, colours)
            field_name = bind.get(spec.field, spec.field) if spec.field else None
            boxes.append(PlacedBox(spec.name, spec.kind, inner, field_name, spec.text, style))
    children = [c for c in region.children if c.when_field is None or fields.get(c.when_field)]
    if not children:
        return
    horizontal = region.direction == "row"
    length = inner.width if horizontal else inner.height
    sizes = _split(children, length)
    offset = inner.x if horizontal else inner.y
    for child, extent in zip(children, sizes, strict=True):
        if horizontal:
            part = Rect(offset, inner.y, extent, inner.height)
        else:
            part = Rect(inner.x, offset, inner.width, extent)
        offset += extent
        _place(child, part, screen, fields, colours, bind, fills, boxes)


def _split(children: Sequence[_Region], length: int) -> list[int]:
    """Return each child's extent: sized ones max(rel, min_px) capped, fill ones share the rest."""
    fixed: dict[int, int] = {}
    for i, child in enumerate(children):
        if child.size is not None:
            extent = max(child.min_px, round(child.size * length))
            fixed[i] = min(extent, child.max_px) if child.max_px else extent
    total_fixed = sum(fixed.values())
    if total_fixed > length:
        scale = length / total_fixed
        fixed = {i: int(v * scale) for i, v in fixed.items()}
        total_fixed = sum(fixed.values())
    fill_count = len(children) - len(fixed)
    rest = max(0, length - total_fixed)
    out: list[int] = []
    handed = 0
    fill_seen = 0
    for i in range(len(children)):
        if i in fixed:
            out.append(fixed[i])
        else:
            fill_seen += 1
            share = rest * fill_seen // fill_count - handed
            handed += share
            out.append(share)
    return out


def _colour(value: object, colours: Mapping[str, str], where: str = "") -> str:
    text = str(value)
    if text.startswith("$"):
        resolved = colours.get(text[1:])
        if resolved is None:
            raise LayoutError(
                ErrorCode.LAYOUT_INVALID, f"unknown palette colour {text}", path=where
            )
        return resolved
    return text


def _background(spec: Mapping[str, Any], colours: Mapping[str, str]) -> Background:
    gradient = spec.get("gradient")
    return Background(
        color=_colour(spec["color"], colours) if "color" in spec else None,
        gradient=(_colour(gradient[0], colours), _colour(gradient[1], colours))
        if gradient
        else None,
        vertical=spec.get("direction", "vertical") == "vertical",
        image_field=spec.get("image_field"),
        dim=float(spec.get("dim", 0.0)),
    )


def _box_style(spec: Mapping[str, Any], screen: Size, colours: Mapping[str, str]) -> BoxStyle:
    rel_min, rel_max = spec.get("size", [2.0, 8.0])
    floor = int(spec.get("min_px", 10))
    min_size = max(floor, round(rel_min * screen.vmin))
    max_size = max(min_size, round(rel_max * screen.vmin))
    text = TextStyle(
        family=spec.get("family"),
        weight=int(spec.get("weight", 400)),
        min_size=min_size,
        max_size=max_size,
        max_lines=int(spec.get("max_lines", 0)),
        line_spacing=float(spec.get("line_spacing", 1.1)),
        wrap=bool(spec.get("wrap", True)),
    )
    return BoxStyle(
        text=text,
        color=_colour(spec.get("color", "$fg"), colours),
        align=spec.get("align", "left"),
        valign=spec.get("valign", "top"),
        fill=_colour(spec["fill"], colours) if "fill" in spec else None,
        padding=round(float(spec.get("padding", 0.0)) * screen.vmin),
        fit=spec.get("fit", "contain"),
        show=tuple(spec.get("show", ("time", "date", "lunar"))),
        overflow=spec.get("overflow", "ellipsis"),
    )


# -- parsing ----------------------------------------------------------------------------------


class _Reader:
    """Checks a template's JSON with errors that name the file and the path inside it."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, path: str, message: str) -> LayoutError:
        return LayoutError(ErrorCode.LAYOUT_INVALID, message, path=f"{self.file.name}: {path}")

    def obj(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected an object")
        return value

    def keys(self, value: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in value:
            if key not in allowed:
                raise self.fail(f"{path}.{key}" if path else key, "unknown key")

    def number(self, value: object, path: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, "expected a number")
        if not low <= value <= high:
            raise self.fail(path, f"expected a number in {low}..{high}")
        return float(value)

    def colour(self, value: object, path: str, palette: Mapping[str, str]) -> None:
        if not isinstance(value, str):
            raise self.fail(path, "expected a colour such as #1A2B3C or $fg")
        if value.startswith("$"):
            if value[1:] not in palette:
                raise self.fail(path, f"unknown palette colour {value}")
        elif not _COLOUR.fullmatch(value):
            raise self.fail(path, "expected a colour such as #1A2B3C or $fg")


def parse_template(path: Path) -> Template:
    """Return the template in ``path``; raise LayoutError (layout.invalid) naming what is wrong."""
    reader = _Reader(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise reader.fail("(file)", f"cannot read template: {exc}") from exc
    data = reader.obj(raw, "(top)")
    reader.keys(
        data, "", {"name", "description", "fields", "palette", "theme_field", "themes", "variants"}
    )
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise reader.fail("name", "expected a lower-case name such as news-photo")
    if name != path.stem:
        raise reader.fail("name", f"must equal the file name {path.stem!r}")
    fields: dict[str, FieldSpec] = {}
    for fname, fspec in reader.obj(data.get("fields", {}), "fields").items():
        fobj = reader.obj(fspec, f"fields.{fname}")
        reader.keys(fobj, f"fields.{fname}", {"type", "required", "values"})
        ftype = fobj.get("type", "text")
        if ftype not in FIELD_TYPES:
            raise reader.fail(f"fields.{fname}.type", f"expected one of {sorted(FIELD_TYPES)}")
        values = tuple(str(v) for v in fobj.get("values", ()))
        fields[fname] = FieldSpec(fname, ftype, bool(fobj.get("required", False)), values)
    palette = {str(k): str(v) for k, v in reader.obj(data.get("palette", {}), "palette").items()}
    themes = {
        str(k): {str(a): str(b) for a, b in reader.obj(v, f"themes.{k}").items()}
        for k, v in reader.obj(data.get("themes", {}), "themes").items()
    }
    for key, value in palette.items():
        reader.colour(value, f"palette.{key}", {})
    for theme, entries in themes.items():
        for key, value in entries.items():
            where = f"themes.{theme}.{key}"
            if key not in palette:
                raise reader.fail(where, "a theme may only override colours of the palette")
            reader.colour(value, where, {})
    everything = palette  # themes only override, so a $name valid here is valid in every theme
    theme_field = data.get("theme_field")
    if theme_field is not None and theme_field not in fields:
        raise reader.fail("theme_field", f"{theme_field!r} is not one of the template's fields")
    raw_variants = data.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise reader.fail("variants", "expected a non-empty list")
    variants = tuple(
        _parse_variant(reader, v, f"variants[{i}]", everything, set(fields))
        for i, v in enumerate(raw_variants)
    )
    return Template(
        name=name,
        description=str(data.get("description", "")),
        fields=MappingProxyType(fields),
        variants=variants,
        palette=MappingProxyType(palette),
        theme_field=theme_field,
        themes=MappingProxyType(themes),
    )


def _parse_variant(
    reader: _Reader, raw: object, path: str, palette: Mapping[str, str], fields: set[str]
) -> Variant:
    data = reader.obj(raw, path)
    reader.keys(data, path, {"name", "when", "margin", "background", "region", "include"})
    when = reader.obj(data.get("when", {}), f"{path}.when")
    for key, value in when.items():
        if key not in _WHEN_KEYS:
            raise reader.fail(f"{path}.when.{key}", f"expected one of {sorted(_WHEN_KEYS)}")
        reader.number(value, f"{path}.when.{key}", 0, 1e6)
    margin = reader.obj(data.get("margin", {}), f"{path}.margin")
    background = reader.obj(data.get("background", {"color": "$bg"}), f"{path}.background")
    _check_background(reader, background, f"{path}.background", palette, fields)
    includes = []
    for i, inc in enumerate(data.get("include", [])):
        ipath = f"{path}.include[{i}]"
        iobj = reader.obj(inc, ipath)
        reader.keys(iobj, ipath, {"template", "edge", "size", "min_px", "bind"})
        bind = {str(k): str(v) for k, v in reader.obj(iobj.get("bind", {}), ipath).items()}
        edge = iobj.get("edge", "bottom")
        if edge not in ("top", "bottom"):
            raise reader.fail(f"{ipath}.edge", "expected top or bottom")
        includes.append(
            _Include(
                template=str(iobj.get("template")),
                edge=edge,
                size=reader.number(iobj.get("size", 0.08), f"{ipath}.size", 0, 0.5),
                min_px=int(reader.number(iobj.get("min_px", 0), f"{ipath}.min_px", 0, 4096)),
                bind=MappingProxyType(bind),
            )
        )
    return Variant(
        name=str(data.get("name", path)),
        when=MappingProxyType({k: float(v) for k, v in when.items()}),
        margin=reader.number(margin.get("rel", 2.0), f"{path}.margin.rel", 0, 25),
        margin_min_px=int(reader.number(margin.get("min_px", 0), f"{path}.margin.min_px", 0, 512)),
        background=MappingProxyType(background),
        root=_parse_region(reader, data.get("region"), f"{path}.region", palette, fields),
        includes=tuple(includes),
    )


def _check_background(
    reader: _Reader,
    data: Mapping[str, Any],
    path: str,
    palette: Mapping[str, str],
    fields: set[str],
) -> None:
    reader.keys(data, path, {"color", "gradient", "direction", "image_field", "dim"})
    if "color" in data:
        reader.colour(data["color"], f"{path}.color", palette)
    if "gradient" in data:
        gradient = data["gradient"]
        if not isinstance(gradient, list) or len(gradient) != 2:
            raise reader.fail(f"{path}.gradient", "expected two colours")
        for i, value in enumerate(gradient):
            reader.colour(value, f"{path}.gradient[{i}]", palette)
    if data.get("direction", "vertical") not in ("vertical", "horizontal"):
        raise reader.fail(f"{path}.direction", "expected vertical or horizontal")
    if "image_field" in data and data["image_field"] not in fields:
        raise reader.fail(f"{path}.image_field", "not one of the template's fields")
    if "dim" in data:
        reader.number(data["dim"], f"{path}.dim", 0, 1)


_STYLE_KEYS = {
    "family",
    "weight",
    "size",
    "min_px",
    "max_lines",
    "line_spacing",
    "wrap",
    "color",
    "align",
    "valign",
    "fill",
    "padding",
    "fit",
    "show",
    "overflow",
}


def _parse_region(
    reader: _Reader, raw: object, path: str, palette: Mapping[str, str], fields: set[str]
) -> _Region:
    data = reader.obj(raw, path)
    reader.keys(
        data,
        path,
        {
            "name",
            "size",
            "min_px",
            "max_px",
            "padding",
            "direction",
            "background",
            "box",
            "regions",
            "when_field",
        },
    )
    size = data.get("size")
    if size is not None:
        size = reader.number(size, f"{path}.size", 0, 1)
    direction = data.get("direction", "column")
    if direction not in ("row", "column"):
        raise reader.fail(f"{path}.direction", "expected row or column")
    background = data.get("background")
    if background is not None:
        background = reader.obj(background, f"{path}.background")
        _check_background(reader, background, f"{path}.background", palette, fields)
    box = None
    if "box" in data:
        box = _parse_box(reader, data["box"], f"{path}.box", palette, fields)
    raw_children = data.get("regions", [])
    if not isinstance(raw_children, list):
        raise reader.fail(f"{path}.regions", "expected a list")
    children = tuple(
        _parse_region(reader, c, f"{path}.regions[{i}]", palette, fields)
        for i, c in enumerate(raw_children)
    )
    when_field = data.get("when_field")
    if when_field is not None and when_field not in fields and when_field not in BOARD_THINGS:
        raise reader.fail(f"{path}.when_field", "not one of the template's fields")
    return _Region(
        name=str(data.get("name", "")),
        size=size,
        min_px=int(reader.number(data.get("min_px", 0), f"{path}.min_px", 0, 8192)),
        max_px=int(reader.number(data.get("max_px", 0), f"{path}.max_px", 0, 8192)),
        padding=reader.number(data.get("padding", 0), f"{path}.padding", 0, 25),
        direction=direction,
        background=MappingProxyType(background) if background is not None else None,
        box=box,
        children=children,
        when_field=when_field,
    )


def _parse_box(
    reader: _Reader, raw: object, path: str, palette: Mapping[str, str], fields: set[str]
) -> _BoxSpec:
    data = reader.obj(raw, path)
    reader.keys(data, path, {"name", "kind", "field", "text", "optional", "style"})
    kind = data.get("kind")
    if kind not in BOX_KINDS:
        raise reader.fail(f"{path}.kind", f"expected one of {sorted(BOX_KINDS)}")
    field_name = data.get("field")
    if field_name is not None and field_name not in fields:
        raise reader.fail(f"{path}.field", f"{field_name!r} is not one of the template's fields")
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise reader.fail(f"{path}.text", "expected a string")
    if kind in ("text", "ticker", "banner", "image", "qr") and field_name is None and text is None:
        raise reader.fail(path, f"a {kind} box needs a field or a text")
    style = reader.obj(data.get("style", {}), f"{path}.style")
    reader.keys(style, f"{path}.style", _STYLE_KEYS)
    for key in ("color", "fill"):
        if key in style:
            reader.colour(style[key], f"{path}.style.{key}", palette)
    if "size" in style:
        size = style["size"]
        if not isinstance(size, list) or len(size) != 2:
            raise reader.fail(f"{path}.style.size", "expected [min, max] in vmin units")
        low = reader.number(size[0], f"{path}.style.size[0]", 0.1, 100)
        high = reader.number(size[1], f"{path}.style.size[1]", 0.1, 100)
        if low > high:
            raise reader.fail(f"{path}.style.size", "min is larger than max")
    if style.get("align", "left") not in ("left", "center", "right"):
        raise reader.fail(f"{path}.style.align", "expected left, center or right")
    if style.get("valign", "top") not in ("top", "middle", "bottom"):
        raise reader.fail(f"{path}.style.valign", "expected top, middle or bottom")
    if style.get("fit", "contain") not in ("contain", "cover", "stretch"):
        raise reader.fail(f"{path}.style.fit", "expected contain, cover or stretch")
    if style.get("overflow", "ellipsis") not in ("ellipsis", "ticker"):
        raise reader.fail(f"{path}.style.overflow", "expected ellipsis or ticker")
    if "weight" in style:
        reader.number(style["weight"], f"{path}.style.weight", 100, 1000)
    return _BoxSpec(
        name=str(data.get("name", kind)),
        kind=kind,
        field=field_name,
        text=text,
        optional=bool(data.get("optional", False)),
        style=MappingProxyType(style),
    )
