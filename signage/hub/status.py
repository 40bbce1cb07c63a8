"""What the hub shows operators: the status page (Vietnamese), its JSON, Prometheus metrics and
the plays CSV. Pure functions of snapshots the hub passes in; no I/O.

Everything a board sends is untrusted text: it is escaped before it goes into the page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from signage.hub.registry import BoardRecord, PlayRow

REFRESH_S = 10


class Live(Protocol):
    """The hub's in-memory view of one board (signage.hub.server.LiveBoard)."""

    connected_since: float | None
    last_seen: float | None
    last_heartbeat: float | None
    status: Mapping[str, Any] | None
    versions: dict[str, int]
    screenshot_at: float | None
    disconnects: int
    last_error: str | None


def board_rows(
    records: Iterable[BoardRecord], live: Mapping[str, Live], online: set[str], now: float
) -> list[dict[str, Any]]:
    """Return one row per registered board: registry facts merged with the latest heartbeat."""
    rows = []
    for record in records:
        state = live.get(record.id)
        status = (state.status if state is not None else None) or record.status or {}
        last_seen = state.last_seen if state is not None and state.last_seen else record.last_seen
        versions = dict(state.versions) if state and state.versions else dict(record.versions or {})
        content = _map(status, "content")
        system = _map(status, "system")
        display = _map(status, "display")
        disk = _map(system, "disk")
        memory = _map(system, "memory")
        link = _map(status, "link")
        board_error = status.get("last_error")
        rows.append(
            {
                "id": record.id,
                "name": record.name,
                "area": record.area,
                "online": record.id in online,
                "connected_since": state.connected_since if state is not None else None,
                "last_seen": last_seen,
                "last_heartbeat": (state.last_heartbeat if state is not None else None)
                or record.last_heartbeat,
                "software": status.get("software"),
                "board_time": status.get("time"),
                "item": content.get("item"),
                "template": content.get("template"),
                "reason": content.get("reason"),
                "alerts": content.get("alerts") or [],
                "versions": versions,
                "items": content.get("items"),
                "display_on": display.get("on"),
                "screen": (
                    f"{display['width']}x{display['height']}"
                    if isinstance(display.get("width"), int)
                    and isinstance(display.get("height"), int)
                    else None
                ),
                "fps": display.get("fps"),
                "dropped": display.get("dropped"),
                "cpu_percent": system.get("cpu_percent"),
                "temperature_c": system.get("temperature_c"),
                "memory_percent": memory.get("percent"),
                "disk_free": disk.get("free"),
                "disk_total": disk.get("total"),
                "uptime_s": system.get("process_uptime_s"),
                "rtt_ms": link.get("rtt_ms"),
                "reconnects": link.get("reconnects"),
                "outbox": status.get("outbox"),
                "last_error": (
                    f"{board_error.get('code')}: {board_error.get('message')}"
                    if isinstance(board_error, Mapping)
                    else (state.last_error if state is not None else None)
                ),
                "screenshot": (
                    f"/screenshots/{record.id}.png"
                    if state is not None and state.screenshot_at is not None
                    else None
                ),
                "screenshot_at": state.screenshot_at if state is not None else None,
            }
        )
    return rows


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


# -- the page -----------------------------------------------------------------------------------

_STYLE = """
body{font-family:"Be Vietnam Pro","Noto Sans",system-ui,sans-serif;margin:0;background:#f3f5f8;
color:#17202a}
header{background:#b3261e;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;font-size:14px;opacity:.9}
main{padding:16px 24px}
.cards{display:flex;gap:12px;margin-bottom:16px;flex-wrap:wrap}
.card{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 2px #0002;
min-width:130px}
.card b{display:block;font-size:26px}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002;
font-size:14px}
th,td{padding:7px 9px;border-bottom:1px solid #e3e7ec;text-align:left;vertical-align:top}
th{background:#e9edf2;font-weight:600}
.on{color:#0a7d32;font-weight:600}.off{color:#b3261e;font-weight:600}
tr.offline td{background:#fdf1f0}
.card.bad{background:#fdf1f0;color:#8c1d18}
.muted{color:#6b7785;font-size:12px}
.err{color:#b3261e;font-size:12px}
.warn{color:#a34700;font-size:12px;font-weight:600}
img.shot{width:160px;border:1px solid #ccd;border-radius:3px;display:block}
.alert{background:#fff4e5;border-left:5px solid #e65100;padding:8px 12px;margin:6px 0}
footer{padding:12px 24px;font-size:13px;color:#6b7785}
footer a{color:#1a56a8;margin-right:16px}
"""


def status_page(snapshot: Mapping[str, Any], now: float, tz: ZoneInfo) -> str:
    """Return the operator status page (Vietnamese HTML) for a hub snapshot."""
    boards: list[Mapping[str, Any]] = snapshot["boards"]
    alerts: list[Mapping[str, Any]] = snapshot["alerts"]
    online = sum(1 for b in boards if b["online"])
    shown_alerts = sum(1 for b in boards if b["online"] and b["alerts"])
    rows = "\n".join(_board_row(b, now, tz) for b in boards) or (
        '<tr><td colspan="9" class="muted">Chưa có bảng tin nào được đăng ký.'
        " Dùng lệnh <code>signage hub board add</code>.</td></tr>"
    )
    alert_html = (
        "\n".join(
            f'<div class="alert"><b>{escape(a["headline"] or a["identifier"])}</b>'
            f'<div class="muted">{escape(a["identifier"])} · {escape(a["publisher"])}'
            f" · địa bàn {escape(a['area'] or 'tất cả')}"
            f" · hết hiệu lực {_clock(a['expires'], tz)}</div></div>"
            for a in alerts
        )
        or '<p class="muted">Không có cảnh báo nào đang có hiệu lực.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bảng tin điện tử — trạng thái ({online}/{len(boards)} trực tuyến)</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>Bảng tin điện tử công cộng — trạng thái hệ thống</h1>
<p>Cập nhật lúc {_clock(now, tz)} · trang tự làm mới sau {REFRESH_S} giây</p></header>
<main>
<div class="cards">
<div class="card"><b id="online">{online}/{len(boards)}</b>bảng tin trực tuyến</div>
<div class="card{" bad" if online < len(boards) else ""}"><b>{len(boards) - online}</b>\
ngoại tuyến</div>
<div class="card"><b>{len(alerts)}</b>cảnh báo có hiệu lực</div>
<div class="card"><b>{shown_alerts}</b>bảng đang hiện cảnh báo</div>
</div>
<h2>Cảnh báo khẩn cấp đang có hiệu lực</h2>
{alert_html}
<h2>Danh sách bảng tin</h2>
<table id="boards">
<thead><tr><th>Bảng tin</th><th>Địa bàn</th><th>Trạng thái</th><th>Đang chiếu</th>
<th>Phiên bản nội dung</th><th>CPU</th><th>Nhiệt độ</th><th>Đĩa trống</th>
<th>Ảnh màn hình</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</main>
<footer><a href="/api/boards">Dữ liệu JSON</a><a href="/api/reports/plays">Báo cáo lượt phát
(CSV, 7 ngày)</a><a href="/metrics">Chỉ số (Prometheus)</a></footer>
</body></html>
"""


def _board_row(b: Mapping[str, Any], now: float, tz: ZoneInfo) -> str:
    if b["online"]:
        since = _clock(b["connected_since"], tz)
        state = f'<span class="on">● Trực tuyến</span><div class="muted">từ {since}</div>'
    else:
        state = '<span class="off">● Ngoại tuyến</span>'
    seen = (
        f'<div class="muted">liên lạc {_ago(now - b["last_seen"])}</div>'
        if b["last_seen"]
        else '<div class="muted">chưa từng kết nối</div>'
    )
    if b["display_on"] is False:
        showing = "<i>màn hình đang tắt</i>"
    elif b["item"]:
        reason = {"emergency": "khẩn cấp", "scheduled": "theo lịch", "idle": "chờ"}.get(
            str(b["reason"]), str(b["reason"] or "")
        )
        template = escape(str(b["template"] or ""))
        showing = f'{escape(str(b["item"]))}<div class="muted">{template} · {escape(reason)}</div>'
    else:
        showing = '<span class="muted">—</span>'
    if b["online"] and b["alerts"]:
        shown = ", ".join(escape(str(a).removeprefix("alert:")) for a in b["alerts"])
        showing += f'<div class="warn">Đang hiện cảnh báo: {shown}</div>'
    versions = (
        "<br>".join(f"{escape(p)}@{v}" for p, v in sorted(b["versions"].items()))
        or '<span class="muted">chưa có</span>'
    )
    error = f'<div class="err">{escape(str(b["last_error"]))}</div>' if b["last_error"] else ""
    shot = (
        f'<a href="{escape(b["screenshot"])}">'
        f'<img class="shot" alt="Ảnh màn hình {escape(b["id"])}"'
        f' src="{escape(b["screenshot"])}?t={int(b["screenshot_at"] or 0)}"></a>'
        f'<div class="muted">{_clock(b["screenshot_at"], tz)}</div>'
        if b["screenshot"]
        else '<span class="muted">chưa có</span>'
    )
    return (
        f'<tr data-board="{escape(b["id"])}" class="{"online" if b["online"] else "offline"}">'
        f"<td><b>{escape(b['name'])}</b>"
        f'<div class="muted">{escape(b["id"])}</div></td>'
        f"<td>{escape(b['area'] or 'tất cả')}</td><td>{state}{seen}</td>"
        f"<td>{showing}</td><td>{versions}{error}</td>"
        f"<td>{_number(b['cpu_percent'], '%')}</td><td>{_number(b['temperature_c'], ' °C')}</td>"
        f"<td>{_bytes(b['disk_free'])}</td><td>{shot}</td></tr>"
    )


def _clock(moment: Any, tz: ZoneInfo) -> str:
    if not isinstance(moment, int | float):
        return "—"
    return datetime.fromtimestamp(moment, tz).strftime("%H:%M:%S %d/%m/%Y")


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)} giây trước"
    if seconds < 3600:
        return f"{int(seconds // 60)} phút trước"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} giờ trước"
    return f"{int(seconds // 86_400)} ngày trước"


def _number(value: Any, unit: str) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return '<span class="muted">—</span>'
    return f"{value:.0f}{unit}"


def _bytes(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return '<span class="muted">—</span>'
    return f"{value / 2**30:.1f} GiB"


def login_page(failed: bool) -> str:
    """Return the page that asks for the operator token (Vietnamese HTML)."""
    note = '<p class="err">Mã không đúng.</p>' if failed else ""
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>Đăng nhập — bảng tin điện tử</title>
<style>{_STYLE}</style></head><body>
<header><h1>Bảng tin điện tử công cộng — trạng thái hệ thống</h1></header>
<main><p>Trang này dành cho cán bộ vận hành. Nhập mã vận hành (tạo bằng lệnh
<code>signage hub operator add TÊN</code>):</p>{note}
<form action="/login" method="get"><input name="token" type="password" size="60"
autocomplete="off"> <button type="submit">Đăng nhập</button></form></main></body></html>
"""


# -- machines -----------------------------------------------------------------------------------

_METRICS = (
    # (name, type, help, counter key or None for a value in the figures)
    ("signage_hub_boards_registered", "gauge", "Boards in the registry.", None),
    ("signage_hub_boards_online", "gauge", "Boards connected now.", None),
    ("signage_hub_uptime_seconds", "gauge", "Seconds since the hub started.", None),
    ("signage_hub_messages_received_total", "counter", "Text messages received from boards.", None),
    ("signage_hub_heartbeats_total", "counter", "Heartbeats received.", "heartbeats"),
    ("signage_hub_pushes_total", "counter", "Documents sent to boards by fan-out.", "pushes"),
    ("signage_hub_report_entries_total", "counter", "Report entries stored.", "report_entries"),
    (
        "signage_hub_report_duplicates_total",
        "counter",
        "Report entries sent again (lost acks).",
        "report_duplicates",
    ),
    (
        "signage_hub_faults_total",
        "counter",
        "Messages refused (malformed, too large, too fast).",
        "faults",
    ),
    (
        "signage_hub_auth_failures_total",
        "counter",
        "Requests with a missing or wrong token.",
        "auth_failures",
    ),
    (
        "signage_hub_replaced_connections_total",
        "counter",
        "Board connections closed because the same board connected again.",
        "replaced_connections",
    ),
)


def metrics_text(figures: Mapping[str, Any]) -> str:
    """Return hub figures in the Prometheus text exposition format (version 0.0.4)."""
    counters: Mapping[str, int] = figures["counters"]
    values = {
        "signage_hub_boards_registered": figures["boards_registered"],
        "signage_hub_boards_online": figures["boards_online"],
        "signage_hub_uptime_seconds": round(figures["uptime_s"], 3),
        "signage_hub_messages_received_total": figures["messages"],
    }
    lines = []
    for name, kind, help_text, key in _METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines.append(f"{name} {values[name] if key is None else counters.get(key, 0)}")
    labelled = (
        (
            "signage_hub_acks_total",
            "Board answers to documents, by result.",
            "result",
            {"ok": counters.get("acks_ok", 0), "refused": counters.get("acks_refused", 0)},
        ),
        (
            "signage_hub_connections_total",
            "Connections accepted, by role.",
            "role",
            {
                "board": counters.get("board_connections", 0),
                "publisher": counters.get("publisher_connections", 0),
            },
        ),
        (
            "signage_hub_published_total",
            "Documents accepted from publishers, by kind.",
            "kind",
            {k: counters.get(f"published_{k}", 0) for k in ("bundle", "alert", "command")},
        ),
        (
            "signage_hub_errors_total",
            "Faults by error code.",
            "code",
            {k.removeprefix("fault:"): v for k, v in counters.items() if k.startswith("fault:")},
        ),
    )
    for name, help_text, label, series in labelled:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        for value_label, value in sorted(series.items()):
            lines.append(f'{name}{{{label}="{_label(value_label)}"}} {value}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def plays_csv(rows: Iterable[PlayRow]) -> str:
    """Return daily plays as CSV: board, area, day, item, plays, seconds."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["board", "area", "day", "item", "plays", "seconds"])
    for row in rows:
        writer.writerow([row.board, row.area, row.day, row.item, row.plays, f"{row.seconds:.1f}"])
    return out.getvalue()
