"""The hub's commands as an operator and a publisher type them: ``signage hub …`` on the
registry, and ``signage push|alert|command|boards|screenshot`` against a running hub with a
real board dialled in."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from signage.cli import main
from signage.hub.registry import SqliteRegistry
from signage.hub.server import Hub, HubConfig
from signage.protocol import PrivateKey, Trust
from tests.board.linkkit import Board, make_board, signed_example
from tests.conftest import REPO

HOUR = timedelta(hours=1)

T = TypeVar("T")


class HubThread:
    """A hub serving from its own event loop in a thread, so the CLI can run in this one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.hub: Hub | None = None
        self.boards: list[Board] = []

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self) -> None:
        self.thread.start()

        async def up() -> Hub:
            hub = Hub(HubConfig(port=0, data_dir=self.root / "data", screenshot_every_s=0))
            await hub.start()
            return hub

        self.hub = self.call(up())

    @property
    def url(self) -> str:
        assert self.hub is not None
        return self.hub.url

    def board(self, board_id: str, token: str, trust: Trust) -> Board:
        board = make_board(
            self.root / board_id, f"{self.url}/board", trust, token=token, board_id=board_id
        )
        self.call(board.start())
        self.boards.append(board)

        async def online() -> None:
            assert self.hub is not None
            channels = self.hub.channels
            while not (board_id in channels and channels[board_id].ready.is_set()):
                await asyncio.sleep(0.02)

        self.call(asyncio.wait_for(online(), 10))
        return board

    def stop(self) -> None:
        for board in self.boards:
            self.call(board.stop())
        if self.hub is not None:
            self.call(self.hub.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubThread]:
    running = HubThread(tmp_path / "hub")
    running.root.mkdir()
    running.start()
    yield running
    running.stop()


def _token(out: str) -> str:
    return [line for line in out.splitlines() if line.count(":") >= 2][-1].strip()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_registry_commands_print_tokens_once_and_refuse_conflicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'[hub]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    code, out = _cli(
        capsys, "hub", "board", "add", "kt-01", "--name", "UBND xã Sa Thầy", "--area",
        "62/23456", "--config", str(config),
    )  # fmt: skip
    assert code == 0
    token = _token(out)
    registry = SqliteRegistry(tmp_path / "data" / "registry.sqlite")
    principal = registry.authenticate(token)
    assert principal is not None and (principal.kind, principal.id) == ("board", "kt-01")
    registry.close()
    code, out = _cli(capsys, "hub", "board", "list", "--config", str(config))
    assert code == 0 and "kt-01" in out and "UBND xã Sa Thầy" in out and token not in out
    code, out = _cli(
        capsys, "hub", "board", "add", "kt-01", "--name", "x", "--area", "62", "--config",
        str(config),
    )  # fmt: skip
    assert code == 2 and "registry.conflict" in out
    key = PrivateKey.generate("tinh-62", "62")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "tinh-62.pub").write_text(key.public().to_json(), encoding="utf-8")
    code, out = _cli(
        capsys, "hub", "publisher", "add", "xa-1", "--key", str(tmp_path / "keys" / "tinh-62.pub"),
        "--config", str(config),
    )  # fmt: skip
    assert code == 2 and "not 'xa-1'" in out
    code, out = _cli(
        capsys, "hub", "publisher", "add", "tinh-62", "--key",
        str(tmp_path / "keys" / "tinh-62.pub"), "--area", "63", "--config", str(config),
    )  # fmt: skip
    assert code == 2 and "signature.out_of_scope" in out
    code, out = _cli(
        capsys, "hub", "publisher", "add", "tinh-62", "--key",
        str(tmp_path / "keys" / "tinh-62.pub"), "--config", str(config),
    )  # fmt: skip
    assert code == 0 and _token(out).startswith("publisher:tinh-62:")
    code, out = _cli(capsys, "hub", "operator", "add", "van-hanh", "--config", str(config))
    assert code == 0 and "/login?token=operator:van-hanh:" in out


def test_publisher_commands_against_a_running_hub(
    hub: HubThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hub.hub is not None
    key = PrivateKey.generate("tinh-62", "62")
    keyfile = tmp_path / "tinh-62.key"
    keyfile.write_text(key.to_json(), encoding="utf-8")
    registry = hub.hub.registry
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "tinh-62").write_text(registry.add_publisher(key.public(), "62", 0.0))
    (tokens / "op").write_text(registry.add_operator("van-hanh", 0.0))
    board_token = registry.add_board("kt-01", "UBND xã Sa Thầy", "62/23456", 0.0)
    registry.add_board("kt-02", "UBND xã Ya Xiêr", "62/23456", 0.0)
    board = hub.board("kt-01", board_token, Trust([key.public()]))
    common = ["--hub", hub.url, "--token-file", str(tokens / "tinh-62")]

    signed = tmp_path / "publish" / "bundle.signed"
    signed.parent.mkdir()
    signed.write_bytes(signed_example(key, tmp_path / "publish", 100))
    code, out = _cli(capsys, "push", str(signed), *common, "--wait", "20")
    assert code == 0, out
    assert "kt-01: applied" in out and "kt-02: offline" in out
    assert board.sync.store.versions() == {"tinh-62": 100}
    # The same bundle again: the hub refuses the rollback with the board-side code.
    code, out = _cli(capsys, "push", str(signed), *common)
    assert code == 2 and "bundle.version_not_newer" in out

    code, out = _cli(
        capsys, "alert", *common, "--key", str(keyfile), "--headline", "Cảnh báo lũ quét",
        "--description", "Mưa lớn kéo dài.", "--severity", "Extreme", "--expires", "+30",
        "--area", "62/23456", "--identifier", "lu-quet-1", "--wait", "10",
    )  # fmt: skip
    assert code == 0, out
    assert "alert lu-quet-1:" in out and "kt-01: applied" in out
    assert [item.id for item in board.sync.alert_items(_now())] == ["alert:lu-quet-1"]
    code, out = _cli(capsys, "alert", "cancel", "lu-quet-1", *common, "--key", str(keyfile))
    assert code == 0 and "kt-01: applied" in out, out
    assert board.sync.alert_items(_now()) == ()

    # A CAP 1.2 file: the shipped sample, its times moved to now.
    cap = (REPO / "examples" / "cap" / "bao-so-9.xml").read_text(encoding="utf-8")
    sent, expires = _now().replace(microsecond=0), _now().replace(microsecond=0) + HOUR
    cap = cap.replace("2026-12-02T17:00:00+07:00", sent.isoformat())
    cap = cap.replace("2026-12-03T17:00:00+07:00", expires.isoformat())
    (tmp_path / "cap.xml").write_text(cap, encoding="utf-8")
    code, out = _cli(
        capsys, "alert", *common, "--key", str(keyfile), "--cap", str(tmp_path / "cap.xml")
    )
    assert code == 0 and "alert 62-bao-9-2026:" in out and "kt-01: applied" in out, out
    assert [i.id for i in board.sync.alert_items(_now())] == ["alert:62-bao-9-2026"]
    # The sample as shipped has expired: the hub says so instead of relaying it.
    stale = REPO / "examples" / "cap" / "bao-so-9.xml"
    code, out = _cli(capsys, "alert", *common, "--key", str(keyfile), "--cap", str(stale))
    assert code == 2 and "alert.expired" in out, out

    code, out = _cli(capsys, "command", "blank", *common, "--key", str(keyfile), "--wait", "10")
    assert code == 0 and "kt-01: applied" in out and "kt-02: offline (commands" in out, out

    code, out = _cli(capsys, "boards", *common, "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["kt-01"]["online"] and not rows["kt-02"]["online"]
    assert rows["kt-01"]["versions"] == {"tinh-62": 100}
    code, out = _cli(capsys, "boards", "--hub", hub.url, "--token-file", str(tokens / "op"))
    assert code == 0 and "kt-01" in out and "online" in out and "offline" in out

    shot = tmp_path / "shot.png"
    code, out = _cli(capsys, "screenshot", "kt-01", *common, "--out", str(shot))
    assert code == 0, out
    assert shot.read_bytes() == hub.call(board.hooks.screenshot())
    code, out = _cli(capsys, "screenshot", "kt-02", *common, "--out", str(shot))
    assert code == 2 and "board.offline" in out

    code, out = _cli(capsys, "boards", "--hub", hub.url, "--token", "publisher:tinh-62:" + "x" * 43)
    assert code == 2 and "auth.failed" in out


def _now() -> Any:
    from datetime import datetime

    from tests.board.linkkit import TZ

    return datetime.now(TZ)
