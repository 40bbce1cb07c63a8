"""The ``signage`` command: argparse subcommands that call into the layers, and nothing more."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from signage import __version__
from signage.board.config import load_config, read_private_key, read_public_key, read_trust
from signage.board.link import read_token
from signage.board.service import set_local_blank, setup_logging
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
from signage.diag.report import collect
from signage.errors import ErrorCode, SignageError, UsageError
from signage.hub.client import PublisherClient, describe_boards, describe_result
from signage.hub.demo import DemoOptions, has_display, run_demo
from signage.hub.publish import (
    alert_document,
    alert_from_cap,
    build_bundle,
    cancel_document,
    command_document,
    sign_bundle,
    verify_bundle,
    write_keypair,
)
from signage.hub.registry import SqliteRegistry
from signage.hub.server import HubConfig, load_hub_config, serve_hub
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

    diag = sub.add_parser("diag", help="diagnostics for the technician (fullscreen, or --text)")
    diag.add_argument("--config", type=Path, help="board.toml (default: built-in defaults)")
    form = diag.add_mutually_exclusive_group()
    form.add_argument("--text", action="store_true", help="print the report (exit 1: degraded)")
    form.add_argument("--json", action="store_true", help="the report as JSON")
    diag.add_argument("--no-network", action="store_true", help="skip the hub probes")
    diag.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    diag.add_argument("--size", type=_size, help="screen size WxH (overrides the config)")
    diag.add_argument("--headless", action="store_true", help="no screen: SDL's offscreen driver")
    diag.add_argument("--exit-after", type=float, help="stop after this many seconds")
    diag.add_argument("--screenshot", type=Path, help="save the pages as PNG-1.png ... and end")
    diag.add_argument("--page", type=int, action="append", help="with --screenshot: page 1-9")

    blank = sub.add_parser(
        "blank", help="blank the screen now, until turned off (survives restarts)"
    )
    blank.add_argument("state", choices=("on", "off"))
    blank.add_argument("--config", type=Path, help="board.toml (default: built-in defaults)")

    demo = sub.add_parser(
        "demo", help="the whole product on this machine: a hub, a board, a programme, an alert"
    )
    demo.add_argument("--fullscreen", action="store_true", help="the board fullscreen")
    demo.add_argument("--headless", action="store_true", help="no window (SDL offscreen)")
    demo.add_argument("--exit-after", type=float, help="stop after this many seconds")
    demo.add_argument(
        "--screenshot", type=Path, help="save the board's screen: PNG, PNG-alert, PNG-after"
    )
    demo.add_argument("--port", type=int, default=8765, help="hub port (default 8765 if free)")
    demo.add_argument("--keep", action="store_true", help="keep the demo's temporary files")

    hub = sub.add_parser("hub", help="the reference hub: serve, and its registry")
    hubs = hub.add_subparsers(dest="hub_command", required=True)
    serve = hubs.add_parser("serve", help="run the hub (boards, publishers, status page)")
    serve.add_argument("--config", type=Path, help="hub.toml (default: built-in defaults)")
    hub_board = hubs.add_parser("board", help="registered boards").add_subparsers(
        dest="action", required=True
    )
    add = hub_board.add_parser("add", help="register a board and print its token (once)")
    add.add_argument("id", help="board id, as in the board's board.toml")
    add.add_argument("--name", required=True, help="what operators call it")
    add.add_argument("--area", required=True, help="administrative area path, e.g. 62/23456")
    hub_board.add_parser("list", help="list registered boards")
    token = hub_board.add_parser("token", help="make a new token (the old one stops working)")
    token.add_argument("id")
    remove = hub_board.add_parser("remove", help="forget a board")
    remove.add_argument("id")
    hub_pub = hubs.add_parser("publisher", help="registered publishers").add_subparsers(
        dest="action", required=True
    )
    padd = hub_pub.add_parser("add", help="register a publisher's key; print its token (once)")
    padd.add_argument("id", help="publisher id (the key's id)")
    padd.add_argument("--key", required=True, type=Path, help="ID.pub")
    padd.add_argument("--area", help="area prefix it may publish for (default: the key's)")
    hub_pub.add_parser("list", help="list publishers")
    premove = hub_pub.add_parser("remove", help="forget a publisher and withdraw its content")
    premove.add_argument("id")
    hub_op = hubs.add_parser("operator", help="status page users").add_subparsers(
        dest="action", required=True
    )
    oadd = hub_op.add_parser("add", help="make an operator token (printed once)")
    oadd.add_argument("name")
    for each in (hub_board, hub_pub, hub_op):
        for choice in each.choices.values():
            choice.add_argument("--config", type=Path, help="hub.toml (default: built-in)")

    push = sub.add_parser("push", help="send a signed bundle and its assets through a hub")
    _hub_arguments(push)
    push.add_argument("signed", type=Path, help="signed bundle (signage bundle sign)")
    push.add_argument("--assets", type=Path, help="assets folder (default: beside the bundle)")
    push.add_argument("--wait", type=float, default=30, help="seconds to wait for boards")

    alert = sub.add_parser("alert", help="sign and send an emergency alert, or cancel one")
    _hub_arguments(alert)
    alert.add_argument("words", nargs="*", help="nothing to send; `cancel ID [ID ...]` to cancel")
    alert.add_argument("--key", required=True, type=Path, help="the publisher's ID.key")
    alert.add_argument("--cap", type=Path, help="a CAP 1.2 XML file")
    alert.add_argument("--headline", help="short title shown large")
    alert.add_argument("--description", default="", help="what is happening")
    alert.add_argument("--instruction", help="what people should do")
    alert.add_argument("--severity", choices=("Extreme", "Severe", "Moderate", "Minor"))
    alert.add_argument("--expires", help="ISO 8601 time, or +MINUTES (e.g. +90)")
    alert.add_argument("--identifier", help="default: PUBLISHER-<unix ms>")
    alert.add_argument("--area", help="target area (default: the key's area)")
    alert.add_argument("--area-desc", help="place names people read, e.g. Xã Sa Thầy")
    alert.add_argument("--wait", type=float, default=30, help="seconds to wait for boards")

    command = sub.add_parser("command", help="sign and send blank/unblank/restart/power")
    _hub_arguments(command)
    command.add_argument("name", choices=("blank", "unblank", "restart", "power"))
    command.add_argument("--key", required=True, type=Path, help="the publisher's ID.key")
    command.add_argument("--area", help="target area (default: the key's area)")
    command.add_argument("--args", default="{}", help='power hours as JSON: {"mon": "06:00-22:00"}')
    command.add_argument("--wait", type=float, default=30, help="seconds to wait for boards")

    boards = sub.add_parser("boards", help="list boards and their state (through a hub)")
    _hub_arguments(boards)
    boards.add_argument("--json", action="store_true", help="JSON instead of a table")

    shot = sub.add_parser("screenshot", help="fetch a board's screen as PNG (through a hub)")
    _hub_arguments(shot)
    shot.add_argument("board", help="board id")
    shot.add_argument("--out", required=True, type=Path, help="PNG file to write")
    return parser


def _hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub", required=True, help="hub URL, e.g. wss://hub.example.vn")
    parser.add_argument("--token", help="publisher or operator token (or SIGNAGE_HUB_TOKEN)")
    parser.add_argument("--token-file", type=Path, help="read the token from this file")
    parser.add_argument("--ca-file", type=Path, help="CA certificate to trust for wss")


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
        if args.command == "diag":
            return _diag(args)
        if args.command == "blank":
            return _blank(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "hub":
            return _hub(args)
        if args.command in ("push", "alert", "command", "boards", "screenshot"):
            return asyncio.run(_publisher(args))
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
    setup_logging(config.log_level, config.data_dir)
    if args.content is not None and not args.content.is_dir():
        raise UsageError(ErrorCode.USAGE, "content folder not found", path=str(args.content))
    # Only the player needs pygame; its import banner would clutter every other command.
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from signage.board.agent import EXIT_RESTART, play
    from signage.diag.kiosk import DiagScreen, function_key

    result = play(
        config,
        args.content,
        headless=args.headless,
        exit_after=args.exit_after,
        screenshot_dir=args.screenshot_dir,
        overlay=lambda status, size: DiagScreen(
            config,
            size,
            status=status,
            hotkey=function_key(config.diag_hotkey),
            idle_close_s=config.diag_close_after_s,
        ),
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


def _diag(args: argparse.Namespace) -> int:
    config = load_config(args.config).with_overrides(
        size=args.size, fullscreen=False if args.windowed or args.headless else None
    )
    if args.text or args.json:
        diagnosis = collect(config, network=not args.no_network)
        if args.json:
            print(json.dumps(diagnosis.to_json(), ensure_ascii=False, indent=1))
        else:
            print(diagnosis.to_text(), end="")
        return 0 if diagnosis.healthy else 1
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from signage.diag.kiosk import run_diag

    pages = tuple(p - 1 for p in args.page or ())
    return run_diag(
        config,
        headless=args.headless,
        exit_after=args.exit_after,
        screenshot=args.screenshot,
        pages=pages,
    )


def _blank(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    told = set_local_blank(config.data_dir, args.state == "on", "command line")
    state = "blanked" if args.state == "on" else "back on"
    where = "the running player" if told else "the player when it starts (none is running)"
    print(f"screen {state}: {where} applies it; it stays so across restarts")
    return 0


def _demo(args: argparse.Namespace) -> int:
    headless, exit_after, screenshot = args.headless, args.exit_after, args.screenshot
    if not headless and not has_display():
        headless = True
        exit_after = exit_after or 60.0
        screenshot = screenshot or Path("out/demo/board.png")
        print(
            "signage demo: no display here, so the board runs headless for"
            f" {exit_after:.0f} s and its screen is saved as {screenshot}"
        )
    _logging("warning")
    return run_demo(
        DemoOptions(
            headless=headless,
            fullscreen=args.fullscreen,
            exit_after=exit_after,
            screenshot=screenshot,
            port=args.port,
            keep=args.keep,
        )
    )


def _hub(args: argparse.Namespace) -> int:
    config = load_hub_config(args.config) if args.config is not None else HubConfig()
    if args.hub_command == "serve":
        _logging(config.log_level)
        return serve_hub(config)
    registry = SqliteRegistry(config.data_dir / "registry.sqlite")
    try:
        return _registry(args, registry)
    finally:
        registry.close()


def _registry(args: argparse.Namespace, registry: SqliteRegistry) -> int:
    now = time.time()
    kind, action = args.hub_command, args.action
    if kind == "board" and action == "add":
        token = registry.add_board(args.id, args.name, args.area, now)
        print(f"board {args.id} registered. Its token (shown only now; put it in the board's")
        print(f"hub.token_file):\n{token}")
    elif kind == "board" and action == "token":
        token = registry.set_board_token(args.id)
        print(f"new token for {args.id} (the old one no longer works):\n{token}")
    elif kind == "board" and action == "remove":
        registry.remove_board(args.id)
        print(f"board {args.id} removed")
    elif kind == "board":
        for board in registry.boards():
            print(f"{board.id:<24} {board.area or '(all)':<14} {board.name}")
    elif kind == "publisher" and action == "add":
        public = read_public_key(args.key)
        if public.key_id != args.id:
            raise UsageError(
                ErrorCode.USAGE, f"{args.key} is the key of {public.key_id!r}, not {args.id!r}"
            )
        area = args.area if args.area is not None else public.area
        token = registry.add_publisher(public, area, now)
        print(f"publisher {args.id} registered for area {area or '(all)'}. Its token (shown")
        print(f"only now):\n{token}")
    elif kind == "publisher" and action == "remove":
        registry.remove_publisher(args.id)
        print(f"publisher {args.id} removed; its bundles and alerts are no longer sent")
    elif kind == "publisher":
        for publisher in registry.publishers():
            print(
                f"{publisher.id:<24} {publisher.area or '(all)':<14} last seq {publisher.last_seq}"
            )
    else:
        token = registry.add_operator(args.name, now)
        print(f"operator {args.name}: open http://HUB/login?token={token}")
    return 0


async def _publisher(args: argparse.Namespace) -> int:
    token = _token(args)
    async with PublisherClient(args.hub, token, ca_file=args.ca_file) as client:
        if args.command == "boards":
            rows = await client.boards()
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=1))
            else:
                print("\n".join(describe_boards(rows, time.time())))
            return 0
        if args.command == "screenshot":
            png = await client.screenshot(args.board)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(png)
            print(f"wrote {args.out} ({len(png)} bytes)")
            return 0
        if args.command == "push":
            envelope = args.signed.read_bytes()
            assets = args.assets or args.signed.parent / "assets"
            result = await client.push_bundle(envelope, assets, args.wait)
            print(f"bundle {result['publisher']} version {result['version']}:")
        else:
            key = read_private_key(args.key)
            kind, document = _document(args, key)
            result = await client.publish(kind, key.sign(document), args.wait)
            what = result.get("identifier") or result.get("name")
            print(f"{kind} {what}:")
        print("\n".join(describe_result(result)))
        refused = any(b.get("outcome") == "refused" for b in result.get("boards", []))
        return 1 if refused else 0


def _document(args: argparse.Namespace, key: PrivateKey) -> tuple[str, bytes]:
    tz = board_timezone(None)
    now = datetime.now(tz).replace(microsecond=0)
    seq = int(time.time() * 1000)
    area = (args.area if args.area is not None else key.area).strip("/")
    if args.command == "command":
        try:
            command_args = json.loads(args.args)
        except ValueError as exc:
            raise UsageError(ErrorCode.USAGE, f"--args: not JSON: {exc}") from None
        doc = command_document(
            publisher=key.key_id, seq=seq, name=args.name, area=area, issued=now, args=command_args
        )
        return "command", doc
    if args.words:
        if args.words[0] != "cancel" or len(args.words) < 2:
            raise UsageError(ErrorCode.USAGE, "expected `signage alert cancel ID [ID ...]`")
        return "alert", cancel_document(
            publisher=key.key_id,
            seq=seq,
            identifier=f"{key.key_id}-cancel-{seq}",
            references=args.words[1:],
            sent=now,
            area=area,
        )
    if args.cap is not None:
        xml = args.cap.read_bytes()
        return "alert", alert_from_cap(xml, publisher=key.key_id, seq=seq, area=args.area)
    if not args.headline or not args.severity or not args.expires:
        raise UsageError(
            ErrorCode.USAGE, "give --cap FILE, or --headline, --severity and --expires"
        )
    return "alert", alert_document(
        publisher=key.key_id,
        seq=seq,
        identifier=args.identifier or f"{key.key_id}-{seq}",
        headline=args.headline,
        description=args.description,
        instruction=args.instruction,
        severity=args.severity,
        sent=now,
        expires=_expires(args.expires, now),
        area=area,
        area_desc=args.area_desc,
    )


def _expires(text: str, now: datetime) -> datetime:
    if text.startswith("+") and text[1:].isdigit():
        return now + timedelta(minutes=int(text[1:]))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(ErrorCode.USAGE, "--expires: ISO 8601 time or +MINUTES") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


def _token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        return read_token(args.token_file)
    token = args.token or os.environ.get("SIGNAGE_HUB_TOKEN", "")
    if not token:
        raise UsageError(ErrorCode.USAGE, "give --token, --token-file or SIGNAGE_HUB_TOKEN")
    return str(token)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


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
