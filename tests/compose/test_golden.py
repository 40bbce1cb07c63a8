"""Golden images: every template (sample item) at 1920x1080, 1080x1920 and 192x96.

Set SIGNAGE_UPDATE_GOLDEN=1 to rewrite the stored images after a deliberate change, then look
at every changed PNG before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from signage.board.slides import SAMPLE_SIZES, read_item, render_item, sample_items
from signage.compose import BoardInfo, Composer
from tests.conftest import FIXED_NOW, REPO

GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("SIGNAGE_UPDATE_GOLDEN") == "1"
# Anti-aliasing may differ slightly between FreeType/Pillow builds; layout changes may not.
MEAN_TOLERANCE = 0.6  # mean absolute difference per channel, 0..255
PIXEL_TOLERANCE = 0.003  # share of pixels allowed to differ by more than 64 in some channel

CASES = [(path, size) for path in sample_items() for size in SAMPLE_SIZES]


def _id(case: tuple[Path, object]) -> str:
    path, size = case
    return f"{path.stem}-{size.width}x{size.height}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_golden(
    case: tuple[Path, object], composer: Composer, board: BoardInfo, tmp_path: Path
) -> None:
    path, size = case
    item = read_item(path)
    frame = render_item(composer, item, size, FIXED_NOW, item_dir=path.parent, board=board)  # type: ignore[arg-type]
    assert not frame.errors, frame.errors
    golden = GOLDEN / f"{_id(case)}.png"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        frame.image.save(golden, optimize=True)
        return
    assert golden.exists(), f"no golden image {golden.name}: run with SIGNAGE_UPDATE_GOLDEN=1"
    expected = Image.open(golden).convert("RGB")
    actual = frame.image.convert("RGB")
    assert actual.size == expected.size
    diff = ImageChops.difference(actual, expected)
    mean = sum(ImageStat.Stat(diff).mean) / 3
    strong = diff.convert("L").point(lambda v: 255 if v > 64 else 0)
    share = ImageStat.Stat(strong).mean[0] / 255
    if mean > MEAN_TOLERANCE or share > PIXEL_TOLERANCE:
        actual.save(tmp_path / "actual.png")
        diff.save(tmp_path / "diff.png")
        pytest.fail(
            f"{golden.name} differs: mean {mean:.3f} (max {MEAN_TOLERANCE}), "
            f"strong pixels {share:.4%} (max {PIXEL_TOLERANCE:.2%}); see {tmp_path}"
        )
