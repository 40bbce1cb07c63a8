"""What diagnostics know about a board, and the verdict: healthy, or degraded with reasons.

:func:`collect` gathers the facts of every section (overview, network, link, content, system,
display, log) from the config, the data dir (store, status snapshot, log file, blank switch),
the live status when the player itself asks, and probes of the machine and the network.
Probes are passed in, so tests inject faults (hub unreachable, disk full, clock unsynchronised,
font or RAQM missing). Labels and messages are in Vietnamese (the technician reads them); keys,
codes and JSON are in English. Tokens and private keys are never read into a report.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
from PIL import features

from signage import __version__
from signage.board.config import BoardConfig, read_trust
from signage.board.link import read_token, ssl_context
from signage.board.service import local_blank, log_tail, read_status
from signage.board.slides import Stack, build_stack
from signage.board.sync import ContentSync
from signage.compose import DEFAULT_MAX_PIXELS
from signage.errors import SignageError
from signage.model import board_timezone
from signage.plan import RotationState, choose
from signage.protocol import Trust
from signage.store import ContentStore

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"
STATUS_STALE_S = 30.0  # a snapshot older than this: the player is not running
DISK_WARN_FRACTION, DISK_FAIL_FRACTION = 0.10, 0.03
DISK_WARN_BYTES, DISK_FAIL_BYTES = 1 << 30, 200 << 20
VERIFY_BUDGET_BYTES = 256 << 20  # assets hashed per report (the rest: sizes only)

SECTIONS = (
    ("overview", "Tổng quan"),
    ("network", "Mạng"),
    ("link", "Kết nối"),
    ("content", "Nội dung"),
    ("system", "Hệ thống"),
    ("display", "Màn hình"),
    ("log", "Nhật ký"),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One fact: a label people read, its value, and how good it is (ok, warn, fail, info)."""

    key: str
    label: str
    value: str
    level: str = INFO


@dataclass(frozen=True, slots=True)
class Finding:
    """A reason the board is not healthy: a stable code, warn or fail, and what to do."""

    code: str
    level: str
    message: str


@dataclass(slots=True)
class Diagnosis:
    """Every section's rows, the findings, and the facts the pages draw from."""

    sections: dict[str, list[Row]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    fonts: list[str] = field(default_factory=list)  # configured families, for the font test
    taken: float = 0.0

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong."""
        return not self.findings

    @property
    def verdict(self) -> str:
        """``healthy`` or ``degraded``."""
        return "healthy" if self.healthy else "degraded"

    def add(self, section: str, key: str, label: str, value: object, level: str = INFO) -> None:
        """Add a row to ``section``."""
        self.sections.setdefault(section, []).append(Row(key, label, _text(value), level))

    def find(self, code: str, level: str, message: str) -> None:
        """Record a finding."""
        self.findings.append(Finding(code, level, message))

    def to_json(self) -> dict[str, Any]:
        """Return the report for machines (``signage diag --json``)."""
        return {
            "verdict": self.verdict,
            "taken": self.taken,
            "findings": [
                {"code": f.code, "level": f.level, "message": f.message} for f in self.findings
            ],
            "sections": {
                name: {r.key: {"label": r.label, "value": r.value, "level": r.level} for r in rows}
                for name, rows in self.sections.items()
            },
            "log": self.log,
        }

    def to_text(self) -> str:
        """Return the report for a terminal (``signage diag --text``), in Vietnamese."""
        mark = {OK: "  ", INFO: "  ", WARN: "! ", FAIL: "X "}
        verdict = "TỐT" if self.healthy else "CÓ VẤN ĐỀ"
        out = [f"KẾT LUẬN: {verdict} ({self.verdict})"]
        out += [f"  {mark[f.level]}[{f.code}] {f.message}" for f in self.findings]
        for name, title in SECTIONS:
            out += ["", f"== {title} ({name}) =="]
            if name == "log":
                out += [f"  {line}" for line in self.log] or ["  (chưa có nhật ký)"]
                continue
            width = max((len(r.label) for r in self.sections.get(name, [])), default=0)
            for row in self.sections.get(name, []):
                out.append(f"{mark[row.level]}{row.label:<{width}}  {row.value}")
        return "\n".join(out) + "\n"


# -- probes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probes:
    """How diagnostics look at the machine and the network (tests replace them)."""

    resolve: Callable[[str, int], list[str]]
    tcp: Callable[[str, int, float], float]
    websocket: Callable[[str, str, Path | None, float], tuple[int, float]]
    clock_synced: Callable[[], bool | None]
    disk: Callable[[Path], tuple[int, int]]
    raqm: Callable[[], bool]
    fonts: Callable[[], list[str]]
    temperature: Callable[[], float | None]
    gateway: Callable[[], str | None]
    interfaces: Callable[[], list[tuple[str, bool, list[str]]]]


def real_probes() -> Probes:
    """Return the probes of this machine (one set keeps the fonts it loaded once)."""
    families: list[str] = []

    def fonts() -> list[str]:
        if not families:
            families.extend(_font_families())
        return list(families)

    return Probes(
        resolve=_resolve,
        tcp=_tcp,
        websocket=_websocket,
        clock_synced=_clock_synced,
        disk=_disk,
        raqm=lambda: bool(features.check_feature("raqm")),
        fonts=fonts,
        temperature=_temperature,
        gateway=_gateway,
        interfaces=_interfaces,
    )


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _tcp(host: str, port: int, timeout: float) -> float:
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout):
        return (time.perf_counter() - started) * 1000


def _websocket(url: str, token: str, ca_file: Path | None, timeout: float) -> tuple[int, float]:
    """Open the WebSocket handshake with the board's token and close at once; return the HTTP
    status (101 accepted) and the time taken in ms."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    started = time.perf_counter()
    try:
        with connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            ssl=ssl_context(url, ca_file),
            open_timeout=timeout,
            close_timeout=1,
        ):
            return 101, (time.perf_counter() - started) * 1000
    except InvalidStatus as exc:
        return exc.response.status_code, (time.perf_counter() - started) * 1000


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h>: modes first, then enough room for the rest.
    _fields_ = [("modes", ctypes.c_uint), ("rest", ctypes.c_byte * 256)]


def _clock_synced() -> bool | None:
    """Return True when the kernel says the clock is synchronised (NTP), None if unknown."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        state = libc.adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != 5)  # TIME_ERROR: the clock is not synchronised


def _disk(path: Path) -> tuple[int, int]:
    usage = psutil.disk_usage(str(path))
    return usage.free, usage.total


def _font_families() -> list[str]:
    registry = build_stack().composer.typesetter.registry
    return [registry.default_family, *registry.fallback]


def _temperature() -> float | None:
    from signage.board.health import temperature_c

    return temperature_c()


def _gateway() -> str | None:
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) > 2 and parts[1] == "00000000":
            raw = int(parts[2], 16)
            return socket.inet_ntoa(raw.to_bytes(4, "little"))
    return None


def _interfaces() -> list[tuple[str, bool, list[str]]]:
    stats = psutil.net_if_stats()
    out = []
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        if name == "lo":
            continue
        ips = [a.address for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6)]
        out.append((name, bool(stats.get(name) and stats[name].isup), ips))
    return out


@dataclass(slots=True)
class Memory:
    """What :func:`collect` may keep between calls."""

    verify_budget: int = VERIFY_BUDGET_BYTES
    checked: dict[str, bool] = field(default_factory=dict)  # "name:size:mtime" -> hash ok
    _stack: Stack | None = None

    def stack(self) -> Stack:
        """Return the fonts and layouts, loaded once. Raises SignageError."""
        if self._stack is None:
            self._stack = build_stack()
        return self._stack


# -- collecting -----------------------------------------------------------------------------------


def collect(
    config: BoardConfig,
    *,
    probes: Probes | None = None,
    live: Mapping[str, Any] | None = None,
    network: bool = True,
    now: float | None = None,
    memory: Memory | None = None,
) -> Diagnosis:
    """Return the diagnosis of the board ``config`` describes.

    ``memory`` carries what a caller that collects again and again (the overlay, every few
    seconds) need not redo: assets already hashed, the loaded layouts; each call then hashes at
    most ``memory.verify_budget`` bytes of new assets.

    ``live`` is the player's own status when the player asks (the overlay); otherwise the
    status snapshot in the data dir is used and its age tells whether the player runs.
    ``network`` False skips the probes that wait on the network (the overlay runs them on
    request). Never raises for what it finds: every problem becomes a row and a finding.
    """
    probes = probes or real_probes()
    now = time.time() if now is None else now
    diagnosis = Diagnosis(taken=now)
    status, age = _status(config, live, now)
    _overview(diagnosis, config, probes, status, age, now)
    _network(diagnosis, config, probes, network)
    _link(diagnosis, config, status)
    _content(diagnosis, config, status, now, memory or Memory())
    _system(diagnosis, config, probes, status)
    _display(diagnosis, config, status)
    diagnosis.log = [_redact(line) for line in log_tail(config.data_dir, 40)]
    return diagnosis


def _status(
    config: BoardConfig, live: Mapping[str, Any] | None, now: float
) -> tuple[dict[str, Any], float | None]:
    if live is not None:
        return dict(live), 0.0
    snapshot = read_status(config.data_dir)
    if snapshot is None:
        return {}, None
    status, written = snapshot
    return status, now - written


def _overview(
    d: Diagnosis,
    config: BoardConfig,
    probes: Probes,
    status: Mapping[str, Any],
    age: float | None,
    now: float,
) -> None:
    tz = board_timezone(config.timezone)
    d.add("overview", "board_id", "Mã bảng tin", config.board_id)
    d.add("overview", "name", "Tên", config.name)
    d.add("overview", "area", "Địa bàn", config.area or "(tất cả)")
    d.add("overview", "software", "Phần mềm", f"signage {__version__}")
    system = _map(status, "system")
    uptime = system.get("process_uptime_s")
    boot = system.get("boot_uptime_s") or (now - psutil.boot_time())
    d.add("overview", "boot_uptime", "Máy đã chạy", _duration(boot))
    if age is None or age > STATUS_STALE_S:
        seen = "chưa từng chạy" if age is None else f"dừng từ {_duration(age)} trước"
        d.add("overview", "player", "Trình phát", f"KHÔNG CHẠY ({seen})", FAIL)
        d.find(
            "diag.player_not_running",
            FAIL,
            "Trình phát không chạy: kiểm tra `systemctl status signage-player` và nhật ký.",
        )
    else:
        d.add("overview", "player", "Trình phát", f"đang chạy, {_duration(uptime)}", OK)
    moment = datetime.fromtimestamp(now, tz)
    d.add("overview", "time", "Giờ hiện tại", f"{moment:%H:%M:%S %d/%m/%Y} ({config.timezone})")
    synced = probes.clock_synced()
    if synced is False:
        d.add("overview", "clock", "Đồng bộ giờ", "CHƯA ĐỒNG BỘ", WARN)
        d.find(
            "diag.clock_unsynced",
            WARN,
            "Đồng hồ chưa đồng bộ (NTP): lịch phát và hạn cảnh báo có thể sai giờ.",
        )
    else:
        d.add("overview", "clock", "Đồng bộ giờ", "có" if synced else "không rõ", OK)
    if not probes.raqm():
        d.add("overview", "raqm", "Dàn chữ (RAQM)", "THIẾU", FAIL)
        d.find(
            "text.raqm_missing",
            FAIL,
            "Thiếu thư viện dàn chữ (libfribidi0): chữ tiếng Việt sẽ sai dấu."
            " Cài: apt-get install -y libfribidi0.",
        )
    try:
        d.fonts = probes.fonts()
        d.add("overview", "fonts", "Phông chữ", ", ".join(d.fonts), OK)
    except (SignageError, OSError) as exc:
        d.add("overview", "fonts", "Phông chữ", f"LỖI: {exc}", FAIL)
        code = getattr(exc, "code", None)
        d.find(
            str(code.value) if code is not None else "text.font_missing",
            FAIL,
            f"Phông chữ không dùng được: {exc}",
        )


def _network(d: Diagnosis, config: BoardConfig, probes: Probes, network: bool) -> None:
    for name, up, addresses in probes.interfaces():
        level = OK if up and addresses else WARN if up else INFO
        state = "bật" if up else "tắt"
        d.add(
            "network",
            f"if:{name}",
            f"Cổng {name}",
            f"{state}: {', '.join(addresses) or '-'}",
            level,
        )
    gateway = probes.gateway()
    d.add("network", "gateway", "Cổng mặc định", gateway or "KHÔNG CÓ", OK if gateway else WARN)
    if config.hub_url is None:
        d.add("network", "hub", "Máy chủ", "không cấu hình (chạy từ thư mục nội dung)")
        return
    d.add("network", "hub", "Máy chủ", _safe_url(config.hub_url))
    if not network:
        d.add("network", "probe", "Kiểm tra mạng", "nhấn R để chạy")
        return
    parts = urlsplit(config.hub_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    reason = ""
    try:
        started = time.perf_counter()
        addresses = probes.resolve(host, port)
        ms = (time.perf_counter() - started) * 1000
        d.add("network", "dns", f"Phân giải {host}", f"{', '.join(addresses)} ({ms:.0f} ms)", OK)
    except OSError as exc:
        d.add("network", "dns", f"Phân giải {host}", f"LỖI: {exc}", FAIL)
        reason = f"không phân giải được tên {host} (DNS)"
    if not reason:
        try:
            ms = probes.tcp(host, port, 5.0)
            d.add("network", "tcp", f"TCP {host}:{port}", f"kết nối được ({ms:.0f} ms)", OK)
        except OSError as exc:
            d.add("network", "tcp", f"TCP {host}:{port}", f"LỖI: {exc}", FAIL)
            reason = f"không mở được kết nối TCP tới {host}:{port}"
    if not reason:
        try:
            token = read_token(config.hub_token_file)
            status, ms = probes.websocket(config.hub_url, token, config.hub_ca_file, 10.0)
        except (SignageError, OSError, TimeoutError) as exc:
            d.add("network", "websocket", "Bắt tay WebSocket", f"LỖI: {exc}", FAIL)
            reason = f"bắt tay WebSocket thất bại ({exc})"
        else:
            if status == 101:
                d.add("network", "websocket", "Bắt tay WebSocket", f"được nhận ({ms:.0f} ms)", OK)
            elif status == 401:
                d.add("network", "websocket", "Bắt tay WebSocket", "MÃ TRUY CẬP BỊ TỪ CHỐI", FAIL)
                d.find(
                    "diag.token_refused",
                    FAIL,
                    "Máy chủ từ chối mã truy cập của bảng tin: xin mã mới"
                    " (signage hub board token) và chép vào hub.token_file.",
                )
                return
            else:
                d.add("network", "websocket", "Bắt tay WebSocket", f"HTTP {status}", FAIL)
                reason = f"máy chủ trả lời HTTP {status}"
    if reason:
        d.find("diag.hub_unreachable", FAIL, f"Không kết nối được máy chủ: {reason}.")


def _link(d: Diagnosis, config: BoardConfig, status: Mapping[str, Any]) -> None:
    link = _map(status, "link")
    if config.hub_url is None:
        d.add("link", "state", "Trạng thái", "không dùng máy chủ")
        return
    state = str(link.get("state", "offline"))
    names = {"ready": "đã kết nối", "sync": "đang đồng bộ", "offline": "MẤT KẾT NỐI"}
    d.add("link", "state", "Trạng thái", names.get(state, state), OK if state == "ready" else WARN)
    if link and state not in ("ready", "sync"):
        d.find(
            "diag.link_down",
            WARN,
            "Bảng tin đang mất kết nối với máy chủ (vẫn phát nội dung đã lưu).",
        )
    d.add("link", "connected_since", "Kết nối từ", _moment(link.get("connected_since"), config))
    d.add("link", "reconnects", "Số lần kết nối lại", link.get("reconnects", "-"))
    faults = link.get("faults", 0)
    d.add(
        "link",
        "faults",
        "Dữ liệu hỏng trên đường truyền",
        f"{faults} (kết nối lại để nhận lại: {link.get('resyncs', 0)})",
        WARN if isinstance(faults, int) and faults > 0 else OK,
    )
    d.add("link", "rtt", "Thời gian khứ hồi", _unit(link.get("rtt_ms"), "ms"))
    d.add(
        "link",
        "last_disconnect",
        "Lần mất kết nối gần nhất",
        _moment(link.get("last_disconnect"), config),
    )
    d.add("link", "disconnect_reason", "Lý do", link.get("last_disconnect_reason") or "-")
    error = link.get("last_error")
    d.add("link", "last_error", "Lỗi gần nhất", error or "không có", WARN if error else OK)
    d.add("link", "outbox", "Báo cáo chờ gửi", status.get("outbox", "-"))


def _content(
    d: Diagnosis, config: BoardConfig, status: Mapping[str, Any], now: float, memory: Memory
) -> None:
    tz = board_timezone(config.timezone)
    store = ContentStore(config.data_dir / "store", config.cache_quota_bytes, readonly=True)
    try:
        versions = store.versions()
    except SignageError as exc:
        versions = None
        d.add("content", "bundles", "Gói nội dung", f"LỖI: {exc}", FAIL)
        d.find(exc.code.value, FAIL, f"Kho nội dung hỏng: {exc}")
    if versions:
        for publisher, version in sorted(versions.items()):
            d.add("content", f"bundle:{publisher}", f"Gói {publisher}", f"phiên bản {version}", OK)
    elif versions is not None:
        d.add("content", "bundles", "Gói nội dung", "chưa có", WARN if config.hub_url else INFO)
        if config.hub_url:
            d.find("diag.no_content", WARN, "Chưa nhận được gói nội dung nào từ máy chủ.")
    try:
        trust = read_trust(list(config.trusted_keys)) if config.trusted_keys else Trust(())
        library = memory.stack().composer.library
        sync = ContentSync(store, trust, library, config.area, tz, DEFAULT_MAX_PIXELS)
        programme = sync.programme()
        moment = datetime.fromtimestamp(now, tz)
        alerts = sync.alert_items(moment)
        eligible = [i for i in programme.items if i.is_eligible(moment, tz)]
        d.add("content", "items", "Tin trong chương trình", len(programme.items))
        d.add("content", "eligible", "Tin được phát lúc này", len(eligible))
        d.add("content", "alerts", "Cảnh báo đang hiệu lực", len(alerts), WARN if alerts else INFO)
        decision = choose(programme.items, alerts, moment, tz, RotationState())
        change = decision.deadline
        d.add(
            "content", "next_change", "Lần đổi lịch tới", f"{change:%H:%M %d/%m}" if change else "-"
        )
    except SignageError as exc:
        d.add("content", "programme", "Chương trình", f"LỖI: {exc}", FAIL)
        if versions is not None:  # a damaged store is already a finding
            d.find(exc.code.value, FAIL, f"Không đọc được chương trình phát: {exc}")
    files, size, verified, bad = _assets(store.root / "assets", memory)
    level = FAIL if bad else OK
    d.add(
        "content",
        "assets",
        "Tệp đã lưu",
        f"{files} tệp, {_bytes(size)}; kiểm tra mã băm {verified}, hỏng {bad}",
        level,
    )
    if bad:
        d.find("diag.asset_corrupt", FAIL, f"{bad} tệp nội dung bị hỏng trên đĩa (sai mã băm).")
    quota = config.cache_quota_bytes
    d.add(
        "content",
        "cache",
        "Dung lượng bộ nhớ đệm",
        f"{_bytes(size)} / {_bytes(quota)}",
        WARN if size > quota else OK,
    )
    error = status.get("last_error")
    if isinstance(error, Mapping):
        d.add(
            "content",
            "last_error",
            "Lỗi áp dụng gần nhất",
            f"{error.get('code')}: {error.get('message')}",
            WARN,
        )
        d.find("diag.apply_error", WARN, f"Gói nội dung gần nhất bị từ chối: {error.get('code')}.")
    else:
        d.add("content", "last_error", "Lỗi áp dụng gần nhất", "không có", OK)


def _assets(folder: Path, memory: Memory) -> tuple[int, int, int, int]:
    files = size = verified = bad = 0
    budget = memory.verify_budget
    with contextlib.suppress(OSError):
        for path in sorted(folder.iterdir()):
            if not path.is_file() or len(path.name) != 64:
                continue
            files += 1
            stat = path.stat()
            size += stat.st_size
            seen = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
            if seen not in memory.checked:
                if stat.st_size > budget:
                    continue
                budget -= stat.st_size
                digest = hashlib.sha256()
                with open(path, "rb") as source:
                    while block := source.read(1 << 20):
                        digest.update(block)
                memory.checked[seen] = digest.hexdigest() == path.name
            verified += 1
            bad += not memory.checked[seen]
    return files, size, verified, bad


def _system(d: Diagnosis, config: BoardConfig, probes: Probes, status: Mapping[str, Any]) -> None:
    system = _map(status, "system")
    cpu = system.get("cpu_percent")
    d.add(
        "system",
        "cpu",
        "CPU (cả máy)",
        _unit(cpu if cpu is not None else psutil.cpu_percent(0.2), "%"),
    )
    memory = psutil.virtual_memory()
    level = WARN if memory.percent > 90 else OK
    d.add(
        "system",
        "memory",
        "Bộ nhớ",
        f"{memory.percent:.0f}% dùng, còn {_bytes(memory.available)}",
        level,
    )
    if memory.percent > 90:
        d.find("diag.memory_low", WARN, "Bộ nhớ gần hết.")
    try:
        free, total = probes.disk(config.data_dir if config.data_dir.exists() else Path("/"))
    except OSError as exc:
        d.add("system", "disk", "Ổ đĩa", f"LỖI: {exc}", FAIL)
        d.find("diag.disk_failed", FAIL, f"Không đọc được ổ đĩa dữ liệu: {exc}")
    else:
        fraction = free / total if total else 0.0
        level = OK
        if fraction < DISK_FAIL_FRACTION or free < DISK_FAIL_BYTES:
            level = FAIL
        elif fraction < DISK_WARN_FRACTION or free < DISK_WARN_BYTES:
            level = WARN
        d.add(
            "system",
            "disk",
            "Ổ đĩa (dữ liệu)",
            f"còn {_bytes(free)} / {_bytes(total)} ({fraction:.0%})",
            level,
        )
        if level != OK:
            d.find(
                "diag.disk_low",
                level,
                f"Ổ đĩa sắp đầy: còn {_bytes(free)} ({fraction:.0%})."
                " Nội dung mới có thể không lưu được.",
            )
    temperature = probes.temperature()
    hot = temperature is not None and temperature >= 80
    d.add("system", "temperature", "Nhiệt độ", _unit(temperature, "°C"), WARN if hot else OK)
    if hot:
        d.find(
            "diag.temperature_high",
            WARN,
            f"Máy quá nóng ({temperature:.0f} °C): kiểm tra quạt, thông gió.",
        )
    with contextlib.suppress(OSError):
        load = os.getloadavg()
        d.add("system", "load", "Tải (1/5/15 phút)", " / ".join(f"{x:.2f}" for x in load))
    for process in _ours():
        d.add("system", f"process:{process[0]}", f"Tiến trình {process[0]}", process[1])


def _ours() -> list[tuple[int, str]]:
    out = []
    for process in psutil.process_iter(["pid", "cmdline", "memory_info", "create_time"]):
        with contextlib.suppress(psutil.Error, TypeError):
            cmdline = process.info["cmdline"] or []
            words = " ".join(cmdline)
            if "signage" not in words or not any(w in cmdline for w in ("play", "hub", "diag")):
                continue
            what = next(w for w in ("play", "hub", "diag") if w in cmdline)
            rss = process.info["memory_info"].rss
            out.append((process.info["pid"], f"signage {what}, {_bytes(rss)} RAM"))
    return out[:6]


def _display(d: Diagnosis, config: BoardConfig, status: Mapping[str, Any]) -> None:
    display = _map(status, "display")
    width, height = display.get("width"), display.get("height")
    size = (
        f"{width}x{height}"
        if width and height
        else (str(config.size) if config.size else "tự động")
    )
    d.add("display", "size", "Độ phân giải", size)
    d.add("display", "rotate", "Xoay", f"{config.rotate}°")
    d.add("display", "fps", "Khung hình/giây (đo)", _unit(display.get("fps"), ""))
    d.add(
        "display",
        "frames",
        "Khung hình / trang / trễ",
        " / ".join(str(display.get(k, "-")) for k in ("frames", "slides", "dropped")),
    )
    switch = local_blank(config.data_dir)
    if switch is not None:
        since = _moment(switch.get("since"), config)
        d.add("display", "blank", "Màn hình", f"ĐANG TẮT bởi kỹ thuật viên (từ {since})", WARN)
        d.find(
            "diag.local_blank",
            WARN,
            "Màn hình đang được tắt tại chỗ: `signage blank off` hoặc Ctrl+Alt+B để bật lại.",
        )
    elif display.get("on") is False:
        reason = {"command": "lệnh từ máy chủ", "schedule": "lịch bật/tắt"}.get(
            str(display.get("blank_reason")), "?"
        )
        d.add("display", "blank", "Màn hình", f"đang tắt ({reason})")
    else:
        d.add("display", "blank", "Màn hình", "đang bật", OK)
    windows = config.power_on
    d.add(
        "display",
        "power",
        "Giờ bật màn hình",
        "cả ngày" if not windows else f"{len(windows)} khung giờ trong tuần",
    )


# -- small helpers --------------------------------------------------------------------------------


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _unit(value: Any, unit: str) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:.0f} {unit}".strip() if abs(value) >= 10 else f"{value:.1f} {unit}".strip()


def _bytes(value: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{int(value)} B"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} ngày {hours} giờ"
    if hours:
        return f"{hours} giờ {minutes} phút"
    return f"{minutes} phút {seconds % 60} giây"


def _moment(value: Any, config: BoardConfig) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{datetime.fromtimestamp(value, board_timezone(config.timezone)):%H:%M:%S %d/%m}"


def _safe_url(url: str) -> str:
    """Return ``url`` without credentials or query (nothing secret is ever shown)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# A bearer credential, and a hub token ``kind:id:secret``, wherever they stand in a line
# (``token=board:...``, quoted in JSON or a repr).
_BEARER = re.compile(r"\bbearer\s+[^\s'\",;}\]]+", re.IGNORECASE)
_TOKEN = re.compile(r"\b(board|publisher|operator):([^\s:'\"]+):[^\s'\",;}\]]+")


def _redact(line: str) -> str:
    """Hide anything that looks like a token in a log line."""
    return _TOKEN.sub(r"\1:\2:***", _BEARER.sub("Bearer ***", line))
