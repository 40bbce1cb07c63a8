#!/usr/bin/env bash
# Try the deployment kit for real in a throwaway Debian root. Needs root, debootstrap, and
# network to Debian's mirror and PyPI; takes a few minutes.
#
#  1. debootstrap a minimal system and run kiosk/install.sh --role both inside it with chroot
#     (real apt-get, a real venv with packages from PyPI; systemd is not running there, so the
#     units are only enabled), then run it again as an update;
#  2. check in the chroot: the command, fonts, text shaping, systemd-analyze verify of both
#     units, the config files and their modes, the player drawing as user signage (headless,
#     then inside cage with the unit's environment on wlroots' headless backend), and the
#     hub's registry as user signage-hub;
#  3. unless --no-boot (or without systemd-nspawn): boot the root with systemd in a container
#     and check the units under a real systemd: the hub serves; the player unit, with a test
#     drop-in for what a container lacks (tty1, DRM), becomes active only through the player's
#     READY=1 sent from under cage, gets watchdog pings, is killed by the watchdog when the
#     player freezes and restarted, and is restarted after the player exits by itself (as for
#     the hub's restart command).
#
# Usage: sudo bash kiosk/test-in-chroot.sh [--dir DIR] [--suite bookworm] [--mirror URL]
#                                          [--no-boot] [--keep]
set -euo pipefail

DIR=/tmp/kiosk-root
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
BOOT=1
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --suite) SUITE=$2; shift 2 ;;
    --mirror) MIRROR=$2; shift 2 ;;
    --no-boot) BOOT=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "test-in-chroot: unknown option: $1" >&2; exit 2 ;;
  esac
done

say() { printf '\ntest-in-chroot: %s\n' "$*"; }
die() { printf 'test-in-chroot: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it debootstraps, chroots and boots a container)"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MARK=.signage-test-root # only a folder holding this file is ever deleted
DIR=${DIR%/}

mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true
  done
  mounted=()
}
container=""
cleanup() {
  if [ -n "$container" ] && kill -0 "$container" 2>/dev/null; then
    kill "$container" 2>/dev/null || true
    wait "$container" 2>/dev/null || true
  fi
  unmount_all
  rm -f "$DIR/usr/sbin/policy-rc.d"
  if [ "$KEEP" = 0 ] && [ -e "$DIR/$MARK" ]; then
    rm -rf --one-file-system "$DIR"
  elif [ -e "$DIR/$MARK" ]; then
    echo "test-in-chroot: kept $DIR (delete it with: rm -rf --one-file-system $DIR)"
  fi
}
trap cleanup EXIT

if [ -e "$DIR" ]; then
  [ -e "$DIR/$MARK" ] || die "$DIR exists and was not made by this script: choose another --dir"
  say "removing the previous $DIR"
  for m in dev/shm dev/pts dev sys proc; do umount -l "$DIR/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$DIR"
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

say "debootstrap --variant=minbase $SUITE $DIR $MIRROR"
mkdir -p "$DIR"
touch "$DIR/$MARK"
debootstrap --variant=minbase "$SUITE" "$DIR" "$MIRROR" >"$DIR/$MARK" 2>&1 ||
  { tail -20 "$DIR/$MARK"; die "debootstrap failed"; }

mount_chroot() {
  mount -t proc proc "$DIR/proc" && mounted+=("$DIR/proc")
  mount -t sysfs sys "$DIR/sys" && mounted+=("$DIR/sys")
  mount --bind /dev "$DIR/dev" && mounted+=("$DIR/dev")
  mount --bind /dev/pts "$DIR/dev/pts" && mounted+=("$DIR/dev/pts")
  # cage shares buffers with its clients through /dev/shm: a private one for the chroot.
  mount -t tmpfs -o mode=1777,size=256m shm "$DIR/dev/shm" && mounted+=("$DIR/dev/shm")
}
mount_chroot
cp -L /etc/resolv.conf "$DIR/etc/resolv.conf"
# Trust the local CAs this machine trusts (a TLS-inspecting proxy on the way to PyPI, say):
# ca-certificates, installed by install.sh, adds them to the chroot's bundle.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$DIR/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$DIR/usr/local/share/ca-certificates/"
fi
# Packages must not start daemons inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$DIR/usr/sbin/policy-rc.d"
chmod 755 "$DIR/usr/sbin/policy-rc.d"

say "copying $SRC to $DIR/opt/src"
mkdir -p "$DIR/opt/src"
tar -C "$SRC" -cf - --exclude=./.git --exclude=./.venv --exclude=./out --exclude=__pycache__ \
  --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache --exclude=.hypothesis \
  --exclude=.import_linter_cache . | tar -C "$DIR/opt/src" -xf - --no-same-owner

inside() { # run a command in the chroot with a clean environment
  chroot "$DIR" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$@"
}

say "install.sh --role both --source /opt/src (first run)"
inside bash /opt/src/kiosk/install.sh --role both --source /opt/src
say "install.sh again (an update must keep the configuration)"
inside bash /opt/src/kiosk/install.sh --role both --source /opt/src

failed=0
check() { # check DESCRIPTION COMMAND...: show the command and its output, count failures
  local what=$1
  shift
  say "check: $what"
  echo "\$ $*"
  if "$@"; then
    echo "-> ok"
  else
    echo "-> FAILED"
    failed=$((failed + 1))
  fi
}
# Prints the output of COMMAND (in the chroot) and fails when there is any: systemd-analyze
# verify only warns about unknown keys and bad values, it does not fail on them.
silent() {
  local out
  out=$(inside "$@" 2>&1)
  echo "${out:-(no output)}"
  [ -z "$out" ]
}

check "the installed command" inside /opt/signage/.venv/bin/signage --version
check "signage on PATH" inside signage --version
check "fonts" inside /opt/signage/.venv/bin/signage fonts
check "Pillow shapes text (raqm with the system FriBiDi)" inside /opt/signage/.venv/bin/python -c \
  "from PIL import features; ok = features.check('raqm'); print('raqm', ok); raise SystemExit(not ok)"
for unit in signage-player.service signage-hub.service; do
  check "systemd-analyze verify $unit" silent systemd-analyze verify "/etc/systemd/system/$unit"
  check "$unit is enabled" inside systemctl is-enabled "$unit"
done
check "seatd is enabled" inside systemctl is-enabled seatd.service
check "boots to graphical.target" inside systemctl get-default
check "user signage and its groups" inside id signage
check "config, token and data dir: owners and modes" inside stat -c '%A %U:%G %n' /etc/signage \
  /etc/signage/keys /etc/signage/board.toml /etc/signage/token /var/lib/signage \
  /etc/signage-hub/hub.toml /var/lib/signage-hub
check "board.toml, filled in, parses" inside /opt/signage/.venv/bin/python -c "
import tomllib
from pathlib import Path
from signage.board.config import parse_config
text = Path('/etc/signage/board.toml').read_text(encoding='utf-8')
for key, value in {'BOARD_ID': 'kt-sa-thay-01', 'BOARD_NAME': 'UBND xã Sa Thầy', 'AREA': '62/23456',
                   'HUB_HOST': 'hub.example.gov.vn', 'PUBLISHER_ID': 'tinh-62'}.items():
    text = text.replace('@' + key + '@', value)
config = parse_config(tomllib.loads(text))
print(config.board_id, config.area, config.data_dir, config.hub_url, config.trusted_keys)"
check "the player draws for 8 s as user signage (headless)" inside runuser -u signage -- \
  env HOME=/var/lib/signage SDL_AUDIODRIVER=dummy /opt/signage/.venv/bin/signage play \
  --content /opt/signage/examples/xa-sa-thay --data-dir /var/lib/signage/chroot-test \
  --headless --exit-after 8 --screenshot-dir /var/lib/signage/chroot-test/screens

# The player inside cage with the environment the unit gives it, on wlroots' headless backend
# (no screen here). cage 0.1.4 exits 0 whatever the player did: judge by the player's output.
cat >"$DIR/tmp/cage-check.sh" <<'EOF'
set -u
unit=/etc/systemd/system/signage-player.service
env_args=$(sed -n 's/^Environment=//p' "$unit" | grep -v '^XDG_RUNTIME_DIR=')
runtime=$(mktemp -d)
# shellcheck disable=SC2086 # one word per VAR=value
out=$(env $env_args XDG_RUNTIME_DIR="$runtime" HOME=/var/lib/signage SDL_AUDIODRIVER=dummy \
  WLR_BACKENDS=headless WLR_RENDERER=pixman WLR_LIBINPUT_NO_DEVICES=1 \
  timeout 60 cage -s -- /opt/signage/.venv/bin/signage play --content /opt/signage/examples/xa-sa-thay \
  --data-dir /var/lib/signage/cage-test --exit-after 8 2>&1)
printf '%s\n' "$out" | grep -v 'drmGetDevices2'
printf '%s\n' "$out" | grep -q '^signage: played' && ! printf '%s\n' "$out" | grep -q 'signage: error'
EOF
check "the player inside cage, the unit's environment, SDL on Wayland (headless output)" \
  inside runuser -u signage -- sh /tmp/cage-check.sh
check "the hub's registry as user signage-hub" inside runuser -u signage-hub -- \
  /opt/signage/.venv/bin/signage hub board list --config /etc/signage-hub/hub.toml

# -- 3. under a real systemd --------------------------------------------------------------------

in_container() { nsenter -t "$init" -a "$@"; }
descends_from() { # descends_from PID ANCESTOR
  local p=$1
  while [ "$p" -gt 1 ]; do
    [ "$p" = "$2" ] && return 0
    p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || return 1
    [ -n "$p" ] || return 1
  done
  return 1
}
find_init() { # the host's pid of the container's systemd (pid 1 in its own namespace)
  local p
  for p in $(pgrep -x systemd); do
    if grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$p/status" && descends_from "$p" "$container"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
host_pid() { # host_pid PATTERN: the host's pid of a process in the container matching PATTERN
  local p
  for p in $(pgrep -f "$1"); do
    if [ "$(readlink "/proc/$p/ns/pid")" = "$(readlink "/proc/$init/ns/pid")" ]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
show() { in_container systemctl show -P "$2" "$1"; }
wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}
active_with_ready() {
  [ "$(show signage-player.service ActiveState)" = active ] &&
    [ "$(show signage-player.service StatusText)" = "showing content" ]
}
restarted_by_watchdog() {
  [ "$(show signage-player.service NRestarts)" -gt "$1" ] &&
    in_container journalctl -u signage-player.service -q --no-pager | grep -q "Watchdog timeout"
}
restarted() { [ "$(show signage-player.service NRestarts)" -gt "$1" ] && active_with_ready; }
watchdog_pinged() { # a ping newer than $1 (microseconds, monotonic)
  [ "$(show signage-player.service WatchdogTimestampMonotonic)" -gt "$1" ]
}

if [ "$BOOT" = 1 ] && ! command -v systemd-nspawn >/dev/null 2>&1; then
  say "no systemd-nspawn (package systemd-container): skipping the checks under systemd"
  BOOT=0
fi
if [ "$BOOT" = 1 ]; then
  unmount_all
  rm -f "$DIR/usr/sbin/policy-rc.d"
  # A container has no tty1 and no DRM: a drop-in runs cage on wlroots' headless backend, with
  # the example programme (the real board.toml still has its placeholders). Everything else,
  # Type=notify, NotifyAccess=all, the watchdog, the restarts, the sandbox, is the unit's own.
  mkdir -p "$DIR/etc/systemd/system/signage-player.service.d"
  cat >"$DIR/etc/systemd/system/signage-player.service.d/zz-container-test.conf" <<'EOF'
[Service]
StandardInput=null
TTYReset=no
TTYVHangup=no
TTYVTDisallocate=no
ExecStartPre=
ExecStart=
ExecStart=/usr/bin/cage -s -- /opt/signage/.venv/bin/signage play --content /opt/signage/examples/xa-sa-thay
Environment=WLR_BACKENDS=headless WLR_RENDERER=pixman WLR_LIBINPUT_NO_DEVICES=1 SDL_AUDIODRIVER=dummy
EOF
  say "booting $DIR with systemd-nspawn"
  systemd-nspawn -q --register=no --keep-unit -D "$DIR" -b --console=pipe -M signage-test \
    >"$DIR/nspawn.log" 2>&1 </dev/null &
  container=$!
  wait_for 60 find_init || die "the container did not boot (see $DIR/nspawn.log)"
  init=$(find_init)
  wait_for 90 in_container systemctl is-system-running --wait || true
  echo "system: $(in_container systemctl is-system-running || true)"

  check "signage-hub is active and serves /healthz" wait_for 30 in_container \
    /opt/signage/.venv/bin/python -c \
    "import urllib.request as u; assert u.urlopen('http://127.0.0.1:8765/healthz').read() == b'ok\n'"
  check "signage-player is active: READY=1 came from the player, a child of cage" \
    wait_for 60 active_with_ready
  in_container systemctl status signage-player.service --no-pager -n 0 | sed -n '1,12p' || true
  last=$(show signage-player.service WatchdogTimestampMonotonic)
  check "the watchdog gets pings (WatchdogSec=30: one every 15 s)" wait_for 40 watchdog_pinged "$last"
  before=$(show signage-player.service NRestarts)
  player=$(host_pid 'signage play --content') || player=""
  say "freezing the player (SIGSTOP to $player): the watchdog must kill and restart it"
  [ -n "$player" ] && kill -STOP "$player"
  check "killed by the watchdog and restarted" wait_for 80 restarted_by_watchdog "$before"
  in_container journalctl -u signage-player.service -q --no-pager -o cat |
    grep -E "Watchdog timeout|Fatal Python error|Failed with result|Scheduled restart" | tail -4 || true
  wait_for 60 active_with_ready || true
  before=$(show signage-player.service NRestarts)
  player=$(host_pid 'signage play --content') || player=""
  say "ending the player cleanly (SIGTERM to $player, as after the hub's restart command)"
  [ -n "$player" ] && kill -TERM "$player"
  check "restarted after a clean exit" wait_for 30 restarted "$before"
  kill -TERM "$container" # systemd-nspawn shuts the container down cleanly
  wait "$container" 2>/dev/null || true
  container=""
  rm -rf "$DIR/etc/systemd/system/signage-player.service.d"
fi

if [ "$failed" -gt 0 ]; then
  say "$failed check(s) FAILED"
  exit 1
fi
say "all checks passed"
