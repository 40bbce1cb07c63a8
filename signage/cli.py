"""The ``signage`` command: argparse subcommands that call into the layers, and nothing more."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from signage import __version__
from signage.board.config import load_config, read_private_key, read_trust
from signage.board.slides import (
    SAMPLE_SIZES,
    build_stack,
    parse_moment,
    read_item,
    render_item,
    render_samples,
    save_frame,
)
from signage.compose import BoardInfo
from signage.errors import ErrorCode, SignageError, UsageError
from signage.hub.publish import (
    build_bundle,
    sign_bundle,
    verify_bundle,
    write_keypair,
)
from signage.layout import Size
from signage.model import board_timezone
from signage.protocol import PrivateKey


def _size(text: str) -> Size:
    try:
        return Size.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signage", description="Controller for public electronic bulletin boards."
    )
    parser.add_argument("--version", action="version", version=f"signage {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    render = sub.add_parser("render", help="compose one item into a PNG (headless)")
    render.add_argument("--layout", required=True, help="template name, e.g. announcement")
    render.add_argument("--item", required=True, type=Path, help="item JSON file")
    render.add_argument("--size", required=True, type=_size, help="screen size WxH, e.g. 1920x1080")
    render.add_argument("--rotate", type=int, default=0, help="0, 90, 180 or 270 degrees clockwise")
    render.add_argument("--at", help="time to show, ISO 8601 (default: now)")
    render.add_argument("--board-name", default=BoardInfo().name, help="commune or board name")
    render.add_argument(
        "--timezone", default=None, help="board time zone (default Asia/Ho_Chi_Minh)"
    )
    render.add_argument("--logo", type=Path, help="logo image for templates that show one")
    render.add_argument("--fonts", type=Path, help="fonts.toml to use instead of the shipped one")
    render.add_argument("--layouts", type=Path, help="layouts folder instead of the shipped one")
    render.add_argument("--out", required=True, type=Path, help="PNG file to write")
    render.add_argument("--report", type=Path, help="also write a JSON report of every text box")

    samples = sub.add_parser("samples", help="render the shipped sample slides at every board size")
    samples.add_argument("--out", type=Path, default=Path("out/samples"), help="folder for PNGs")
    samples.add_argument("--at", help="time to show, ISO 8601 (default: now)")
    samples.add_argument("--board-name", default="UBND xã Sa Thầy", help="commune or board name")

    play = sub.add_parser("play", help="run the board: fullscreen slides from a content folder")
    play.add_argument("--config", type=Path, help="board.toml (default: built-in defaults)")
    play.add_argument("--content", type=Path, help="folder with items.json and its images")
    play.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    play.add_argument("--size", type=_size, help="screen size WxH (overrides the config)")
    play.add_argument("--rotate", type=int, help="0, 90, 180 or 270 (overrides the config)")
    play.add_argument("--data-dir", type=Path, help="data folder (overrides the config)")
    play.add_argument("--headless", action="store_true", help="no screen: SDL's offscreen driver")
    play.add_argument("--exit-after", type=float, help="stop after this many seconds")
    play.add_argument("--screenshot-dir", type=Path, help="write a PNG of each new slide here")

    keys = sub.add_parser("keys", help="publisher signing keys").add_subparsers(
        dest="keys_command", required=True
    )
    new = keys.add_parser("new", help="make ID.key (private, mode 0600) and ID.pub")
    new.add_argument("--id", required=True, help="key id, e.g. tinh-kon-tum")
    new.add_argument("--out", required=True, type=Path, help="folder for the two files")
    new.add_argument("--area", default="", help="area prefix the key may sign for (default all)")

    bundle = sub.add_parser("bundle", help="build, sign and verify content bundles")
    bundles = bundle.add_subparsers(dest="bundle_command", required=True)
    build = bundles.add_parser("build", help="a content folder -> a bundle and its assets")
    build.add_argument("source", type=Path, help="folder with items.json and its images")
    build.add_argument("--out", required=True, type=Path, help="bundle JSON to write")
    build.add_argument("--key", type=Path, help="ID.key: default publisher and area")
    build.add_argument("--publisher", help="publisher id (default: the key's id)")
    build.add_argument("--version", type=int, help="default: Unix time in milliseconds")
    build.add_argument("--area", help="target area path (default: the key's whole scope)")
    sign = bundles.add_parser("sign", help="sign a bundle's exact bytes")
    sign.add_argument("bundle", type=Path)
    sign.add_argument("--key", required=True, type=Path, help="ID.key")
    sign.add_argument("--out", required=True, type=Path, help="signed bundle to write")
    verify = bundles.add_parser("verify", help="exit 0 when a signed bundle is valid")
    verify.add_argument("signed", type=Path)
    verify.add_argument("--trust", required=True, type=Path, action="append", help="ID.pub")

    sub.add_parser("fonts", help="list the font families and the fallback chain")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv``; return the process exit code (0 ok, 2 error)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "render":
            return _render(args)
        if args.command == "samples":
            return _samples(args)
        if args.command == "fonts":
            return _fonts()
        if args.command == "play":
            return _play(args)
        if args.command == "keys":
            return _keys(args)
        if args.command == "bundle":
            return _bundle(args)
    except BrokenPipeError:
        # The reader went away (``signage samples | head``): nothing left to tell anyone.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter exit quiet
        return 1
    except SignageError as exc:
        print(f"signage: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"signage: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 2


def _render(args: argparse.Namespace) -> int:
    stack = build_stack(args.fonts, args.layouts)
    item = read_item(args.item)
    board = BoardInfo(name=args.board_name, tz=board_timezone(args.timezone), logo=args.logo)
    frame = render_item(
        stack.composer,
        item,
        args.size,
        parse_moment(args.at, args.timezone),
        item_dir=args.item.resolve().parent,
        layout=args.layout,
        rotate=args.rotate,
        board=board,
    )
    save_frame(frame, args.out, args.report)
    for error in frame.errors:
        print(f"signage: warning: {error}", file=sys.stderr)
    return 0


def _samples(args: argparse.Namespace) -> int:
    stack = build_stack()
    board = BoardInfo(name=args.board_name)
    written = render_samples(stack.composer, args.out, parse_moment(args.at), board)
    sizes = ", ".join(f"{s.width}x{s.height}" for s in SAMPLE_SIZES)
    print(f"Rendered {len(written)} sample slides ({sizes}) into {args.out.resolve()}/")
    for png, frame in written:
        note = "; ".join(str(e) for e in frame.errors)
        print(f"  {png.name}" + (f"  ({note})" if note else ""))
    return 0


def _play(args: argparse.Namespace) -> int:
    config = load_config(args.config).with_overrides(
        size=args.size,
        rotate=args.rotate,
        data_dir=args.data_dir,
        fullscreen=False if args.windowed or args.headless else None,
    )
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    if args.content is not None and not args.content.is_dir():
        raise UsageError(ErrorCode.USAGE, "content folder not found", path=str(args.content))
    # Only the player needs pygame; its import banner would clutter every other command.
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from signage.board.agent import EXIT_RESTART, play

    result = play(
        config,
        args.content,
        headless=args.headless,
        exit_after=args.exit_after,
        screenshot_dir=args.screenshot_dir,
    )
    stats = result.stats
    print(f"signage: played {stats.slides} slides, {stats.frames} frames, {stats.dropped} dropped")
    if result.restart:
        print("signage: restarting as the hub asked", file=sys.stderr)
        return EXIT_RESTART
    return 0


def _keys(args: argparse.Namespace) -> int:
    key = PrivateKey.generate(args.id, args.area)
    private, public = write_keypair(key, args.out)
    print(f"wrote {private} (keep it secret) and {public} (give it to boards and the hub)")
    return 0


def _bundle(args: argparse.Namespace) -> int:
    if args.bundle_command == "build":
        key = read_private_key(args.key) if args.key is not None else None
        publisher = args.publisher or (key.key_id if key else None)
        if publisher is None:
            raise UsageError(ErrorCode.USAGE, "give --key or --publisher")
        area = args.area if args.area is not None else (key.area if key else "")
        tz = board_timezone(None)
        built = build_bundle(
            args.source,
            args.out,
            publisher=publisher,
            version=args.version or int(time.time() * 1000),
            area=area.strip("/"),
            issued=datetime.now(tz),
            library=build_stack().composer.library,
            tz=tz,
        )
        print(f"wrote {built.path}: {built.items} items, {built.assets} assets in")
        print(f"  {built.path.parent / 'assets'}/")
        return 0
    if args.bundle_command == "sign":
        sign_bundle(args.bundle, read_private_key(args.key), args.out)
        print(f"wrote {args.out}")
        return 0
    print(verify_bundle(args.signed, read_trust(args.trust)))
    return 0


def _fonts() -> int:
    stack = build_stack()
    registry = stack.composer.typesetter.registry
    chain = [registry.default_family, *registry.fallback]
    print(
        json.dumps({"chain": chain, "families": registry.families()}, ensure_ascii=False, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
