"""Building the composition stack from the shipped folders and rendering items to files.

``signage render`` and ``signage samples`` use this; the player builds the same objects.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from signage.compose import BoardInfo, Composer, Frame, folder_assets
from signage.errors import ContentError, ErrorCode, UsageError
from signage.layout import ROTATIONS, LayoutLibrary, Size
from signage.model import Item, board_timezone, load_item_json
from signage.resources import data_dir
from signage.text import FontRegistry, Typesetter

SAMPLE_SIZES = (Size(1920, 1080), Size(1080, 1920), Size(192, 96))


@dataclass(frozen=True, slots=True)
class Stack:
    """The composition stack and how long each part took to get ready (seconds)."""

    composer: Composer
    fonts_ready_s: float
    layouts_ready_s: float


def build_stack(
    fonts_config: Path | None = None,
    layouts: Path | None = None,
    extra_font_dirs: Iterable[Path] = (),
) -> Stack:
    """Return a ready Composer from fonts.toml and a layouts folder (the shipped ones by default).

    Raises FontError when fonts or RAQM are unusable and LayoutError for a malformed template.
    """
    started = time.perf_counter()
    registry = FontRegistry.load(fonts_config or data_dir("fonts") / "fonts.toml", extra_font_dirs)
    # Open the default chain now so the first slide does not pay for it.
    for face in registry.chain(None, 400) + registry.chain(None, 700):
        registry.font(face, 32)
    fonts_ready = time.perf_counter() - started
    started = time.perf_counter()
    library = LayoutLibrary.load(layouts or data_dir("layouts"))
    layouts_ready = time.perf_counter() - started
    return Stack(Composer(Typesetter(registry), library), fonts_ready, layouts_ready)


def parse_moment(text: str | None, tz_name: str | None = None) -> datetime:
    """Return ``text`` (ISO 8601) as an aware time, naive times in the board's zone; now if None.

    Raises UsageError for a time that does not parse.
    """
    tz = board_timezone(tz_name)
    if text is None:
        return datetime.now(tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(
            ErrorCode.USAGE,
            f"--at: expected ISO 8601 such as 2026-11-21T08:00:00+07:00, got {text!r}",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def read_item(path: Path) -> Item:
    """Return the item in the JSON file ``path``; raise ContentError naming the file and field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ContentError(
            ErrorCode.CONTENT_JSON, f"cannot read item file: {exc.strerror}", path=str(path)
        ) from exc
    try:
        return load_item_json(raw)
    except ContentError as exc:
        where = f"{path}: {exc.path}" if exc.path else str(path)
        raise ContentError(exc.code, exc.message, path=where) from exc


def render_item(
    composer: Composer,
    item: Item,
    size: Size,
    at: datetime,
    *,
    item_dir: Path,
    layout: str | None = None,
    rotate: int = 0,
    board: BoardInfo | None = None,
) -> Frame:
    """Return ``item`` composed with template ``layout`` (the item's own if None).

    Image fields are file names relative to ``item_dir``. Raises UsageError for a rotation that
    is not 0/90/180/270, LayoutError and ContentError as Composer.render does.
    """
    if rotate not in ROTATIONS:
        raise UsageError(ErrorCode.USAGE, f"--rotate must be one of 0, 90, 180, 270 (got {rotate})")
    if layout is not None and layout != item.template:
        item = dataclasses.replace(item, template=layout)
    return composer.render(item, size, at, board or BoardInfo(), folder_assets(item_dir), rotate)


def save_frame(frame: Frame, out: Path, report: Path | None = None) -> None:
    """Write the frame as PNG to ``out`` and its report as JSON to ``report`` (if given).

    Both are written to a temporary name and renamed, so a reader never sees half a file.
    """
    _write_atomically(out, lambda part: frame.image.save(part, format="PNG", compress_level=6))
    if report is not None:
        text = json.dumps(frame.report(), ensure_ascii=False, indent=2)
        _write_atomically(report, lambda part: part.write_text(text, encoding="utf-8"))


def _write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Write ``target`` through a temporary file renamed over it; raise UsageError for a folder."""
    if target.is_dir():
        raise UsageError(
            ErrorCode.USAGE, "is a folder; give a file name such as slide.png", path=str(target)
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        write(partial)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def sample_items() -> list[Path]:
    """Return the sample item files shipped in ``layouts/samples/``, one or more per template."""
    return sorted((data_dir("layouts") / "samples").glob("*.json"))


def render_samples(
    composer: Composer,
    out_dir: Path,
    at: datetime,
    board: BoardInfo,
    sizes: Iterable[Size] = SAMPLE_SIZES,
) -> list[tuple[Path, Frame]]:
    """Render every sample item at every size into ``out_dir``; return (png, frame) pairs.

    Each PNG gets its report beside it (same name, .json).
    """
    written: list[tuple[Path, Frame]] = []
    for item_path in sample_items():
        item = read_item(item_path)
        for size in sizes:
            frame = render_item(composer, item, size, at, item_dir=item_path.parent, board=board)
            png = out_dir / f"{item_path.stem}-{size.width}x{size.height}.png"
            save_frame(frame, png, png.with_suffix(".json"))
            written.append((png, frame))
    return written
