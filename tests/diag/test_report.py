"""The diagnostics report: the verdict with each fault injected through the probes, the text and
JSON forms, secrets kept out, and `signage diag --text|--json` and `signage blank on|off`."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from signage import cli
from signage.board.config import BoardConfig
from signage.board.service import LOG_DIR, local_blank, set_local_blank
from signage.diag import report
from signage.diag.report import FAIL, SECTIONS, WARN, Diagnosis, collect
from signage.errors import ErrorCode, FontError
from tests.diag.diagkit import SECRET, GiB, board_config, good_probes, start_player


@pytest.fixture(autouse=True)
def _machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's memory and CPU as a quiet board has them (psutil is not a probe)."""
    memory = SimpleNamespace(percent=41.0, available=4 * GiB, total=8 * GiB)
    monkeypatch.setattr(report.psutil, "virtual_memory", lambda: memory)
    monkeypatch.setattr(report.psutil, "cpu_percent", lambda interval=None: 3.0)
    yield


@pytest.fixture()
def config(tmp_path: Path) -> BoardConfig:
    return board_config(tmp_path)


def _raises(exc: BaseException) -> Callable[..., Any]:
    def probe(*args: object) -> Any:
        raise exc

    return probe


def _codes(diagnosis: Diagnosis) -> list[tuple[str, str]]:
    return [(f.code, f.level) for f in diagnosis.findings]


def _row(diagnosis: Diagnosis, section: str, key: str) -> report.Row:
    return next(r for r in diagnosis.sections[section] if r.key == key)


# -- the verdict ----------------------------------------------------------------------------------


def test_a_running_connected_board_is_healthy(config: BoardConfig) -> None:
    start_player(config)
    diagnosis = collect(config, probes=good_probes())
    assert diagnosis.findings == []
    assert diagnosis.healthy and diagnosis.verdict == "healthy"
    assert _row(diagnosis, "network", "websocket").level == "ok"
    assert _row(diagnosis, "overview", "player").value.startswith("đang chạy")
    assert _row(diagnosis, "content", "bundle:tinh-62").value == "phiên bản 7"
    assert _row(diagnosis, "content", "items").value == "1"
    assert _row(diagnosis, "display", "blank").value == "đang bật"
    assert diagnosis.to_text().startswith("KẾT LUẬN: TỐT (healthy)\n")


FAULTS = {
    "dns-fails": (
        {"resolve": _raises(socket.gaierror(-3, "Temporary failure in name resolution"))},
        ("network", "dns"),
        "diag.hub_unreachable",
        FAIL,
    ),
    "tcp-refused": (
        {"tcp": _raises(ConnectionRefusedError(111, "Connection refused"))},
        ("network", "tcp"),
        "diag.hub_unreachable",
        FAIL,
    ),
    "http-503": (
        {"websocket": lambda url, token, ca, timeout: (503, 20.0)},
        ("network", "websocket"),
        "diag.hub_unreachable",
        FAIL,
    ),
    "handshake-timeout": (
        {"websocket": _raises(TimeoutError("timed out during opening handshake"))},
        ("network", "websocket"),
        "diag.hub_unreachable",
        FAIL,
    ),
    "token-refused": (
        {"websocket": lambda url, token, ca, timeout: (401, 20.0)},
        ("network", "websocket"),
        "diag.token_refused",
        FAIL,
    ),
    "disk-1%-free": (
        {"disk": lambda path: (1 * GiB, 100 * GiB)},
        ("system", "disk"),
        "diag.disk_low",
        FAIL,
    ),
    "disk-7%-free": (
        {"disk": lambda path: (7 * GiB, 100 * GiB)},
        ("system", "disk"),
        "diag.disk_low",
        WARN,
    ),
    "disk-under-1GiB": (
        {"disk": lambda path: (900 << 20, 8 * GiB)},  # 11% of a small card, still too little
        ("system", "disk"),
        "diag.disk_low",
        WARN,
    ),
    "clock-unsynced": (
        {"clock_synced": lambda: False},
        ("overview", "clock"),
        "diag.clock_unsynced",
        WARN,
    ),
    "font-missing": (
        {"fonts": _raises(FontError(ErrorCode.TEXT_FONT_MISSING, "Be Vietnam Pro: no font file"))},
        ("overview", "fonts"),
        "text.font_missing",
        FAIL,
    ),
    "raqm-missing": (
        {"raqm": lambda: False},
        ("overview", "raqm"),
        "text.raqm_missing",
        FAIL,
    ),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_each_fault_alone_degrades_with_its_code(
    config: BoardConfig, fault: tuple[dict[str, Any], tuple[str, str], str, str]
) -> None:
    faults, (section, key), code, level = fault
    start_player(config)
    diagnosis = collect(config, probes=good_probes(**faults))
    assert _codes(diagnosis) == [(code, level)]
    assert diagnosis.verdict == "degraded" and not diagnosis.healthy
    assert _row(diagnosis, section, key).level == level
    assert f"[{code}]" in diagnosis.to_text()


def test_without_network_probes_the_hub_is_not_judged(config: BoardConfig) -> None:
    start_player(config)
    down = _raises(AssertionError("a network probe ran"))
    diagnosis = collect(
        config, probes=good_probes(resolve=down, tcp=down, websocket=down), network=False
    )
    assert diagnosis.healthy
    assert _row(diagnosis, "network", "probe").value == "nhấn R để chạy"


def test_player_not_running(config: BoardConfig) -> None:
    diagnosis = collect(config, probes=good_probes())  # no status.json at all
    assert _codes(diagnosis) == [("diag.player_not_running", FAIL)]
    assert "chưa từng chạy" in _row(diagnosis, "overview", "player").value
    start_player(config)
    written = time.time()
    assert collect(config, probes=good_probes(), now=written + 25).healthy
    stale = collect(config, probes=good_probes(), now=written + 31)
    assert _codes(stale) == [("diag.player_not_running", FAIL)]
    assert "dừng từ" in _row(stale, "overview", "player").value


def test_local_blank_switch(config: BoardConfig) -> None:
    start_player(config)
    set_local_blank(config.data_dir, True, "kỹ thuật viên", notify=False)
    diagnosis = collect(config, probes=good_probes())
    assert _codes(diagnosis) == [("diag.local_blank", WARN)]
    blank = _row(diagnosis, "display", "blank")
    assert blank.level == WARN and blank.value.startswith("ĐANG TẮT bởi kỹ thuật viên")
    set_local_blank(config.data_dir, False, "kỹ thuật viên", notify=False)
    assert collect(config, probes=good_probes()).healthy


def test_corrupted_asset_on_disk(config: BoardConfig) -> None:
    start_player(config)
    assets = config.data_dir / "store" / "assets"
    good, bad = b"a photo of the commune hall", b"the same photo, damaged"
    (assets / hashlib.sha256(good).hexdigest()).write_bytes(good)
    (assets / hashlib.sha256(good + b"!").hexdigest()).write_bytes(bad)
    diagnosis = collect(config, probes=good_probes())
    assert _codes(diagnosis) == [("diag.asset_corrupt", FAIL)]
    assert _row(diagnosis, "content", "assets").value.endswith("kiểm tra mã băm 2, hỏng 1")


def test_no_content_yet_apply_error_and_link_down(tmp_path: Path) -> None:
    config = board_config(tmp_path, bundle=False)
    start_player(
        config,
        last_error={"code": "bundle.signature_invalid", "message": "chữ ký sai"},
        link={"state": "offline", "reconnects": 3, "last_error": "connection refused"},
    )
    diagnosis = collect(config, probes=good_probes())
    assert sorted(_codes(diagnosis)) == [
        ("diag.apply_error", WARN),
        ("diag.link_down", WARN),
        ("diag.no_content", WARN),
    ]


def test_a_damaged_store_is_reported_not_raised(config: BoardConfig) -> None:
    start_player(config)
    (config.data_dir / "store" / "current.json").write_text("{half a poin", encoding="utf-8")
    diagnosis = collect(config, probes=good_probes())
    assert diagnosis.verdict == "degraded"
    assert ("store.failed", FAIL) in _codes(diagnosis)


def test_an_unreadable_programme_degrades_the_verdict(config: BoardConfig) -> None:
    # The trusted key went missing: nothing can be verified, so nothing plays.
    start_player(config)
    next(config.trusted_keys[0].parent.glob("*.pub")).unlink()
    diagnosis = collect(config, probes=good_probes())
    assert _row(diagnosis, "content", "programme").level == FAIL
    assert ("key.invalid", FAIL) in _codes(diagnosis)


def test_a_failing_disk_probe_degrades_the_verdict(config: BoardConfig) -> None:
    start_player(config)
    diagnosis = collect(config, probes=good_probes(disk=_raises(OSError(5, "I/O error"))))
    assert _row(diagnosis, "system", "disk").level == FAIL
    assert not diagnosis.healthy


def test_collect_leaves_the_players_files_alone(config: BoardConfig) -> None:
    # The player (the link thread, or another process) is half way through write_atomically.
    start_player(config)
    in_flight = config.data_dir / "store" / "assets" / f".{'ab' * 32}.4242.part"
    in_flight.write_bytes(b"half of a photo")
    collect(config, probes=good_probes())
    assert in_flight.exists(), "diagnostics deleted a file the player is writing"


# -- text, JSON, secrets --------------------------------------------------------------------------


def test_text_and_json_have_every_section(config: BoardConfig) -> None:
    start_player(config)
    diagnosis = collect(config, probes=good_probes(clock_synced=lambda: False))
    text = diagnosis.to_text()
    assert text.splitlines()[0] == "KẾT LUẬN: CÓ VẤN ĐỀ (degraded)"
    for name, title in SECTIONS:
        assert f"== {title} ({name}) ==" in text
    assert [t for _, t in SECTIONS] == [
        "Tổng quan",
        "Mạng",
        "Kết nối",
        "Nội dung",
        "Hệ thống",
        "Màn hình",
        "Nhật ký",
    ]
    data = json.loads(json.dumps(diagnosis.to_json(), ensure_ascii=False))
    assert data["verdict"] == "degraded"
    assert data["findings"] == [
        {"code": "diag.clock_unsynced", "level": WARN, "message": diagnosis.findings[0].message}
    ]
    # The rows' sections, and the log beside them.
    assert list(data["sections"]) == [name for name, _ in SECTIONS if name != "log"]
    assert isinstance(data["log"], list)
    clock = data["sections"]["overview"]["clock"]
    assert clock == {"label": "Đồng bộ giờ", "value": "CHƯA ĐỒNG BỘ", "level": WARN}


LEAKY_LOG = [
    "2026-11-21 08:30:01,000 INFO signage.link connecting url=ws://127.0.0.1:9/board",
    f"2026-11-21 08:30:02,000 WARNING signage.link refused Authorization: Bearer board:x:{SECRET}",
    f"2026-11-21 08:30:03,000 DEBUG signage.link token=board:xa-sa-thay-01:{SECRET}",
    f"2026-11-21 08:30:04,000 DEBUG signage.link headers={{'Authorization': 'Bearer {SECRET}'}}",
    f'2026-11-21 08:30:05,000 DEBUG signage.link sent {{"token": "board:xa-sa-thay-01:{SECRET}"}}',
    f"2026-11-21 08:30:06,000 ERROR signage.link handshake failed Bearer\t{SECRET}",
]


def test_secrets_never_appear(tmp_path: Path) -> None:
    config = board_config(tmp_path)
    (config.data_dir / LOG_DIR).mkdir()
    (config.data_dir / LOG_DIR / "player.log").write_text("\n".join(LEAKY_LOG) + "\n")
    start_player(config)
    seen: list[str] = []

    def websocket(url: str, token: str, ca: Path | None, timeout: float) -> tuple[int, float]:
        seen.append(token)
        return 101, 3.0

    diagnosis = collect(config, probes=good_probes(websocket=websocket))
    assert seen and SECRET in seen[0]  # the probe got the token to present it to the hub...
    text, data = diagnosis.to_text(), json.dumps(diagnosis.to_json(), ensure_ascii=False)
    assert SECRET not in text and SECRET not in data  # ...the report never shows it
    assert len(diagnosis.log) == len(LEAKY_LOG)
    assert "Bearer ***" in diagnosis.log[1] and "board:xa-sa-thay-01:***" in diagnosis.log[2]
    assert diagnosis.log[0] == LEAKY_LOG[0]


def test_credentials_in_the_hub_url_are_not_shown(tmp_path: Path) -> None:
    config = board_config(tmp_path)
    url = f"wss://xa:{SECRET}@hub.example.vn:8443/board?token={SECRET}"
    config = replace(config, hub_url=url)
    diagnosis = collect(config, probes=good_probes(), network=False)
    assert _row(diagnosis, "network", "hub").value == "wss://hub.example.vn:8443/board"
    assert SECRET not in diagnosis.to_text()


# -- the command line -----------------------------------------------------------------------------


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().out


def test_cli_diag_text_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    board_config(tmp_path)
    toml = str(tmp_path / "board.toml")
    # The real probes of this machine, and no player has ever run here: degraded.
    code, out = _cli(["diag", "--text", "--no-network", "--config", toml], capsys)
    assert code == 1, out
    assert out.startswith("KẾT LUẬN: CÓ VẤN ĐỀ (degraded)")
    assert "[diag.player_not_running]" in out
    # A running player on a machine whose probes are all good: healthy.
    monkeypatch.setattr(report, "real_probes", good_probes)
    start_player(board_config(tmp_path / "again"))
    toml = str(tmp_path / "again" / "board.toml")
    code, out = _cli(["diag", "--text", "--no-network", "--config", toml], capsys)
    assert code == 0, out
    assert out.startswith("KẾT LUẬN: TỐT (healthy)")
    code, out = _cli(["diag", "--json", "--no-network", "--config", toml], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["verdict"] == "healthy" and data["findings"] == []
    assert data["sections"]["overview"]["board_id"]["value"] == "xa-sa-thay-01"


def test_cli_diag_json_when_degraded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board_config(tmp_path)
    code, out = _cli(
        ["diag", "--json", "--no-network", "--config", f"{tmp_path}/board.toml"], capsys
    )
    assert code == 1
    data = json.loads(out)
    assert data["verdict"] == "degraded"
    assert "diag.player_not_running" in [f["code"] for f in data["findings"]]


def test_cli_blank_on_and_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = board_config(tmp_path, hub=False)
    toml = str(tmp_path / "board.toml")
    code, out = _cli(["blank", "on", "--config", toml], capsys)
    assert code == 0 and "none is running" in out
    switch = local_blank(config.data_dir)
    assert switch is not None and switch["by"] == "command line"
    assert abs(switch["since"] - time.time()) < 60
    code, out = _cli(["blank", "off", "--config", toml], capsys)
    assert code == 0 and "back on" in out
    assert local_blank(config.data_dir) is None
