"""Folder mode (validation, snapshots, half-copied folders) and clock-jump detection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from signage.board.folder import FolderWatcher, clean_snapshots, load_programme
from signage.board.jobs import ClockWatch
from signage.errors import FolderError
from signage.layout import LayoutLibrary
from signage.resources import data_dir

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "xa-sa-thay"
PIXELS = 40_000_000


@pytest.fixture(scope="module")
def library() -> LayoutLibrary:
    return LayoutLibrary.load(data_dir("layouts"))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "content"
    shutil.copytree(EXAMPLE, target)
    return target


def _watcher(folder: Path, library: LayoutLibrary, tmp_path: Path) -> FolderWatcher:
    return FolderWatcher(folder, library, tmp_path / "assets", TZ, PIXELS)


def test_example_programme_loads_with_snapshots(
    folder: Path, library: LayoutLibrary, tmp_path: Path
) -> None:
    programme = load_programme(folder, library, tmp_path / "assets", TZ, PIXELS)
    assert [i.id for i in programme.items][:2] == ["tb-tiem-chung", "tin-thu-hoach"]
    snapshot = programme.resolver()("dong-lua.jpg")
    assert snapshot.parent == tmp_path / "assets"
    assert snapshot.read_bytes() == (folder / "dong-lua.jpg").read_bytes()
    assert programme.ticker and programme.ticker.startswith("Tuần lễ cao điểm")
    # The folder's file may change later; the snapshot does not.
    (folder / "dong-lua.jpg").write_bytes(b"half a jpeg")
    assert snapshot.read_bytes() != b"half a jpeg"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: (f / "items.json").write_text("[{", encoding="utf-8"), "items.json"),
        (lambda f: (f / "items.json").unlink(), "cannot read items.json"),
        (lambda f: (f / "dong-lua.jpg").write_bytes(b"not an image"), "dong-lua.jpg"),
        (lambda f: (f / "dong-lua.jpg").unlink(), "dong-lua.jpg"),
        (
            lambda f: (f / "items.json").write_text(
                json.dumps([{"id": "x", "template": "nope", "fields": {}}]), encoding="utf-8"
            ),
            "nope",
        ),
        (
            lambda f: (f / "items.json").write_text(
                json.dumps([{"id": "x", "template": "announcement", "fields": {"title": "T"}}]),
                encoding="utf-8",
            ),
            "fields.body",
        ),
    ],
)
def test_invalid_folder_is_refused_with_its_reason(
    folder: Path, library: LayoutLibrary, tmp_path: Path, mutate: object, reason: str
) -> None:
    mutate(folder)  # type: ignore[operator]
    with pytest.raises(FolderError) as caught:
        load_programme(folder, library, tmp_path / "assets", TZ, PIXELS)
    assert reason in str(caught.value)


def test_watcher_waits_for_a_finished_copy_and_keeps_the_old_programme(
    folder: Path, library: LayoutLibrary, tmp_path: Path
) -> None:
    watcher = _watcher(folder, library, tmp_path)
    first = watcher.load_now()
    assert first is not None
    assert watcher.poll() is None  # nothing changed
    items = json.loads((folder / "items.json").read_text(encoding="utf-8"))
    (folder / "items.json").write_text(json.dumps(items[:2], ensure_ascii=False), "utf-8")
    assert watcher.poll() is None  # changed since the last look: maybe still being copied
    second = watcher.poll()  # unchanged for one poll: applied
    assert second is not None and len(second.items) == 2
    (folder / "items.json").write_text('[{"id": "half', encoding="utf-8")
    assert watcher.poll() is None
    assert watcher.poll() is None  # invalid: refused, and the caller keeps `second`
    assert watcher.last_error is not None and "items.json" in str(watcher.last_error)
    assert watcher.poll() is None  # refused once, not again and again


def test_clean_snapshots_keeps_what_the_programme_uses(
    folder: Path, library: LayoutLibrary, tmp_path: Path
) -> None:
    programme = load_programme(folder, library, tmp_path / "assets", TZ, PIXELS)
    stale = tmp_path / "assets" / ("0" * 64)
    stale.write_bytes(b"old")
    assert clean_snapshots(tmp_path / "assets", programme.assets) == 1
    assert programme.resolver()("dong-lua.jpg").exists()


def test_clock_watch_sees_jumps_both_ways() -> None:
    wall, mono = [1000.0], [50.0]
    watch = ClockWatch(lambda: wall[0], lambda: mono[0], threshold=2.0)
    wall[0] += 1.0
    mono[0] += 1.0
    assert watch.check() == 0.0
    wall[0] += 86400 + 1.0  # NTP or a technician moved the clock a day ahead
    mono[0] += 1.0
    assert watch.check() == pytest.approx(86400)
    wall[0] -= 3600 - 1.0
    mono[0] += 1.0
    assert watch.check() == pytest.approx(-3600)
    wall[0] += 1.5  # drift below the threshold is not a jump
    mono[0] += 0.0
    assert watch.check() == 0.0
