"""The operator's status page in a real browser: headless Chromium logs in with the operator
token, follows the redirect with the cookie it got, and sees every board, the alert in force and
a stored screenshot, in Vietnamese. Debian's ``chromium`` package (scripts/setup.sh --dev)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import unicodedata
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from signage.hub.publish import alert_document
from tests.board.linkkit import TZ, make_board, until
from tests.hub.hubkit import Rig, running_hub, wait_online

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)
HEADLINE = "Bão số 9 đổ bộ: cấm ra khỏi nhà từ 18 giờ"
COPY = Path("/tmp/status-page.png")


def chromium() -> str:
    """Return the browser's path; skip, or fail where a browser is required (CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").is_file():
        found = "/usr/bin/chromium"
    if found is not None:
        return found
    message = (
        "chromium is not installed: run `bash scripts/setup.sh --dev` "
        "(or `apt-get install chromium`) to test the status page in a browser"
    )
    if os.environ.get("CI") or os.environ.get("SIGNAGE_REQUIRE_CHROMIUM"):
        pytest.fail(message)
    pytest.skip(message)


class Rows(HTMLParser):
    """Collects the text of each ``tr[data-board]`` inside ``table#boards``, and all text."""

    def __init__(self) -> None:
        super().__init__()
        self.in_table = False
        self.board: str | None = None
        self.rows: dict[str, str] = {}
        self.images: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "table" and named.get("id") == "boards":
            self.in_table = True
        elif tag == "tr" and self.in_table and named.get("data-board"):
            self.board = named["data-board"]
            self.rows[self.board] = ""
        elif tag == "img" and self.board is not None:
            self.images[self.board] = named.get("src") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_table = False
        elif tag == "tr":
            self.board = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.board is not None:
            self.rows[self.board] += data


def fake_screen() -> bytes:
    """A board's screen as PNG: a slide with a photo, a title bar and a ticker."""
    image = Image.new("RGB", (640, 360), "#0b3d91")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 640, 56), fill="#b3261e")
    draw.rectangle((24, 80, 330, 300), fill="#3f8f3a")
    draw.ellipse((60, 100, 140, 180), fill="#f6c343")
    for y in range(96, 280, 28):
        draw.rectangle((360, y, 610, y + 12), fill="#e8eef8")
    draw.rectangle((0, 322, 640, 360), fill="#f6c343")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def board_status(item: str, versions: dict[str, int]) -> dict[str, Any]:
    """What a board's heartbeat says beyond linkkit's Hooks: its slide, screen and machine."""
    return {
        "content": {
            "versions": versions,
            "item": item,
            "template": "news-photo",
            "reason": "scheduled",
            "items": 5,
            "alerts": ["alert:62-bao-9"],
        },
        "display": {"on": True, "width": 1920, "height": 1080, "fps": None},
        "system": {
            "cpu_percent": 7.5,
            "temperature_c": 48.0,
            "disk": {"path": "/var/lib/signage", "free": 21 * 2**30, "total": 32 * 2**30},
        },
    }


async def start_board(rig: Rig, board_id: str, item: str, screen: bytes) -> None:
    board = make_board(
        rig.root / "boards" / board_id,
        f"{rig.url}/board",
        rig.trust(),
        area=rig.areas[board_id],
        token=rig.tokens[board_id],
        board_id=board_id,
    )

    def status() -> dict[str, Any]:
        return board_status(item, dict(board.sync.store.versions()))

    async def screenshot() -> bytes:
        return screen

    board.hooks.status = status  # type: ignore[method-assign]
    board.hooks.screenshot = screenshot  # type: ignore[method-assign]
    await board.start()
    rig.boards[board_id] = board


async def browse(browser: str, profile: Path, *args: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        browser,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("chromium did not finish in 60 s") from None
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def test_the_status_page_in_chromium(tmp_path: Path) -> None:
    browser = chromium()

    async def scenario() -> None:
        async with running_hub(tmp_path, screenshot_every_s=0) as rig:
            key = rig.add_publisher("tinh-62", "62")
            rig.add_board("cho-sa-thay", "62/23456")
            rig.add_board("ubnd-sa-thay", "62/23456")
            rig.add_board("nha-van-hoa-ea-ktur", "62/11111")
            screen = fake_screen()
            await start_board(rig, "cho-sa-thay", "tinh-62/tin-thu-hoach", screen)
            await start_board(rig, "ubnd-sa-thay", "tinh-62/tb-tiem-chung", screen)
            await wait_online(rig, "cho-sa-thay", "ubnd-sa-thay")
            now = datetime.now(TZ).replace(microsecond=0)
            alert = alert_document(
                publisher="tinh-62",
                seq=1,
                identifier="62-bao-9",
                headline=HEADLINE,
                description="Gió giật cấp 12, mưa rất to trên địa bàn tỉnh.",
                severity="Extreme",
                expires=now + timedelta(hours=6),
                sent=now,
                area="62",
            )
            async with rig.publisher("tinh-62") as client:
                result = await client.publish("alert", key.sign(alert), wait_s=5)
            assert result["summary"] == {"applied": 2, "offline": 1}
            assert await rig.hub.screenshot("cho-sa-thay") == screen
            live = rig.hub.live
            await until(
                lambda: all(live[b].last_heartbeat for b in ("cho-sa-thay", "ubnd-sa-thay"))
            )

            url = f"http://127.0.0.1:{rig.hub.port}/login?token={rig.operator}"
            shot = tmp_path / "status.png"
            dom, _ = await asyncio.gather(
                browse(browser, tmp_path / "profile-dom", "--dump-dom", url),
                browse(browser, tmp_path / "profile-shot", f"--screenshot={shot}", url),
            )

            page = Rows()
            page.feed(dom.decode("utf-8"))
            text = "".join(page.text)
            assert set(page.rows) == {"cho-sa-thay", "ubnd-sa-thay", "nha-van-hoa-ea-ktur"}
            for board_id in ("cho-sa-thay", "ubnd-sa-thay"):
                assert "Trực tuyến" in page.rows[board_id]
                assert "Ngoại tuyến" not in page.rows[board_id]
            assert "Ngoại tuyến" in page.rows["nha-van-hoa-ea-ktur"]
            assert "chưa từng kết nối" in page.rows["nha-van-hoa-ea-ktur"]
            assert "tinh-62/tin-thu-hoach" in page.rows["cho-sa-thay"]
            assert "Đang hiện cảnh báo: 62-bao-9" in page.rows["ubnd-sa-thay"]
            assert page.images["cho-sa-thay"].startswith("/screenshots/cho-sa-thay.png")
            assert "ubnd-sa-thay" not in page.images
            assert HEADLINE in text
            assert "Bảng tin điện tử công cộng" in text
            assert "2/3" in text
            assert unicodedata.is_normalized("NFC", text)

            assert shot.is_file()
            shutil.copyfile(shot, COPY)
            with Image.open(shot) as image:
                assert image.size == (1400, 900)
                colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
                assert colours is not None and len(colours) > 50
                # The thumbnail was fetched with the cookie and drawn (its yellow ticker).
                assert any(rgb == (0xF6, 0xC3, 0x43) for _, rgb in colours)

    asyncio.run(scenario())
