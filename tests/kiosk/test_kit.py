"""The deployment kit in kiosk/: the config templates parse, the systemd units verify and say
what the board needs, and install.sh lays out a throwaway root and keeps a technician's files."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from signage.board.config import _KEYS, BoardConfig, load_config, parse_config
from signage.errors import ConfigError
from signage.hub.server import _HUB_KEYS, load_hub_config

REPO = Path(__file__).resolve().parents[2]
KIOSK = REPO / "kiosk"
BOARD_TEMPLATE = KIOSK / "board.toml.template"
HUB_TEMPLATE = KIOSK / "hub.toml.template"
UNITS = ("signage-player.service", "signage-hub.service")
PLAYER = "/opt/signage/.venv/bin/signage play --config /etc/signage/board.toml"

# What a technician writes over the board template's placeholders.
FILLED = {
    "@BOARD_ID@": "kt-sa-thay-01",
    "@BOARD_NAME@": "UBND xã Sa Thầy",
    "@AREA@": "62/23456",
    "@HUB_HOST@": "hub.example.gov.vn",
    "@PUBLISHER_ID@": "tinh-62",
}


def fill(text: str) -> str:
    for placeholder, value in FILLED.items():
        text = text.replace(placeholder, value)
    assert not re.search(r"(?m)^[^#\n]*@[A-Z_]+@", text), "a placeholder the test does not know"
    return text


def with_options(text: str) -> str:
    """The template with every optional setting ("#key = ..." or "#[section]") turned on."""
    return re.sub(r"(?m)^#(?=\[|[a-z_]+ = )", "", text)


def keys_of(data: dict[str, object]) -> dict[str, set[str]]:
    return {section: set(table) for section, table in data.items() if isinstance(table, dict)}


# -- templates ------------------------------------------------------------------------------------


def test_board_template_parses_once_filled_in() -> None:
    config = parse_config(tomllib.loads(fill(BOARD_TEMPLATE.read_text(encoding="utf-8"))))
    assert config.board_id == "kt-sa-thay-01"
    assert config.name == "UBND xã Sa Thầy"
    assert config.area == "62/23456"
    assert config.timezone == "Asia/Ho_Chi_Minh"
    assert config.size is None  # "auto"
    assert config.fullscreen
    assert config.data_dir == Path("/var/lib/signage")
    assert config.hub_url == "wss://hub.example.gov.vn/board"
    assert config.hub_token_file == Path("/etc/signage/token")
    assert config.trusted_keys == (Path("/etc/signage/keys/tinh-62.pub"),)
    assert not config.allow_insecure
    assert config.power_on == ()  # [power] is optional: always on
    defaults = BoardConfig()
    assert (config.rotate, config.transition, config.transition_ms, config.fps) == (
        defaults.rotate,
        defaults.transition,
        defaults.transition_ms,
        defaults.fps,
    )


def test_board_template_from_its_installed_place(tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_text(fill(BOARD_TEMPLATE.read_text(encoding="utf-8")), encoding="utf-8")
    assert load_config(path).board_id == "kt-sa-thay-01"


def test_board_template_options_parse_and_cover_every_key() -> None:
    data = tomllib.loads(with_options(fill(BOARD_TEMPLATE.read_text(encoding="utf-8"))))
    assert keys_of(data) == _KEYS, "the template must show every board.toml key"
    config = parse_config(data)
    assert config.logo == Path("/etc/signage/logo.png")
    assert config.hub_ca_file == Path("/etc/signage/hub-ca.pem")
    assert len(config.power_on) == 7  # Monday-Friday, Saturday twice, Sunday off
    assert config.power_off_command[0] == "cec-ctl"


def test_unedited_board_template_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(tomllib.loads(BOARD_TEMPLATE.read_text(encoding="utf-8")))
    assert refused.value.path == "board.id"


def test_every_key_of_the_templates_is_explained() -> None:
    for template in (BOARD_TEMPLATE, HUB_TEMPLATE):
        previous = ""
        for line in template.read_text(encoding="utf-8").splitlines():
            if re.match(r"#?[a-z_]+ = ", line) and not line.startswith("#["):
                assert previous.startswith("#"), f"{template.name}: no comment above {line!r}"
            previous = line


def test_hub_template_loads(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    text = HUB_TEMPLATE.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    config = load_hub_config(path)
    assert (config.host, config.port) == ("127.0.0.1", 8765)
    assert config.data_dir == Path("/var/lib/signage-hub")
    assert config.tls_cert is None

    path.write_text(with_options(text), encoding="utf-8")
    assert keys_of(tomllib.loads(with_options(text))) == _HUB_KEYS
    config = load_hub_config(path)
    assert config.tls_cert == Path("/etc/signage-hub/fullchain.pem")


# -- systemd units -------------------------------------------------------------------------------


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """The unit file as {section: [(key, value), ...]} (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in (KIOSK / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key, value))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    (value,) = values(section, key)
    return value


def words(section: list[tuple[str, str]], key: str) -> set[str]:
    return {word for value in values(section, key) for word in value.split()}


def test_player_unit_restarts_and_watches_the_player() -> None:
    u = unit("signage-player.service")
    service, head = u["Service"], u["Unit"]
    assert one(service, "ExecStart") == f"/usr/bin/cage -s -- {PLAYER}"
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "all"  # cage is the main PID, the player its child
    assert one(service, "WatchdogSec") == "30"
    assert one(service, "TimeoutStartSec") == "120"
    assert one(service, "Restart") == "always"
    assert one(service, "RestartSec") == "2"
    assert not values(service, "RestartPreventExitStatus")  # exit 75 must restart
    # A PAM session would move cage and the player into a session scope, out of the reach of
    # NotifyAccess=all and of the watchdog's kill.
    assert not values(service, "PAMName")
    assert one(service, "User") == "signage"
    assert one(service, "TTYPath") == "/dev/tty1"
    assert one(service, "StandardInput") == "tty-fail"
    assert one(service, "StandardError") == "journal"
    assert "network-online.target" in words(head, "After") & words(head, "Wants")
    assert "seatd.service" in words(head, "After") & words(head, "Wants")
    assert one(head, "Conflicts") == "getty@tty1.service"
    assert one(head, "StartLimitIntervalSec") == "0"
    env = dict(v.split("=", 1) for v in values(service, "Environment"))
    assert env["SDL_VIDEODRIVER"] == "wayland,x11"
    # The player defaults to software framebuffers, which SDL's Wayland driver lacks.
    assert env["SDL_FRAMEBUFFER_ACCELERATION"] == "1"
    assert env["LIBSEAT_BACKEND"] == "seatd"
    assert env["XDG_RUNTIME_DIR"] == f"/run/{one(service, 'RuntimeDirectory')}"
    assert any("setterm" in v and "--blank 0" in v for v in values(service, "ExecStartPre"))
    assert all(v.startswith("-") for v in values(service, "ExecStartPre"))
    assert one(service, "NoNewPrivileges") == "yes"
    for breaks_drm in ("PrivateDevices", "DeviceAllow", "ProtectClock", "MemoryDenyWriteExecute"):
        assert not values(service, breaks_drm), breaks_drm
    assert one(u["Install"], "WantedBy") == "graphical.target"


def test_hub_unit_is_sandboxed() -> None:
    u = unit("signage-hub.service")
    service = u["Service"]
    assert one(service, "ExecStart") == (
        "/opt/signage/.venv/bin/signage hub serve --config /etc/signage-hub/hub.toml"
    )
    assert one(service, "User") == "signage-hub"
    assert one(service, "StateDirectory") == "signage-hub"
    assert one(service, "Restart") == "always"
    assert one(service, "ProtectSystem") == "strict"
    assert words(service, "RestrictAddressFamilies") == {"AF_INET", "AF_INET6", "AF_UNIX"}
    for key in ("ProtectHome", "PrivateTmp", "NoNewPrivileges", "PrivateDevices"):
        assert one(service, key) == "yes", key
    assert "network-online.target" in words(u["Unit"], "After") & words(u["Unit"], "Wants")


def systemd_unit_dir() -> Path | None:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    return None


def verify_units(root: Path) -> None:
    """Run systemd-analyze verify on the units installed in ``root``, which gets systemd's own
    units and a stand-in for each program the units start (cage, the player) where missing."""
    analyze = shutil.which("systemd-analyze")
    system_units = systemd_unit_dir()
    if analyze is None or system_units is None:
        pytest.skip("systemd-analyze or systemd's units are not installed")
    shutil.copytree(
        system_units, root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True
    )
    for name in UNITS:
        text = (root / "etc/systemd/system" / name).read_text(encoding="utf-8")
        for command in re.findall(r"(?m)^Exec\w+=[-+@!:]*(\S+)", text):
            program = root / command.lstrip("/")
            if not program.exists():
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n", encoding="utf-8")
                program.chmod(0o755)
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", *(f"/etc/systemd/system/{n}" for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # verify only warns about unknown keys and bad values (exit 0): any output is a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr + result.stdout


def test_units_verify(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        shutil.copy(KIOSK / name, tmp_path / "etc/systemd/system" / name)
    verify_units(tmp_path)


def test_verify_catches_a_typo(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        text = (KIOSK / name).read_text(encoding="utf-8")
        if name == "signage-player.service":
            text = text.replace("NotifyAccess=all", "NotifyAcess=all")
        (tmp_path / "etc/systemd/system" / name).write_text(text, encoding="utf-8")
    with pytest.raises(AssertionError, match="NotifyAcess"):
        verify_units(tmp_path)


# -- install.sh --------------------------------------------------------------------------------


def test_install_brings_what_the_player_unit_needs() -> None:
    script = (KIOSK / "install.sh").read_text(encoding="utf-8")
    board = re.search(r"(?s)if board; then\n  # cage.*?packages\+=\((.*?)\)", script)
    assert board is not None
    # Debian 12's cage 0.1.4 refuses to start without Xwayland; seatd hands it the seat;
    # chvt (kbd) and setterm (util-linux) run before it.
    for package in ("cage", "xwayland", "seatd", "kbd", "util-linux", "libfribidi0"):
        assert package in board.group(1).split(), package
    assert "seatd.service" in script  # enabled with the player


def test_scripts_parse() -> None:
    for script in sorted(KIOSK.glob("*.sh")):
        result = subprocess.run(
            ["bash", "-n", str(script)], check=False, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{script.name}: {result.stderr}"
    shellcheck = shutil.which("shellcheck")
    if shellcheck is not None:
        scripts = [str(s) for s in sorted(KIOSK.glob("*.sh"))]
        result = subprocess.run([shellcheck, *scripts], check=False, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def os_tree(root: Path) -> Path:
    """A throwaway root with the user databases of this machine, as an OS tree has them."""
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        if os.access(Path("/etc", name), os.R_OK):  # shadow files: root only
            shutil.copy2(Path("/etc", name), root / "etc" / name)
    return root


def install(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KIOSK / "install.sh"), "--root", str(root), "--no-apt", "--no-venv", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def entry(root: Path, database: str, name: str) -> list[str]:
    for line in (root / "etc" / database).read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    raise AssertionError(f"no {name} in {database}")


def names(root: Path, database: str) -> list[str]:
    lines = (root / "etc" / database).read_text(encoding="utf-8").splitlines()
    return [line.split(":")[0] for line in lines]


def owner_mode(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def tree(root: Path) -> dict[str, tuple[int, int, int, int]]:
    return {str(p.relative_to(root)): (*owner_mode(p), p.stat().st_size) for p in root.rglob("*")}


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    root = os_tree(tmp_path / "root")
    before = tree(root)
    result = install(root, "--role", "both", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would run: useradd --prefix" in result.stdout
    assert tree(root) == before


def test_bad_option_is_refused(tmp_path: Path) -> None:
    result = install(os_tree(tmp_path / "root"), "--role", "kiosk", "--dry-run")
    assert result.returncode != 0
    assert "--role must be board, hub or both" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh makes users and sets owners: needs root")
@pytest.mark.skipif(shutil.which("useradd") is None, reason="useradd (passwd package) is missing")
def test_install_into_a_throwaway_root(tmp_path: Path) -> None:
    root = os_tree(tmp_path / "root")
    host_passwd = Path("/etc/passwd").read_text(encoding="utf-8")

    first = install(root, "--role", "both")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "install: " in first.stdout

    # users, in the root's databases only
    signage = entry(root, "passwd", "signage")
    assert signage[5:] == ["/var/lib/signage", "/usr/sbin/nologin"]
    hub_user = entry(root, "passwd", "signage-hub")
    assert hub_user[5] == "/var/lib/signage-hub"
    uid, gid = int(signage[2]), int(entry(root, "group", "signage")[2])
    hub_uid, hub_gid = int(hub_user[2]), int(entry(root, "group", "signage-hub")[2])
    for group in ("video", "render", "input", "audio"):
        if group in names(root, "group"):
            assert "signage" in entry(root, "group", group)[3].split(","), group
    assert Path("/etc/passwd").read_text(encoding="utf-8") == host_passwd

    # units and configuration
    for name in UNITS:
        installed = root / "etc/systemd/system" / name
        assert installed.read_bytes() == (KIOSK / name).read_bytes()
        assert owner_mode(installed) == (0, 0, 0o644)
    board_toml = root / "etc/signage/board.toml"
    assert board_toml.read_bytes() == BOARD_TEMPLATE.read_bytes()
    assert owner_mode(board_toml) == (0, gid, 0o640)
    token = root / "etc/signage/token"
    assert token.read_bytes() == b""
    assert owner_mode(token) == (0, gid, 0o640)
    assert owner_mode(root / "etc/signage") == (0, gid, 0o750)
    assert owner_mode(root / "etc/signage/keys") == (0, gid, 0o750)
    assert owner_mode(root / "var/lib/signage") == (uid, gid, 0o750)
    hub_toml = root / "etc/signage-hub/hub.toml"
    assert hub_toml.read_bytes() == HUB_TEMPLATE.read_bytes()
    assert owner_mode(hub_toml) == (0, hub_gid, 0o640)
    assert owner_mode(root / "var/lib/signage-hub") == (hub_uid, hub_gid, 0o750)

    # the software: the package source, without the checkout's own venv, history or caches
    opt = root / "opt/signage"
    assert (opt / "pyproject.toml").read_bytes() == (REPO / "pyproject.toml").read_bytes()
    assert (opt / "signage/cli.py").is_file()
    assert (opt / "layouts").is_dir()
    assert (opt / "fonts").is_dir()
    assert (opt / "kiosk/install.sh").is_file()
    for left_out in (".git", ".venv", "__pycache__"):
        assert not list(opt.rglob(left_out)), left_out
    assert owner_mode(opt / "signage/cli.py")[:2] == (0, 0)

    verify_units(root)

    # A second run (an update) keeps the technician's files, fixes the token's mode, replaces
    # the software but not its venv, and makes no second user.
    board_toml.write_text(fill(BOARD_TEMPLATE.read_text(encoding="utf-8")), encoding="utf-8")
    token.write_text("board:kt-sa-thay-01:secret\n", encoding="utf-8")
    token.chmod(0o644)
    hub_toml.write_text('[hub]\nlisten = "0.0.0.0:8765"\n', encoding="utf-8")
    (opt / "stale.py").write_text("", encoding="utf-8")
    (opt / ".venv").mkdir(exist_ok=True)
    (opt / ".venv/marker").write_text("", encoding="utf-8")

    second = install(root, "--role", "both")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "kept /etc/signage/board.toml" in second.stdout
    assert board_toml.read_text(encoding="utf-8").startswith("# /etc/signage/board.toml")
    assert load_config(board_toml).board_id == "kt-sa-thay-01"
    assert token.read_text(encoding="utf-8") == "board:kt-sa-thay-01:secret\n"
    assert owner_mode(token) == (0, gid, 0o640)
    assert hub_toml.read_text(encoding="utf-8") == '[hub]\nlisten = "0.0.0.0:8765"\n'
    assert not (opt / "stale.py").exists()
    assert (opt / ".venv/marker").exists()
    assert names(root, "passwd").count("signage") == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh makes users and sets owners: needs root")
@pytest.mark.skipif(shutil.which("useradd") is None, reason="useradd (passwd package) is missing")
def test_install_hub_only(tmp_path: Path) -> None:
    root = os_tree(tmp_path / "root")
    result = install(root, "--role", "hub")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "etc/systemd/system/signage-hub.service").is_file()
    assert not (root / "etc/systemd/system/signage-player.service").exists()
    assert not (root / "etc/signage").exists()
    assert "signage" not in names(root, "passwd")
