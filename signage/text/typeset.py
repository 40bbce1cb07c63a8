"""Typesetting: font runs with per-character fallback, line breaking, auto-fit and drawing.

Text is normalised to NFC, cut into extended grapheme clusters (a base letter with all its
marks), and each cluster is set in the first face of the chain that has all of its code points.
Lines break at spaces, after hyphens and dashes and at ``\\n``; a word longer than the line breaks
between clusters, never inside one. Nothing is added to the text except an ellipsis where it is
truncated.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import regex
from PIL import ImageDraw

from signage.errors import ErrorCode, SignageError
from signage.lru import LRU
from signage.text.fonts import REGULAR, FontFace, FontRegistry

ELLIPSIS = "…"
# Reference text whose ink sets the minimum line box: a capital with stacked marks, a dot below
# and a descender, so spacing is the same for every Vietnamese line whatever its letters.
_REFERENCE = "Ẫ Ỗ gỵ"
_DASHES = frozenset("-\u2010\u2012\u2013\u2014\u2015")
# No-break spaces glue numbers and names ("1 000 000 đồng"): never a line break.
_NO_BREAK = frozenset("\u00a0\u2007\u202f\u2060")
_CLUSTER = regex.compile(r"\X")
_CACHE_SIZE = 4096
_REFERENCE_SIZE = 64  # px: the size at which auto-fit measures before settling

Align = Literal["left", "center", "right"]


@dataclass(frozen=True, slots=True)
class Run:
    """A stretch of one line set in one face: what is drawn and how wide it is (px)."""

    text: str
    face: FontFace
    size: int
    width: float


@dataclass(frozen=True, slots=True)
class Line:
    """One laid-out line: its runs, total advance width (px) and the text it shows."""

    runs: tuple[Run, ...]
    width: float

    @property
    def text(self) -> str:
        """Return the line's characters as shown."""
        return "".join(run.text for run in self.runs)


@dataclass(frozen=True, slots=True)
class TextStyle:
    """How a box sets its text: family, weight, size range in px, line limit and spacing."""

    family: str | None = None
    weight: int = REGULAR
    min_size: int = 12
    max_size: int = 72
    max_lines: int = 0  # 0 = as many as fit
    line_spacing: float = 1.1
    wrap: bool = True


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Text laid out for a box: lines, the chosen size, vertical metrics and what went wrong.

    ``ascent`` and ``descent`` come from the real ink of the glyphs (stacked marks included);
    ``pitch`` is the distance between baselines; ``height`` the block's total height.
    ``missing`` lists characters no font of the chain has (drawn as missing-glyph boxes).
    """

    lines: tuple[Line, ...]
    size: int
    ascent: int
    descent: int
    pitch: int
    truncated: bool
    missing: tuple[str, ...]

    @property
    def height(self) -> int:
        """Return the block's height in px from the top of the first line to the last descent."""
        if not self.lines:
            return 0
        return self.ascent + self.descent + (len(self.lines) - 1) * self.pitch

    @property
    def width(self) -> float:
        """Return the width of the widest line in px."""
        return max((line.width for line in self.lines), default=0.0)

    def errors(self) -> list[SignageError]:
        """Return the errors to report for this block (missing glyphs), possibly none."""
        if not self.missing:
            return []
        chars = " ".join(f"U+{ord(c):04X}" for c in self.missing)
        return [
            SignageError(
                ErrorCode.TEXT_GLYPH_MISSING,
                f"no configured font has a glyph for {chars}; add a font that has it to fonts/",
            )
        ]


@dataclass(frozen=True, slots=True)
class _Segment:
    """An unbreakable piece of a paragraph, with its trailing spaces (which may hang)."""

    body: str
    tail: str  # trailing whitespace, dropped at the end of a line


def clusters(text: str) -> list[str]:
    """Return ``text`` cut into extended grapheme clusters."""
    return list(_CLUSTER.findall(text))


class Typesetter:
    """Lays out and draws text with a :class:`FontRegistry`; caches measurements and layouts."""

    def __init__(self, registry: FontRegistry) -> None:
        self.registry = registry
        self._widths: LRU[float] = LRU(_CACHE_SIZE * 8)
        self._blocks: LRU[TextBlock] = LRU(_CACHE_SIZE)
        self._runs: LRU[tuple[tuple[str, FontFace], ...]] = LRU(_CACHE_SIZE)
        self._extents: LRU[tuple[int, int]] = LRU(_CACHE_SIZE * 4)

    # -- runs -----------------------------------------------------------------------------

    def runs(self, text: str, family: str | None, weight: int) -> tuple[tuple[str, FontFace], ...]:
        """Return ``text`` split into (text, face) pieces by font coverage.

        Each cluster goes to the first face of the chain that has all its code points (in NFC,
        else in NFD); a cluster no face has stays in the primary face and shows a missing glyph.
        """
        key = ("runs", text, family, weight)
        cached = self._runs.get(key)
        if cached is not None:
            return cached
        chain = self.registry.chain(family, weight)
        pieces: list[tuple[str, FontFace]] = []
        for cluster in clusters(text):
            piece, face = self._place(cluster, chain, pieces)
            if pieces and pieces[-1][1] == face:
                pieces[-1] = (pieces[-1][0] + piece, face)
            else:
                pieces.append((piece, face))
        result = tuple(pieces)
        self._runs.put(key, result)
        return result

    @staticmethod
    def _place(
        cluster: str, chain: Sequence[FontFace], before: list[tuple[str, FontFace]]
    ) -> tuple[str, FontFace]:
        if cluster.isspace():
            # Spaces join the run they follow so they never force a font switch.
            return cluster, before[-1][1] if before else chain[0]
        for face in chain:
            if face.covers(cluster):
                return cluster, face
        decomposed = unicodedata.normalize("NFD", cluster)
        for face in chain:
            if face.covers(decomposed):
                return decomposed, face
        return cluster, chain[0]

    def missing(self, text: str, family: str | None, weight: int) -> tuple[str, ...]:
        """Return the characters of ``text`` that no face of the chain can show, in order."""
        out: list[str] = []
        for piece, face in self.runs(text, family, weight):
            for ch in piece:
                if not face.covers(ch) and not ch.isspace() and ch not in out:
                    out.append(ch)
        return tuple(out)

    # -- measuring ------------------------------------------------------------------------

    def width(self, text: str, family: str | None, weight: int, size: int) -> float:
        """Return the advance width in px of ``text`` set on one line at ``size``."""
        key = (text, family, weight, size)
        cached = self._widths.get(key)
        if cached is not None:
            return cached
        total = 0.0
        for piece, face in self.runs(text, family, weight):
            total += self.registry.font(face, size).getlength(piece)
        self._widths.put(key, total)
        return total

    def line(self, text: str, family: str | None, weight: int, size: int) -> Line:
        """Return ``text`` as one :class:`Line` at ``size`` (no breaking)."""
        runs = tuple(
            Run(piece, face, size, self.registry.font(face, size).getlength(piece))
            for piece, face in self.runs(text, family, weight)
        )
        return Line(runs, sum(r.width for r in runs))

    def extents(
        self, lines: Sequence[Line], family: str | None, weight: int, size: int
    ) -> tuple[int, int]:
        """Return (ascent, descent) in px: the ink of ``lines`` and of the reference text."""
        key = ("ref", family, weight, size)
        ref = self._extents.get(key)
        if ref is None:
            ref = self._ink(self.line(_REFERENCE, family, weight, size))
            self._extents.put(key, ref)
        ascent, descent = ref
        for line in lines:
            a, d = self._ink(line)
            ascent, descent = max(ascent, a), max(descent, d)
        return ascent, descent

    def _ink(self, line: Line) -> tuple[int, int]:
        ascent = descent = 0
        for run in line.runs:
            if run.text.isspace():
                continue
            key = ("ink", run.text, run.face.path, run.face.weight, run.size)
            cached = self._extents.get(key)
            if cached is None:
                font = self.registry.font(run.face, run.size)
                _, top, _, bottom = font.getbbox(run.text, anchor="ls")
                cached = (int(-top), int(bottom))
                self._extents.put(key, cached)
            a, d = cached
            ascent, descent = max(ascent, a), max(descent, d)
        return ascent, descent

    # -- breaking and fitting -------------------------------------------------------------

    def fit(self, text: str, style: TextStyle, width: int, height: int) -> TextBlock:
        """Return ``text`` laid out in a ``width`` x ``height`` box at the largest size that fits.

        The size is searched in [style.min_size, style.max_size]. Above the minimum a size only
        fits when no word has to break inside itself. If the text cannot fit at the minimum, it is
        truncated at a cluster boundary with an ellipsis and the block is marked truncated.
        """
        text = unicodedata.normalize("NFC", text)
        key = (text, style, width, height)
        cached = self._blocks.get(key)
        if cached is not None:
            return cached
        low, high = max(1, style.min_size), max(style.min_size, style.max_size)
        # Search with widths measured once at a reference size and scaled (text advances are
        # close to linear in size), then settle on the exact size with real measurements. This
        # opens a handful of sized fonts per box instead of one per probed size: each sized font
        # holds its own copy of the shaping tables, megabytes for Noto Sans.
        lo, hi, guess = low, high, 0
        while lo <= hi:
            mid = (lo + hi) // 2
            if self._fits_estimate(text, style, width, height, mid):
                guess, lo = mid, mid + 1
            else:
                hi = mid - 1
        best: TextBlock | None = None
        size = max(low, guess)
        while best is None and size >= low and guess:
            best = self._try(text, style, width, height, size, allow_split=False)
            size -= 1
        while best is not None and best.size < high:
            larger = self._try(text, style, width, height, best.size + 1, allow_split=False)
            if larger is None:
                break
            best = larger
        if best is None:
            best = self._try(text, style, width, height, style.min_size, allow_split=True)
        if best is None:
            best = self._truncate(text, style, width, height, style.min_size)
        self._blocks.put(key, best)
        return best

    def _fits_estimate(
        self, text: str, style: TextStyle, width: int, height: int, size: int
    ) -> bool:
        """Return whether ``text`` probably fits at ``size``, from reference-size widths."""
        fam, wt = style.family, style.weight
        scale = size / _REFERENCE_SIZE

        def wide(piece: str) -> float:
            return self.width(piece, fam, wt, _REFERENCE_SIZE) * scale

        lines = 0
        for paragraph in text.split("\n"):
            if not style.wrap:
                lines += 1
                if wide(paragraph.strip()) > width:
                    return False
                continue
            current, count = "", 0
            for seg in _segments(paragraph):
                candidate = current + seg.body
                if wide(candidate) <= width:
                    current = candidate + seg.tail
                    continue
                if current.strip():
                    count += 1
                if wide(seg.body) > width:
                    return False  # a word would have to break inside itself
                current = seg.body + seg.tail
            if current.strip() or not count or not paragraph.strip():
                count += 1
            lines += count
        if style.max_lines and lines > style.max_lines:
            return False
        ascent, descent = self.extents(
            [self.line(text.replace("\n", " "), fam, wt, _REFERENCE_SIZE)],
            fam,
            wt,
            _REFERENCE_SIZE,
        )
        tall = (ascent + descent) * scale
        return tall + (lines - 1) * tall * style.line_spacing <= height

    def _try(
        self, text: str, style: TextStyle, width: int, height: int, size: int, allow_split: bool
    ) -> TextBlock | None:
        lines = self._wrap(text, style, width, size, allow_split)
        if lines is None:
            return None
        if style.max_lines and len(lines) > style.max_lines:
            return None
        if any(line.width > width for line in lines):
            return None  # only unwrapped lines can be wider than the box
        block = self._block(lines, style, size, truncated=False, text=text)
        return block if block.height <= height else None

    def _block(
        self, lines: Sequence[Line], style: TextStyle, size: int, truncated: bool, text: str
    ) -> TextBlock:
        ascent, descent = self.extents(lines, style.family, style.weight, size)
        pitch = round((ascent + descent) * style.line_spacing)
        missing = self.missing(text, style.family, style.weight)
        return TextBlock(tuple(lines), size, ascent, descent, pitch, truncated, missing)

    def _wrap(
        self, text: str, style: TextStyle, width: int, size: int, allow_split: bool
    ) -> list[Line] | None:
        """Return the lines of ``text`` at ``size``; None if a word must split and may not."""
        fam, wt = style.family, style.weight
        out: list[Line] = []
        for paragraph in text.split("\n"):
            if not style.wrap:
                out.append(self.line(paragraph.strip(), fam, wt, size))
                continue
            current = ""
            for seg in _segments(paragraph):
                candidate = current + seg.body
                if self.width(candidate, fam, wt, size) <= width:
                    current = candidate + seg.tail
                    continue
                if current.strip():
                    out.append(self.line(_rstrip_breakable(current), fam, wt, size))
                current = ""
                body = seg.body
                while self.width(body, fam, wt, size) > width:
                    if not allow_split:
                        return None
                    head, body = self._split(body, fam, wt, size, width)
                    out.append(self.line(head, fam, wt, size))
                current = body + seg.tail
            if current.strip() or not out or not paragraph.strip():
                out.append(self.line(_rstrip_breakable(current), fam, wt, size))
        return out

    def _split(self, word: str, fam: str | None, wt: int, size: int, width: int) -> tuple[str, str]:
        """Return (head, rest): the most clusters of ``word`` that fit ``width`` (at least one)."""
        parts = clusters(word)
        lo, hi = 1, len(parts) - 1
        best = 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if self.width("".join(parts[:mid]), fam, wt, size) <= width:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return "".join(parts[:best]), "".join(parts[best:])

    def _truncate(
        self, text: str, style: TextStyle, width: int, height: int, size: int
    ) -> TextBlock:
        lines = self._wrap(text, style, width, size, allow_split=True) or []
        probe = self._block(lines[:1], style, size, truncated=True, text=text)
        room = 1 + max(0, (height - probe.ascent - probe.descent) // max(1, probe.pitch))
        keep = max(1, min(len(lines), room, style.max_lines or room))
        while True:
            # Later lines may have deeper ink (Khmer subscripts) than the first: shrink until
            # the block really fits, keeping at least one line.
            kept = [
                line if line.width <= width else self._with_ellipsis(line.text, style, width, size)
                for line in lines[:keep]
            ]
            if keep < len(lines) or not kept:
                last = kept[-1].text if kept else ""
                last = last.removesuffix(ELLIPSIS)
                kept = [*kept[:-1], self._with_ellipsis(last, style, width, size)]
            block = self._block(kept, style, size, truncated=True, text=text)
            if block.height <= height or keep <= 1:
                return block
            keep -= 1

    def _with_ellipsis(self, text: str, style: TextStyle, width: int, size: int) -> Line:
        parts = clusters(text.rstrip())
        while parts:
            candidate = "".join(parts).rstrip() + ELLIPSIS
            if self.width(candidate, style.family, style.weight, size) <= width:
                return self.line(candidate, style.family, style.weight, size)
            parts.pop()
        return self.line(ELLIPSIS, style.family, style.weight, size)

    # -- drawing --------------------------------------------------------------------------

    def draw(
        self,
        draw: ImageDraw.ImageDraw,
        block: TextBlock,
        origin: tuple[int, int],
        box_width: int,
        fill: str | tuple[int, ...],
        align: Align = "left",
    ) -> None:
        """Draw ``block`` with its first line's ink top at ``origin``, aligned in ``box_width``."""
        x0, y0 = origin
        baseline = y0 + block.ascent
        for line in block.lines:
            if align == "center":
                x = x0 + (box_width - line.width) / 2
            elif align == "right":
                x = x0 + box_width - line.width
            else:
                x = float(x0)
            for run in line.runs:
                font = self.registry.font(run.face, run.size)
                draw.text((x, baseline), run.text, font=font, fill=fill, anchor="ls")
                x += run.width
            baseline += block.pitch


def _breakable_space(cluster: str) -> bool:
    return cluster.isspace() and cluster not in _NO_BREAK


def _rstrip_breakable(text: str) -> str:
    """Return ``text`` without the breakable spaces at its end (no-break spaces stay)."""
    end = len(text)
    while end and _breakable_space(text[end - 1]):
        end -= 1
    return text[:end]


def _segments(paragraph: str) -> list[_Segment]:
    """Return the unbreakable pieces of ``paragraph``: breaks follow spaces, hyphens and dashes."""
    out: list[_Segment] = []
    body, tail = "", ""
    for cluster in clusters(paragraph):
        if _breakable_space(cluster):
            tail += cluster
            continue
        if tail:
            out.append(_Segment(body, tail))
            body, tail = "", ""
        body += cluster
        if cluster in _DASHES and len(body) > 1:
            out.append(_Segment(body, ""))
            body = ""
    if body or tail:
        out.append(_Segment(body, tail))
    return out
