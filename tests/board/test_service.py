"""What the player shares with systemd and the technician's tools: sd_notify (READY, WATCHDOG,
STOPPING) with fake times and from a real headless player, the status snapshot, the log tail,
and the local blank switch, which survives a restart and wakes a running player."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from signage import cli
from signage.board import service
from signage.board.agent import Conductor
from signage.board.config import BoardConfig, load_config, parse_config
from signage.board.display import Blank, Message
from signage.board.service import (
    Notifier,
    claim_pid,
    local_blank,
    log_tail,
    read_status,
    release_pid,
    set_local_blank,
    write_status,
)
from signage.compose import Composer
from signage.layout import Size
from signage.store import PlayLog

REPO = Path(__file__).resolve().parents[2]


class Listener:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.received: list[str] = []

    def drain(self) -> list[str]:
        """Return the messages that arrived since the last call."""
        new = []
        while True:
            try:
                new.append(self.sock.recv(4096).decode("utf-8"))
            except BlockingIOError:
                break
        self.received += new
        return new

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def listener(tmp_path: Path) -> Iterator[Listener]:
    listening = Listener(str(tmp_path / "notify"))
    yield listening
    listening.close()


# -- sd_notify with fake times ------------------------------------------------------------------


def test_ready_once_after_the_first_frame(listener: Listener, tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "notify"), None)
    assert notifier.enabled
    notifier.tick(0, 100.0)
    notifier.tick(0, 200.0)
    assert listener.drain() == []  # nothing drawn yet: not ready
    notifier.tick(1, 201.0)
    assert listener.drain() == ["READY=1\nSTATUS=showing content"]
    for frames, now in ((1, 202.0), (5, 300.0), (9, 10_000.0)):
        notifier.tick(frames, now)
    assert listener.drain() == []  # once, and no watchdog without WATCHDOG_USEC
    notifier.stopping()
    assert listener.drain() == ["STOPPING=1"]


def test_watchdog_at_half_the_interval(listener: Listener, tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "notify"), 2_000_000)  # WatchdogSec=2
    sent = []
    for now in (50.0, 50.4, 50.99, 51.0, 51.5, 51.99, 52.2, 52.5, 53.1, 53.25):
        notifier.tick(1, now)
        sent.append((now, listener.drain()))
    pings = [now for now, messages in sent if "WATCHDOG=1" in messages]
    assert pings == [50.0, 51.0, 52.2, 53.25]
    assert sent[0][1][0].startswith("READY=1\n")
    assert sum(m.startswith("READY=1") for _, ms in sent for m in ms) == 1


def test_abstract_socket_names(tmp_path: Path) -> None:
    name = f"signage-test-{os.getpid()}-{tmp_path.name}"
    listening = Listener("\0" + name)
    try:
        notifier = Notifier("@" + name, 1_000_000)
        notifier.tick(1, 10.0)
        assert listening.drain() == ["READY=1\nSTATUS=showing content", "WATCHDOG=1"]
    finally:
        listening.close()


def test_without_systemd_nothing_happens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier.from_env()
    assert not notifier.enabled and notifier.interval is None
    notifier.tick(1, 1.0)
    notifier.stopping()
    notifier.send("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    notifier = Notifier.from_env()
    assert notifier.path == str(tmp_path / "notify") and notifier.interval == 15.0
    monkeypatch.setenv("WATCHDOG_USEC", "soon")
    assert Notifier.from_env().interval is None
    # systemd went away: a warning in the log, never an exception in the frame loop.
    Notifier(str(tmp_path / "gone"), None).tick(1, 1.0)
    assert "sd_notify failed message=READY=1" in caplog.text


# -- the status snapshot and the log tail ---------------------------------------------------------


def test_status_round_trip(tmp_path: Path) -> None:
    assert read_status(tmp_path) is None
    status = {"board": "xa-sa-thay-01", "display": {"on": True}, "name": "UBND xã Sa Thầy"}
    before = time.time()
    write_status(tmp_path, status)
    snapshot = read_status(tmp_path)
    assert snapshot is not None
    assert snapshot[0] == status and before <= snapshot[1] <= time.time()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]
    (tmp_path / "status.json").write_text('{"written": 1, "stat', encoding="utf-8")
    assert read_status(tmp_path) is None


def test_status_writes_are_atomic(tmp_path: Path) -> None:
    write_status(tmp_path, {"n": 0})
    with pytest.raises(TypeError):
        write_status(tmp_path, {"n": 1, "bad": object()})  # fails half way through json.dump
    snapshot = read_status(tmp_path)
    assert snapshot is not None and snapshot[0] == {"n": 0}  # the old snapshot stands
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]  # no scratch file
    # A reader in another process never sees half a file.
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        for n in range(150):
            write_status(tmp_path, {"n": n, "padding": "x" * 20_000})
    finally:
        reader.send_signal(signal.SIGTERM)
        out, _ = reader.communicate(timeout=10)
    assert out.split() and set(out.split()) == {"ok"}, out


_READER = """
import json, pathlib, signal, sys
path = pathlib.Path(sys.argv[1]) / "status.json"
running = True
def stop(*_):
    global running
    running = False
signal.signal(signal.SIGTERM, stop)
reads = 0
while running:
    json.loads(path.read_text(encoding="utf-8"))["status"]["n"]
    reads += 1
print("ok" if reads else "none")
"""


def test_log_tail(tmp_path: Path) -> None:
    assert log_tail(tmp_path, 10) == []
    logs = tmp_path / service.LOG_DIR
    logs.mkdir()
    lines = [
        f"2026-11-21 08:30:{n % 60:02d},000 INFO signage.agent slide shown n={n}"
        for n in range(500)
    ]
    (logs / "player.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert log_tail(tmp_path, 40) == lines[-40:]
    assert log_tail(tmp_path, 1) == lines[-1:]
    assert log_tail(tmp_path, 1000) == lines


def test_log_tail_of_long_lines(tmp_path: Path) -> None:
    # A traceback or a big status line is longer than most: still whole lines, as many as asked.
    logs = tmp_path / service.LOG_DIR
    logs.mkdir()
    lines = [
        f"{n:04d} WARNING signage.link reason=" + "Không kết nối được. " * 40 for n in range(30)
    ]
    (logs / "player.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert log_tail(tmp_path, 5) == lines[-5:]


# -- the local blank switch -----------------------------------------------------------------------


def test_switch_on_and_off(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert local_blank(data) is None
    before = time.time()
    assert set_local_blank(data, True, "kỹ thuật viên") is False  # no player to tell
    state = local_blank(data)
    assert state is not None and state["on"] is True and state["by"] == "kỹ thuật viên"
    assert before <= state["since"] <= time.time()
    assert sorted(p.name for p in data.iterdir()) == [service.BLANK_FILE]
    assert set_local_blank(data, False, "kỹ thuật viên") is False
    assert local_blank(data) is None and not list(data.iterdir())
    (data / service.BLANK_FILE).write_text('{"on": fal', encoding="utf-8")
    assert local_blank(data) is None  # a damaged switch file does not blank the screen


_WAITER = """
import signal, sys
signal.signal(signal.SIGUSR1, lambda *_: sys.exit(7))
print("ready", flush=True)
signal.pause()
"""


def test_switch_signals_the_running_player(tmp_path: Path) -> None:
    # Looks like a player to the pid check: `signage` and `play` on its command line.
    child = subprocess.Popen(
        [sys.executable, "-c", _WAITER, "signage", "play"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        (tmp_path / service.PID_FILE).write_text(f"{child.pid}\n", encoding="utf-8")
        assert set_local_blank(tmp_path, True, "test") is True
        assert child.wait(timeout=10) == 7  # it got SIGUSR1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # That player has ended: nobody to tell, and nothing else is signalled.
    assert set_local_blank(tmp_path, False, "test") is False
    (tmp_path / service.PID_FILE).write_text("not a pid\n", encoding="utf-8")
    assert set_local_blank(tmp_path, True, "test") is False


def test_pid_file_is_claimed_and_released(tmp_path: Path) -> None:
    claim_pid(tmp_path)
    assert (tmp_path / service.PID_FILE).read_text().strip() == str(os.getpid())
    release_pid(tmp_path)
    assert not (tmp_path / service.PID_FILE).exists()
    (tmp_path / service.PID_FILE).write_text("1\n")  # another player's
    release_pid(tmp_path)
    assert (tmp_path / service.PID_FILE).exists()


def test_claiming_the_data_dir_sweeps_scratch_files_a_crash_left(tmp_path: Path) -> None:
    """A crash or power cut inside write_atomic leaves its temporary file; the next player
    sweeps them, but not a fresh one `signage blank` may be writing at that moment."""
    status = tmp_path / ".status.json.k2j4x9"
    old_blank = tmp_path / ".local-blank.json.a8d0q1"
    new_blank = tmp_path / ".local-blank.json.zz91pe"
    for path in (status, old_blank, new_blank):
        path.write_text("{", encoding="utf-8")
    hour_ago = time.time() - 3600
    os.utime(old_blank, (hour_ago, hour_ago))
    (tmp_path / "status.json").write_text("{}", encoding="utf-8")
    claim_pid(tmp_path)
    assert not status.exists() and not old_blank.exists()
    assert new_blank.exists() and (tmp_path / "status.json").exists()


def test_a_stale_pid_file_does_not_signal_another_program(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / service.PID_FILE).write_text(f"{other.pid}\n", encoding="utf-8")
        set_local_blank(tmp_path, True, "test")
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=0.5)
    finally:
        other.kill()
        other.wait()


class _Screen:
    """Stands in for the display: records what the conductor posts."""

    def __init__(self) -> None:
        self.posted: list[Message] = []

    def post(self, message: Message) -> None:
        self.posted.append(message)


def test_the_key_combination_turns_the_switch_over(composer: Composer, tmp_path: Path) -> None:
    config = parse_config({"data": {"dir": str(tmp_path / "data")}})
    loop = asyncio.new_event_loop()
    screen = _Screen()
    playlog = PlayLog(tmp_path / "plays.sqlite", ZoneInfo("Asia/Ho_Chi_Minh"))
    conductor = Conductor(
        config,
        composer,
        screen,  # type: ignore[arg-type]
        playlog,
        None,
        loop,
        Size(320, 180),
    )
    try:
        conductor._power()
        assert screen.posted == []  # no schedule, no switch: the screen stays on
        loop.run_until_complete(conductor.toggle_local_blank())  # Ctrl+Alt+B
        assert screen.posted == [Blank(True)] and conductor.blank_reason == "local"
        state = local_blank(config.data_dir)
        assert state is not None and state["by"] == "keyboard"
        conductor._power()  # a later check (clock jump, power job) keeps it blank
        assert screen.posted[-1] == Blank(True)
        loop.run_until_complete(conductor.toggle_local_blank())
        assert screen.posted[-1] == Blank(False) and conductor.blank_reason is None
        assert local_blank(config.data_dir) is None
    finally:
        conductor.pool.shutdown()
        playlog.close()
        loop.close()


# -- a real player: systemd notifications, and the switch across a restart ------------------------


@dataclass
class Run:
    """What a headless player under a fake systemd showed: its notifications, its status
    snapshots, its screenshots, its output."""

    config: BoardConfig
    notes: list[tuple[float, str]]
    blanked: dict[str, Any]
    shots_while_blank: list[str]
    woken: dict[str, Any]
    shots_after: list[str]
    log: str
    output: str
    code: int | None


def _wait(predicate: Any, timeout: float, what: str, poll: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poll is not None:
            poll()
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``signage blank on`` while no player runs; then the player starts under a fake systemd
    (NOTIFY_SOCKET, WATCHDOG_USEC=2 s) and must come up blank; then ``signage blank off``
    reaches it by SIGUSR1 and the slides come back."""
    root = tmp_path_factory.mktemp("player")
    data, shots = root / "data", root / "shots"
    config = root / "board.toml"
    config.write_text(f'[data]\ndir = "{data}"\n', encoding="utf-8")
    assert cli.main(["blank", "on", "--config", str(config)]) == 0
    listener = Listener(str(root / "notify"))
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(root / "notify"),
        "WATCHDOG_USEC": "2000000",
        "SDL_AUDIODRIVER": "dummy",
    }
    started = time.monotonic()
    notes: list[tuple[float, str]] = []

    def listen() -> None:
        notes.extend((time.monotonic() - started, m) for m in listener.drain())

    def status(after: float) -> dict[str, Any] | None:
        snapshot = read_status(data)
        return snapshot[0] if snapshot is not None and snapshot[1] > after else None

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signage",
            "play",
            "--config",
            str(config),
            "--content",
            str(REPO / "examples" / "xa-sa-thay"),
            "--headless",
            "--size",
            "320x180",
            "--exit-after",
            "30",
            "--screenshot-dir",
            str(shots),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The first status snapshot comes STATUS_S (5 s) after the start.
        blanked = _wait(lambda: status(0), 15, "the first status snapshot", listen)
        shots_while_blank = sorted(p.name for p in shots.glob("*.png"))
        turned = time.time()
        assert cli.main(["blank", "off", "--config", str(config)]) == 0
        woken = _wait(lambda: status(turned), 15, "a status after `blank off`", listen)
        shots_after = sorted(p.name for p in shots.glob("*.png"))
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        listen()
        listener.close()
    log = (data / "logs" / "player.log").read_text(encoding="utf-8")
    return Run(
        load_config(config),
        notes,
        blanked,
        shots_while_blank,
        woken,
        shots_after,
        log,
        output,
        process.returncode,
    )


def test_player_tells_systemd_ready_watchdog_and_stopping(run: Run) -> None:
    assert run.code == 0, run.output
    messages = [m for _, m in run.notes]
    assert messages[0] == "READY=1\nSTATUS=showing content"
    assert messages.count("READY=1\nSTATUS=showing content") == 1
    assert messages[-1] == "STOPPING=1"
    pings = [t for t, m in run.notes if m == "WATCHDOG=1"]
    assert len(pings) >= 5  # one a second for the whole run
    assert max(b - a for a, b in itertools.pairwise(pings)) < 1.6  # (of 2 s)
    assert run.notes[0][0] < 5, "READY=1 came late"


def test_local_blank_survives_a_restart(run: Run) -> None:
    # Switched on while no player ran: the player started blank...
    assert run.blanked["display"]["on"] is False
    assert run.blanked["display"]["blank_reason"] == "local"
    assert run.shots_while_blank == []  # no slide was drawn
    # ...and `signage blank off` told it (SIGUSR1): the slides came back at once.
    assert run.woken["display"]["on"] is True
    assert run.woken["display"]["blank_reason"] is None
    assert len(run.shots_after) >= 1
    assert "local blank switch on=False" in run.log
    assert run.code == 0, run.output


def test_the_snapshot_is_what_diag_reads(run: Run) -> None:
    from signage.diag.report import collect
    from tests.diag.diagkit import good_probes

    snapshot = read_status(run.config.data_dir)
    assert snapshot is not None
    diagnosis = collect(run.config, probes=good_probes(), now=snapshot[1] + 1)
    rows = {r.key: r.value for rows in diagnosis.sections.values() for r in rows}
    assert rows["player"].startswith("đang chạy")
    assert rows["size"] == "320x180" and rows["blank"] == "đang bật"
    assert rows["frames"].split(" / ")[1] != "-"  # slides shown, from the player's figures
    assert [f.code for f in diagnosis.findings if f.code != "diag.memory_low"] == []
