"""Shared pieces for the diagnostics tests: probes that report a healthy machine (each test
breaks one), a board config with a hub and a committed bundle, a fresh status snapshot, and a
fixed diagnosis for the page goldens."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from signage.board.config import BoardConfig, load_config
from signage.board.service import write_status
from signage.board.sync import ContentSync
from signage.diag.report import FAIL, INFO, OK, WARN, Diagnosis, Finding, Probes, Row
from signage.hub.publish import write_keypair
from signage.protocol import PrivateKey, Trust
from signage.store import ContentStore
from tests.board.linkkit import TZ, library, signed_text_bundle

GiB = 1 << 30
SECRET = "S3cr3tT0kenValue-q7Zp"
TOKEN = f"board:xa-sa-thay-01:{SECRET}"
AREA = "62/23456"


def good_probes(**faults: Any) -> Probes:
    """Return probes of a healthy board (hub answers 101, NTP synced, half the disk free);
    ``faults`` replaces any of them."""
    probes = Probes(
        resolve=lambda host, port: ["127.0.0.1"],
        tcp=lambda host, port, timeout: 1.5,
        websocket=lambda url, token, ca, timeout: (101, 4.0),
        clock_synced=lambda: True,
        disk=lambda path: (50 * GiB, 100 * GiB),
        raqm=lambda: True,
        fonts=lambda: ["Be Vietnam Pro", "Noto Sans"],
        temperature=lambda: 52.0,
        gateway=lambda: "192.168.1.1",
        interfaces=lambda: [("eth0", True, ["192.168.1.20"])],
    )
    return replace(probes, **faults)


def board_config(root: Path, *, hub: bool = True, bundle: bool = True) -> BoardConfig:
    """Return the config of a board whose data dir is root/data, also written as
    root/board.toml; with ``hub``, a hub on ws://127.0.0.1:9 with a token file and a trusted
    publisher key, and with ``bundle`` one committed bundle of that publisher."""
    data = root / "data"
    root.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "board": {"id": "xa-sa-thay-01", "name": "UBND xã Sa Thầy", "area": AREA},
        "data": {"dir": str(data)},
    }
    if hub:
        (root / "board.token").write_text(TOKEN + "\n", encoding="utf-8")
        key = PrivateKey.generate("tinh-62", "62")
        _, public = write_keypair(key, root / "keys")
        settings["hub"] = {
            "url": "ws://127.0.0.1:9/board",
            "token_file": str(root / "board.token"),
            "trusted_keys": [str(public)],
        }
        if bundle:
            store = ContentStore(data / "store")
            sync = ContentSync(store, Trust([key.public()]), library(), AREA, TZ, 40_000_000)
            assert sync.offer_bundle(signed_text_bundle(key, 7, "Lịch tiêm chủng"), "m1") == []
            assert [s.error for s in sync.settle()] == [None]
    path = root / "board.toml"
    path.write_text(_toml(settings), encoding="utf-8")
    return load_config(path)


def _toml(settings: dict[str, Any]) -> str:
    # JSON strings and lists of strings are valid TOML values.
    lines = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines += [
            f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in values.items()
        ]
    return "\n".join(lines) + "\n"


def player_status(**parts: Any) -> dict[str, Any]:
    """Return a status snapshot as a running, connected player writes it."""
    now = time.time()
    status: dict[str, Any] = {
        "board": "xa-sa-thay-01",
        "link": {
            "state": "ready",
            "connects": 1,
            "reconnects": 0,
            "connected_since": now - 600,
            "rtt_ms": 12.0,
            "last_error": None,
        },
        "display": {
            "on": True,
            "width": 1920,
            "height": 1080,
            "fps": None,
            "frames": 40,
            "slides": 12,
            "dropped": 0,
            "blank_reason": None,
        },
        "system": {"cpu_percent": 4.0, "process_uptime_s": 3600, "boot_uptime_s": 7300},
        "outbox": 0,
    }
    status.update(parts)
    return status


def start_player(config: BoardConfig, **parts: Any) -> None:
    """Write a fresh status snapshot, as the running player does every 5 s."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    write_status(config.data_dir, player_status(**parts))


def fixed_diagnosis(healthy: bool = False) -> Diagnosis:
    """Return a diagnosis built by hand (no clock, no psutil) for the page goldens."""
    d = Diagnosis(taken=1_795_000_000.0)
    rows = {
        "overview": [
            Row("board_id", "Mã bảng tin", "xa-sa-thay-01"),
            Row("name", "Tên", "UBND xã Sa Thầy"),
            Row("area", "Địa bàn", "62/23456"),
            Row("software", "Phần mềm", "signage 0.1.0"),
            Row("boot_uptime", "Máy đã chạy", "3 ngày 4 giờ"),
            Row("player", "Trình phát", "đang chạy, 2 giờ 15 phút", OK),
            Row("time", "Giờ hiện tại", "08:30:00 21/11/2026 (Asia/Ho_Chi_Minh)"),
            Row("clock", "Đồng bộ giờ", "CHƯA ĐỒNG BỘ", WARN),
            Row("fonts", "Phông chữ", "Be Vietnam Pro, Noto Sans, Noto Sans Khmer", OK),
        ],
        "network": [
            Row("if:eth0", "Cổng eth0", "bật: 192.168.1.20, fe80::1", OK),
            Row("if:wlan0", "Cổng wlan0", "tắt: -", INFO),
            Row("gateway", "Cổng mặc định", "192.168.1.1", OK),
            Row("hub", "Máy chủ", "wss://tinh-kontum.gov.vn/board"),
            Row("dns", "Phân giải tinh-kontum.gov.vn", "LỖI: [Errno -3] tạm thời thất bại", FAIL),
        ],
        "link": [
            Row("state", "Trạng thái", "MẤT KẾT NỐI", WARN),
            Row("connected_since", "Kết nối từ", "-"),
            Row("reconnects", "Số lần kết nối lại", "14"),
            Row("rtt", "Thời gian khứ hồi", "-"),
            Row("last_disconnect", "Lần mất kết nối gần nhất", "07:58:12 21/11"),
            Row("disconnect_reason", "Lý do", "mất mạng (timeout)"),
            Row("last_error", "Lỗi gần nhất", "không phân giải được tên máy chủ", WARN),
            Row("outbox", "Báo cáo chờ gửi", "37"),
        ],
        "content": [
            Row("bundle:tinh-62", "Gói tinh-62", "phiên bản 1795000000123", OK),
            Row("bundle:xa-sa-thay", "Gói xa-sa-thay", "phiên bản 42", OK),
            Row("items", "Tin trong chương trình", "9"),
            Row("eligible", "Tin được phát lúc này", "6"),
            Row("alerts", "Cảnh báo đang hiệu lực", "1", WARN),
            Row("next_change", "Lần đổi lịch tới", "11:30 21/11"),
            Row("assets", "Tệp đã lưu", "23 tệp, 48.2 MiB; kiểm tra mã băm 23, hỏng 0", OK),
            Row("cache", "Dung lượng bộ nhớ đệm", "48.2 MiB / 2.0 GiB", OK),
            Row("last_error", "Lỗi áp dụng gần nhất", "không có", OK),
        ],
        "system": [
            Row("cpu", "CPU (cả máy)", "3.5 %"),
            Row("memory", "Bộ nhớ", "41% dùng, còn 2.3 GiB", OK),
            Row("disk", "Ổ đĩa (dữ liệu)", "còn 1.1 GiB / 29.0 GiB (4%)", FAIL),
            Row("temperature", "Nhiệt độ", "61 °C", OK),
            Row("load", "Tải (1/5/15 phút)", "0.21 / 0.18 / 0.15"),
            Row("process:812", "Tiến trình 812", "signage play, 118.0 MiB RAM"),
        ],
        "display": [
            Row("size", "Độ phân giải", "1920x1080"),
            Row("rotate", "Xoay", "0°"),
            Row("fps", "Khung hình/giây (đo)", "60"),
            Row("frames", "Khung hình / trang / trễ", "18234 / 311 / 2"),
            Row("blank", "Màn hình", "đang bật", OK),
            Row("power", "Giờ bật màn hình", "7 khung giờ trong tuần"),
        ],
    }
    d.sections = rows
    if not healthy:
        d.findings = [
            Finding(
                "diag.clock_unsynced",
                WARN,
                "Đồng hồ chưa đồng bộ (NTP): lịch phát và hạn cảnh báo có thể sai giờ.",
            ),
            Finding(
                "diag.disk_low",
                FAIL,
                "Ổ đĩa sắp đầy: còn 1.1 GiB (4%). Nội dung mới có thể không lưu được.",
            ),
        ]
    d.log = [
        "2026-11-21 08:29:41,112 INFO signage.agent slide shown item=tinh-62/lich-tiem",
        "2026-11-21 08:29:55,730 WARNING signage.link disconnected reason=mất mạng, thử lại 8 s",
        "2026-11-21 08:30:03,901 INFO signage.link connecting url=wss://tinh-kontum.gov.vn/board",
        "2026-11-21 08:30:04,020 ERROR signage.link handshake failed reason=Không phân giải được",
    ]
    d.fonts = ["Be Vietnam Pro", "Noto Sans", "Noto Sans Khmer"]
    return d
