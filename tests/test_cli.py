"""The ``signage`` command: render and samples, in-process and through the console script."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from signage.board.slides import read_item
from signage.cli import main
from tests.conftest import REPO, SAMPLES

AT = "2026-11-21T08:30:00+07:00"
SAMPLE_SIZES = ["1920x1080", "1080x1920", "192x96"]
SAMPLE_STEMS = sorted(p.stem for p in SAMPLES.glob("*.json"))
CHECKER = REPO / ".." / "shared" / "checks" / "check-render-report"
BIN = Path(sys.executable).parent


def _render_args(out: Path, *extra: str, item: Path | None = None) -> list[str]:
    return [
        "render",
        "--layout",
        "announcement",
        "--item",
        str(item or SAMPLES / "announcement.json"),
        "--size",
        "1920x1080",
        "--at",
        AT,
        "--out",
        str(out),
        *extra,
    ]


def _check_report_shape(report: dict[str, Any], size: list[int]) -> None:
    assert report["size"] == size
    assert isinstance(report["boxes"], list)
    assert report["boxes"]
    for box in report["boxes"]:
        assert isinstance(box["name"], str)
        assert box["name"]
        assert isinstance(box["kind"], str)
        rect = box["rect"]
        assert isinstance(rect, list)
        assert len(rect) == 4
        assert all(isinstance(v, int) for v in rect)
        assert rect[2] > 0
        assert rect[3] > 0
        assert isinstance(box["truncated"], bool)
        assert isinstance(box["errors"], list)
        assert isinstance(box["lines"], list)
        for line in box["lines"]:
            assert isinstance(line["text"], str)
            assert isinstance(line["width"], int | float)
            assert line["width"] >= 0
            assert line["runs"]
            assert "".join(run["text"] for run in line["runs"]) == line["text"]
            for run in line["runs"]:
                assert isinstance(run["text"], str)
                font = Path(run["font_file"])
                assert font.is_absolute(), font
                assert font.is_file(), font
                assert isinstance(run["font_size"], int)
                assert run["font_size"] > 0


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("signage: error:"), err
    return lines[0]


# -- render -----------------------------------------------------------------------------------


def test_render_writes_png_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, report_path = tmp_path / "slide.png", tmp_path / "report.json"
    assert main(_render_args(out, "--report", str(report_path))) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (1920, 1080)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    _check_report_shape(report, [1920, 1080])
    assert report["template"] == "announcement"
    assert report["variant"] == "landscape"
    assert report["rotate"] == 0
    boxes = {box["name"]: box for box in report["boxes"]}
    assert {"title", "body", "board", "date", "ticker", "qr"} <= boxes.keys()
    item = read_item(SAMPLES / "announcement.json")
    shown = "".join(line["text"] for line in boxes["ticker"]["lines"])
    assert boxes["ticker"]["kind"] == "ticker"
    assert shown == item.fields["ticker"]
    assert boxes["date"]["lines"][0]["text"] == "Thứ Bảy, 21/11/2026"
    assert not any(box["errors"] for box in report["boxes"])
    assert not list(tmp_path.glob("*.part"))


def test_render_without_report_writes_only_the_png(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "er" / "slide.png"
    assert main(_render_args(out)) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["slide.png"]


def test_render_rotated(tmp_path: Path) -> None:
    out, report_path = tmp_path / "slide.png", tmp_path / "report.json"
    assert main(_render_args(out, "--rotate", "90", "--report", str(report_path))) == 0
    with Image.open(out) as image:
        assert image.size == (1920, 1080)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["size"] == [1920, 1080]
    assert report["content_size"] == [1080, 1920]
    assert report["rotate"] == 90
    assert report["variant"] == "portrait"


def test_render_layout_overrides_the_items_template(tmp_path: Path) -> None:
    out, report_path = tmp_path / "slide.png", tmp_path / "report.json"
    args = _render_args(out, "--report", str(report_path))
    args[args.index("announcement")] = "text-only"
    assert main(args) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["template"] == "text-only"
    assert {box["name"] for box in report["boxes"]} == {"body", "ticker"}


def test_render_clock_at_a_naive_time_uses_the_board_zone(tmp_path: Path) -> None:
    out, report_path = tmp_path / "clock.png", tmp_path / "clock.json"
    args = _render_args(out, "--report", str(report_path), item=SAMPLES / "clock.json")
    args[args.index("announcement")] = "clock"
    args[args.index(AT)] = "2026-11-21T08:30:00"
    assert main([*args, "--board-name", "UBND xã Ea Ktur"]) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    boxes = {box["name"]: box for box in report["boxes"]}
    assert boxes["clock"]["kind"] == "clock"
    assert [line["text"] for line in boxes["clock"]["lines"]] == [
        "08:30",
        "Thứ Bảy, 21/11/2026",
        "Âm lịch 13/10 Bính Ngọ",
    ]
    assert boxes["board"]["lines"][0]["text"] == "UBND xã Ea Ktur"


def test_render_warns_but_succeeds_for_a_missing_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = tmp_path / "photo.json"
    item.write_text(
        json.dumps(
            {
                "id": "x",
                "template": "fullscreen-image",
                "fields": {"image": "khong-co.jpg"},
            }
        ),
        encoding="utf-8",
    )
    out, report_path = tmp_path / "slide.png", tmp_path / "report.json"
    args = _render_args(out, "--report", str(report_path), item=item)
    args[args.index("announcement")] = "fullscreen-image"
    assert main(args) == 0
    assert out.is_file()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("signage: warning:")
    assert "asset.missing" in err[0]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    (image_box,) = [b for b in report["boxes"] if b["kind"] == "image"]
    assert [e["code"] for e in image_box["errors"]] == ["asset.missing"]


def test_console_script_renders(tmp_path: Path) -> None:
    script = BIN / "signage"
    assert script.is_file(), f"console script missing: {script}"
    out, report_path = tmp_path / "slide.png", tmp_path / "report.json"
    result = subprocess.run(
        [str(script), *_render_args(out, "--report", str(report_path))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    with Image.open(out) as image:
        assert image.size == (1920, 1080)
    _check_report_shape(json.loads(report_path.read_text(encoding="utf-8")), [1920, 1080])


def test_console_script_reports_errors_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "signage"), *_render_args(tmp_path / "x.png", "--rotate", "45")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert "--rotate" in line
    assert not (tmp_path / "x.png").exists()


# -- render errors ----------------------------------------------------------------------------


def _bad_item(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


ERROR_CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "unknown layout",
        ["--layout", "bulletin"],
        ["'bulletin'", "announcement", "news-photo", "[layout.unknown]"],
    ),
    ("bad rotate", ["--rotate", "45"], ["--rotate", "0, 90, 180, 270", "45", "[usage]"]),
    ("negative rotate", ["--rotate", "-90"], ["--rotate", "[usage]"]),
    ("bad at", ["--at", "hôm qua"], ["--at", "ISO 8601", "'hôm qua'", "[usage]"]),
    ("bad at date", ["--at", "2026-13-45T08:00:00"], ["--at", "[usage]"]),
    ("bad timezone", ["--timezone", "Asia/Sai_Gon"], ["Asia/Sai_Gon"]),
]


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_render_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragments: list[str]
) -> None:
    out = tmp_path / "slide.png"
    args = _render_args(out)
    # Later options win in argparse, so extra ones replace the defaults above.
    assert main([*args, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _one_error_line(captured.err)
    for fragment in fragments:
        assert fragment in line
    assert not out.exists()


def test_render_invalid_item_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    item = _bad_item(tmp_path, "broken.json", '{"id": "x",\n "template": "announcement",\n')
    out = tmp_path / "slide.png"
    assert main(_render_args(out, item=item)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "broken.json" in line
    assert "invalid JSON" in line
    assert "line" in line
    assert line.endswith("[content.json]")
    assert not out.exists()


def test_render_item_failing_validation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    item = _bad_item(
        tmp_path,
        "no-body.json",
        json.dumps({"id": "x", "template": "announcement", "fields": {"title": "Tiêu đề"}}),
    )
    out = tmp_path / "slide.png"
    assert main(_render_args(out, item=item)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "fields.body" in line
    assert line.endswith("[content.invalid]")
    assert not out.exists()


def test_render_item_with_a_bad_field_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = {"headline": "Bão", "description": "Gió mạnh", "severity": "Apocalyptic"}
    item = _bad_item(
        tmp_path,
        "alert.json",
        json.dumps({"id": "x", "template": "emergency", "fields": fields}),
    )
    args = _render_args(tmp_path / "slide.png", item=item)
    args[args.index("announcement")] = "emergency"
    assert main(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "fields.severity" in line
    assert "Extreme" in line


def test_render_item_with_a_malformed_field_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = _bad_item(
        tmp_path,
        "upper.json",
        json.dumps({"id": "x", "template": "announcement", "fields": {"Title": "T", "body": "B"}}),
    )
    assert main(_render_args(tmp_path / "slide.png", item=item)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "upper.json" in line
    assert "fields.Title" in line


def test_render_missing_item_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "khong-co.json"
    out = tmp_path / "slide.png"
    assert main(_render_args(out, item=missing)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(missing) in line
    assert "No such file" in line
    assert not out.exists()


def test_render_item_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_render_args(tmp_path / "slide.png", item=tmp_path)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(tmp_path) in line


def test_render_malformed_layouts_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    (layouts / "announcement.json").write_text('{"name": "announcement"', encoding="utf-8")
    assert main([*_render_args(tmp_path / "slide.png"), "--layouts", str(layouts)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "announcement.json" in line
    assert "[layout.invalid]" in line


@pytest.mark.parametrize(
    ("size", "fragment"),
    [
        ("big", "expected WIDTHxHEIGHT"),
        ("1920", "expected WIDTHxHEIGHT"),
        ("12x12", "outside 16..16384"),
        ("20000x1080", "outside 16..16384"),
    ],
)
def test_render_bad_size_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str, fragment: str
) -> None:
    args = _render_args(tmp_path / "slide.png")
    args[args.index("1920x1080")] = size
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("signage render: error: argument --size:")
    assert fragment in last
    assert not (tmp_path / "slide.png").exists()


def test_render_missing_required_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["render", "--layout", "announcement"])
    assert caught.value.code == 2
    assert "required" in capsys.readouterr().err


def test_render_to_an_unwritable_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    assert main(_render_args(blocker / "slide.png")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(blocker) in line


def test_render_out_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "slides"
    folder.mkdir()
    assert main(_render_args(folder)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert ".part" not in line
    assert not list(tmp_path.glob("*.part"))


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert capsys.readouterr().err


# -- samples ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("samples")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["samples", "--out", str(out), "--at", AT])
    assert code == 0
    return out, printed.getvalue()


def test_samples_writes_one_png_and_report_per_item_and_size(
    samples_run: tuple[Path, str],
) -> None:
    out, printed = samples_run
    written = {p.name for p in out.iterdir()}
    assert written == {
        f"{stem}-{size}{ext}"
        for stem in SAMPLE_STEMS
        for size in SAMPLE_SIZES
        for ext in (".png", ".json")
    }
    count = len(SAMPLE_STEMS) * len(SAMPLE_SIZES)
    assert printed.splitlines()[0].startswith(f"Rendered {count} sample slides")
    for size in SAMPLE_SIZES:
        assert size in printed.splitlines()[0]


@pytest.mark.parametrize("size", SAMPLE_SIZES)
@pytest.mark.parametrize("stem", SAMPLE_STEMS)
def test_sample_png_and_report_agree(samples_run: tuple[Path, str], stem: str, size: str) -> None:
    out, _ = samples_run
    width, height = (int(v) for v in size.split("x"))
    with Image.open(out / f"{stem}-{size}.png") as image:
        assert image.size == (width, height)
    report = json.loads((out / f"{stem}-{size}.json").read_text(encoding="utf-8"))
    _check_report_shape(report, [width, height])
    assert report["template"] == read_item(SAMPLES / f"{stem}.json").template
    assert not [e for box in report["boxes"] for e in box["errors"]]
    for box in report["boxes"]:
        x, y, w, h = box["rect"]
        assert x >= 0, box["name"]
        assert y >= 0, box["name"]
        assert x + w <= width, box["name"]
        assert y + h <= height, box["name"]


def test_sample_reports_list_clock_and_ticker_boxes_with_lines(
    samples_run: tuple[Path, str],
) -> None:
    out, _ = samples_run
    for size in SAMPLE_SIZES:
        clock = json.loads((out / f"clock-{size}.json").read_text(encoding="utf-8"))
        (box,) = [b for b in clock["boxes"] if b["kind"] == "clock"]
        assert len(box["lines"]) == 3
        assert box["lines"][0]["text"] == "08:30"
        ticker = json.loads((out / f"ticker-{size}.json").read_text(encoding="utf-8"))
        (strip,) = [b for b in ticker["boxes"] if b["kind"] == "ticker"]
        assert len(strip["lines"]) == 1
        assert strip["lines"][0]["text"] == read_item(SAMPLES / "ticker.json").fields["text"]
    for stem in ("announcement", "news-photo"):
        report = json.loads((out / f"{stem}-1920x1080.json").read_text(encoding="utf-8"))
        strips = [b for b in report["boxes"] if b["kind"] == "ticker"]
        assert [b["name"] for b in strips] == ["ticker"]
        assert strips[0]["lines"]


@pytest.mark.parametrize("size", SAMPLE_SIZES)
@pytest.mark.parametrize("stem", SAMPLE_STEMS)
def test_sample_report_passes_the_harfbuzz_check(
    samples_run: tuple[Path, str], stem: str, size: str
) -> None:
    if shutil.which("hb-shape") is None:
        pytest.skip("hb-shape is not on PATH (Debian package libharfbuzz-bin)")
    if not CHECKER.is_file():
        pytest.skip(f"{CHECKER} is absent (the shared checks live beside the repository)")
    out, _ = samples_run
    result = subprocess.run(
        [
            sys.executable,
            str(CHECKER),
            str(SAMPLES / f"{stem}.json"),
            str(out / f"{stem}-{size}.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stdout + result.stderr
    assert result.returncode == 0
