#!/usr/bin/env bash
# Make a Debian 12 or Ubuntu 24.04 machine a signage board (or hub) that starts at boot and
# restarts itself. Run as root; running it again updates the software and changes nothing
# else: a board.toml, hub.toml or token that exists is never overwritten.
# docs/deploy.md is the guide.
set -euo pipefail
umask 022

usage() {
  cat <<'EOF'
Usage: install.sh [options]            (as root; from a checkout, or with --source)

  --role board|hub|both   what this machine runs (default: board)
  --source DIR            the checkout to install (default: the one holding this script)
  --root DIR              install into the OS tree DIR instead of / (every path under DIR;
                          users made with useradd --prefix; no apt-get, venv or systemctl)
  --no-apt                do not install system packages with apt-get
  --no-venv               do not create /opt/signage/.venv (quick tests)
  --dry-run               print what would be done, change nothing
  -h, --help              this help
EOF
}

ROLE=board
SOURCE=""
ROOT=""
APT=1
VENV=1
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --role) ROLE=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --role=*) ROLE=${1#*=}; shift ;;
    --source) SOURCE=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --source=*) SOURCE=${1#*=}; shift ;;
    --root) ROOT=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --no-apt) APT=0; shift ;;
    --no-venv) VENV=0; shift ;;
    --dry-run) DRY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

case "$ROLE" in
  board | hub | both) ;;
  *) die "--role must be board, hub or both (got '$ROLE')" ;;
esac
board() { [ "$ROLE" = board ] || [ "$ROLE" = both ]; }
hub() { [ "$ROLE" = hub ] || [ "$ROLE" = both ]; }

if [ -z "$SOURCE" ]; then
  SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
[ -d "$SOURCE" ] || die "--source $SOURCE: no such folder"
SOURCE=$(cd "$SOURCE" && pwd)
for need in pyproject.toml signage/__init__.py kiosk/signage-player.service; do
  [ -e "$SOURCE/$need" ] || die "$SOURCE is not a signage checkout (no $need)"
done
KIT="$SOURCE/kiosk"

if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT: no such folder"
  ROOT=$(cd "$ROOT" && pwd)
  [ "$ROOT" != / ] || ROOT=""
fi
if [ -n "$ROOT" ]; then
  if [ ! -f "$ROOT/etc/passwd" ] || [ ! -f "$ROOT/etc/group" ]; then
    die "--root $ROOT has no etc/passwd and etc/group: it must be an OS tree" \
      "(debootstrap makes one)"
  fi
  if [ "$APT" = 1 ] || [ "$VENV" = 1 ]; then
    say "--root: no apt-get and no venv (they need the target system running:" \
      "chroot into it instead)"
  fi
  APT=0
  VENV=0
fi
if [ "$DRY" = 0 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo bash $0 ...), or add --dry-run to see what it would do"
fi

OPT="$ROOT/opt/signage"

# -- helpers: every change goes through run, so that --dry-run shows it and changes nothing --

run() {
  if [ "$DRY" = 1 ]; then
    say "would run:$(printf ' %q' "$@")"
  else
    "$@"
  fi
}

# The numeric id of a user or group in the target's own databases (names mean nothing to the
# host's tools when the target is --root DIR). Prints the name itself when it is not there yet
# (only in a dry run, before the user is made).
id_in() { # id_in DATABASE NAME
  awk -F: -v n="$2" '$1 == n { print $3; f = 1 } END { if (!f) print n }' "$ROOT/etc/$1"
}
uid_of() { id_in passwd "$1"; }
gid_of() { id_in group "$1"; }
has_user() { grep -q "^$1:" "$ROOT/etc/passwd"; }
has_group() { grep -q "^$1:" "$ROOT/etc/group"; }
in_group() { # in_group GROUP USER: USER is a listed member of GROUP
  awk -F: -v g="$1" -v u="$2" '
    $1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) f = 1 }
    END { exit !f }' "$ROOT/etc/group"
}

# ensure_dir MODE USER GROUP PATH: the folder exists with this owner and mode.
ensure_dir() {
  run install -d -m "$1" -o "$(uid_of "$2")" -g "$(gid_of "$3")" "$4"
}

# put_file MODE USER GROUP SOURCE DEST: copy, replacing DEST (files that are ours, like units).
put_file() {
  run install -m "$1" -o "$(uid_of "$2")" -g "$(gid_of "$3")" "$4" "$5"
}

# put_config MODE USER GROUP TEMPLATE DEST: write DEST from TEMPLATE only when it is absent.
put_config() {
  if [ -e "$5" ]; then
    say "kept ${5#"$ROOT"} (an existing config is never overwritten)"
  else
    say "writing ${5#"$ROOT"} from ${4#"$SOURCE"/}"
    put_file "$@"
  fi
}

# -- 1. system packages ------------------------------------------------------------------------

packages=(python3 python3-venv ca-certificates systemd)
if board; then
  # cage, the Wayland kiosk compositor, and xwayland, without which Debian 12's cage 0.1.4
  # refuses to start ("Cannot create XWayland server"); seatd gives cage the screen, keyboard
  # and VT. Mesa's drivers and the Wayland client libraries that SDL loads at run time;
  # libfribidi0 for Pillow's text shaping; udev (and its input/render groups); kbd for chvt and
  # util-linux for setterm (the unit's ExecStartPre).
  packages+=(cage xwayland seatd udev libgl1-mesa-dri libegl1 libwayland-client0
    libwayland-cursor0 libwayland-egl1 libxkbcommon0 libfribidi0 kbd util-linux)
fi
if hub; then
  packages+=(sqlite3) # for backups: sqlite3 registry.sqlite ".backup ..."
fi
if [ "$APT" = 1 ]; then
  command -v apt-get >/dev/null 2>&1 ||
    die "apt-get not found: this is for Debian and Ubuntu (or use --no-apt)"
  say "installing system packages: ${packages[*]}"
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
    --no-install-recommends "${packages[@]}"
else
  say "skipping apt-get; the machine needs: ${packages[*]}"
fi

# -- 2. users ----------------------------------------------------------------------------------

useradd_args=()
usermod_args=()
if [ -n "$ROOT" ]; then
  useradd_args=(--prefix "$ROOT")
  usermod_args=(--prefix "$ROOT")
fi
nologin=/usr/sbin/nologin

make_user() { # make_user NAME HOME COMMENT
  if has_user "$1"; then
    say "user $1 exists"
  else
    say "creating system user $1 (home $2)"
    run useradd "${useradd_args[@]}" --system --user-group --home-dir "$2" --no-create-home \
      --shell "$nologin" --comment "$3" "$1"
  fi
}

if board; then
  make_user signage /var/lib/signage "signage board player"
  # video: seatd's socket and /dev/dri/card*; render: the GPU's render node; input: keyboards
  # for the technician's hotkeys; audio: the emergency chime.
  for group in video render input audio; do
    if ! has_group "$group"; then
      say "warning: group $group does not exist here; user signage is not added to it"
    elif in_group "$group" signage; then
      :
    else
      say "adding user signage to group $group"
      run usermod "${usermod_args[@]}" --append --groups "$group" signage
    fi
  done
fi
if hub; then
  make_user signage-hub /var/lib/signage-hub "signage reference hub"
fi

# -- 3. the software: /opt/signage and its venv -------------------------------------------------

if [ "$SOURCE" = "$OPT" ]; then
  say "source is $OPT itself: not copying"
else
  say "copying $SOURCE to ${OPT#"$ROOT"}"
  run install -d -m 0755 -o 0 -g 0 "$OPT"
  # Replace the previous copy but keep the venv (rebuilding it would fetch everything again).
  if [ "$DRY" = 1 ]; then
    say "would replace everything in $OPT but .venv"
  else
    find "$OPT" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
    tar -C "$SOURCE" -cf - \
      --exclude=./.git --exclude=./.venv --exclude=./out --exclude=./build --exclude=./dist \
      --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
      --exclude=.hypothesis --exclude=.import_linter_cache --exclude='*.egg-info' . |
      tar -C "$OPT" -xf - --no-same-owner
    chmod -R u+rwX,go+rX,go-w "$OPT" --preserve-root
  fi
fi

if [ "$VENV" = 1 ]; then
  if [ "$DRY" = 0 ] && ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    die "python3 is $(python3 --version 2>&1 | cut -d' ' -f2); signage needs 3.11 or newer"
  fi
  if [ -x "$OPT/.venv/bin/python" ]; then
    say "updating ${OPT#"$ROOT"}/.venv"
  else
    say "creating ${OPT#"$ROOT"}/.venv"
    run python3 -m venv "$OPT/.venv"
  fi
  # A local folder is built and installed again even when its version did not change.
  run "$OPT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    "$OPT"
  run ln -sfn /opt/signage/.venv/bin/signage "$ROOT/usr/local/bin/signage"
  if [ "$DRY" = 0 ]; then
    say "installed $("$OPT/.venv/bin/signage" --version)"
  fi
else
  say "skipping the venv (--no-venv): ${OPT#"$ROOT"}/.venv/bin/signage is not installed"
fi

# -- 4. configuration and data ------------------------------------------------------------------

if board; then
  ensure_dir 0750 root signage "$ROOT/etc/signage"
  ensure_dir 0750 root signage "$ROOT/etc/signage/keys"
  ensure_dir 0750 signage signage "$ROOT/var/lib/signage"
  put_config 0640 root signage "$KIT/board.toml.template" "$ROOT/etc/signage/board.toml"
  # The hub's token for this board: a secret the player (group signage) may read, nobody else.
  if [ ! -e "$ROOT/etc/signage/token" ]; then
    say "creating an empty /etc/signage/token for the board's token"
    put_file 0640 root signage /dev/null "$ROOT/etc/signage/token"
  else
    run chown "0:$(gid_of signage)" "$ROOT/etc/signage/token"
    run chmod 0640 "$ROOT/etc/signage/token"
  fi
fi
if hub; then
  ensure_dir 0750 root signage-hub "$ROOT/etc/signage-hub"
  ensure_dir 0750 signage-hub signage-hub "$ROOT/var/lib/signage-hub"
  put_config 0640 root signage-hub "$KIT/hub.toml.template" "$ROOT/etc/signage-hub/hub.toml"
fi

# -- 5. systemd units -----------------------------------------------------------------------------

units=()
if board; then units+=(signage-player.service); fi
if hub; then units+=(signage-hub.service); fi
ensure_dir 0755 root root "$ROOT/etc/systemd/system"
for unit in "${units[@]}"; do
  say "installing /etc/systemd/system/$unit"
  put_file 0644 root root "$KIT/$unit" "$ROOT/etc/systemd/system/$unit"
done

to_enable=("${units[@]}")
if board; then to_enable+=(seatd.service); fi
if [ -n "$ROOT" ]; then
  say "--root: not running systemctl; in the target: systemctl enable ${to_enable[*]}"
elif [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
  run systemctl enable "${to_enable[@]}"
  if board; then
    # The player is part of graphical.target (boot to it even without a display manager).
    run systemctl set-default graphical.target
    if systemctl --quiet is-active signage-player.service; then
      say "restarting signage-player (the new software shows in a few seconds)"
      run systemctl restart signage-player.service
    else
      say "signage-player starts at the next boot (or now: systemctl start signage-player;" \
        "it takes over tty1)"
    fi
  fi
  if hub; then
    run systemctl restart signage-hub.service
    say "signage-hub (re)started: systemctl status signage-hub"
  fi
elif command -v systemctl >/dev/null 2>&1; then
  # A chroot (an image being prepared): enabling only makes symlinks, which works offline;
  # reloading and starting wait for the first boot.
  say "systemd is not running here (chroot?): enabling the units for the next boot," \
    "skipping daemon-reload and start"
  run systemctl enable "${to_enable[@]}"
  if board; then run systemctl set-default graphical.target; fi
else
  say "systemd is not running and systemctl is missing: skipping; on the target run:" \
    "systemctl daemon-reload && systemctl enable ${to_enable[*]}"
fi

# -- done ---------------------------------------------------------------------------------------

note=""
[ "$DRY" = 0 ] || note=", dry run: nothing changed"
say "done (role $ROLE${ROOT:+, root $ROOT}$note)"
if board; then
  say "next: edit /etc/signage/board.toml, put the token in /etc/signage/token and the" \
    "publishers' keys in /etc/signage/keys/, then reboot (docs/deploy.md)"
fi
if hub; then
  say "next: register boards and publishers as user signage-hub (docs/deploy.md)"
fi
