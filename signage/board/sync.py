"""What a board holds from its source system: signed bundles, alerts and commands, applied in
two phases on the content store.

A bundle arrives, is verified (signature, scope, area, no rollback), checked against the
templates, and staged. Its missing assets are downloaded (resumable, each checked against its
hash and size); when the last one is in and every image decodes, the bundle is committed by
the store's atomic pointer switch, and only then does the programme change. Anything refused
changes nothing: the board keeps playing what it had.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from signage.board.config import parse_power
from signage.board.folder import EMPTY, Programme
from signage.compose import load_image
from signage.errors import AssetError, ContentError, ErrorCode, SignageError
from signage.layout import LayoutLibrary
from signage.model import Alert, AssetRef, Bundle, Command, Item, Window
from signage.protocol import Chunk, Trust, accept_alert, accept_bundle, accept_command
from signage.store import ContentStore

log = logging.getLogger("signage.sync")

TICKER_JOIN = "   •   "
MAX_HELLO_ASSETS = 10_000
MAX_HELLO_ALERTS = 1000


@dataclass(frozen=True, slots=True)
class Settled:
    """A staged bundle's outcome: committed (``error`` None) or dropped with ``error``."""

    ref: str
    bundle: Bundle
    error: SignageError | None


@dataclass(slots=True)
class _Pending:
    bundle: Bundle
    ref: str
    failed: SignageError | None = None


class ContentSync:
    """The board's signed content on ``store``, checked with ``trust`` and ``library``."""

    def __init__(
        self,
        store: ContentStore,
        trust: Trust,
        library: LayoutLibrary,
        board_area: str,
        tz: ZoneInfo,
        max_pixels: int,
    ) -> None:
        self.store = store
        self.trust = trust
        self.library = library
        self.board_area = board_area
        self.tz = tz
        self.max_pixels = max_pixels
        self.pending: dict[str, _Pending] = {}  # publisher -> the bundle waiting for assets
        self._superseded: list[_Pending] = []
        self.last_error: SignageError | None = None

    # -- what the board holds ---------------------------------------------------------------

    def held(self) -> dict[str, Any]:
        """Return the ``hello`` fields: committed versions, stored asset hashes, last seq per
        publisher and the alerts in force."""
        assets = sorted(p.name for p in self.store.assets.iterdir() if len(p.name) == 64)
        assets = assets[:MAX_HELLO_ASSETS]  # keeps the hello a control message; more is resent
        state = self.store.read_doc("state")
        return {
            "held": dict(self.store.versions()),
            "assets": assets,
            "seq": dict(state.get("seq", {})),  # type: ignore[call-overload]
            "alerts": [a.identifier for a, _ in self._alerts()][:MAX_HELLO_ALERTS],
        }

    # -- bundles ------------------------------------------------------------------------------

    def offer_bundle(self, envelope: bytes, ref: str) -> list[AssetRef]:
        """Verify and stage the bundle in ``envelope`` (message ``ref``); return the assets to
        fetch. A newer bundle of the same publisher replaces one still waiting.

        Raises SignageError (signature.*, bundle.*, area.mismatch, layout.*, content.invalid)
        and stages nothing then.
        """
        applied = dict(self.store.versions())
        bundle = accept_bundle(envelope, self.trust, applied, self.tz, self.board_area)
        waiting = self.pending.get(bundle.publisher)
        if waiting is not None and bundle.version < waiting.bundle.version:
            raise SignageError(
                ErrorCode.BUNDLE_VERSION_NOT_NEWER,
                f"version {bundle.version} is older than {waiting.bundle.version}, being fetched",
            )
        self._check_items(bundle)
        self.store.stage(bundle, envelope)
        if waiting is not None and waiting.ref != ref:
            waiting.failed = SignageError(
                ErrorCode.BUNDLE_VERSION_NOT_NEWER,
                f"superseded by version {bundle.version} before its assets arrived",
            )
            self._superseded.append(waiting)
        self.pending[bundle.publisher] = _Pending(bundle, ref)
        log.info(
            "bundle staged publisher=%s version=%d items=%d assets=%d",
            bundle.publisher,
            bundle.version,
            len(bundle.items),
            len(bundle.assets),
        )
        return self.store.missing(bundle)

    def forget_pending(self) -> None:
        """Drop the bundles waiting for assets (their downloads stay, to be resumed)."""
        self.pending.clear()
        self._superseded.clear()

    def wanted(self) -> dict[str, AssetRef]:
        """Return the assets waiting bundles still lack, by hash."""
        out: dict[str, AssetRef] = {}
        for waiting in self.pending.values():
            for ref in self.store.missing(waiting.bundle):
                out[ref.sha256] = ref
        return out

    def chunk(self, chunk: Chunk) -> bool:
        """Store one chunk of a wanted asset; return True when it completed the asset.

        Raises AssetError: asset.missing for a blob no waiting bundle wants,
        asset.size_mismatch when its size is not the manifest's, asset.out_of_order for a chunk
        not at the download's end, asset.hash_mismatch when the completed bytes are wrong (the
        waiting bundles that need it then fail).
        """
        ref = self.wanted().get(chunk.sha256)
        if ref is None:
            raise AssetError(
                ErrorCode.ASSET_MISSING, "no waiting bundle wants it", path=chunk.sha256
            )
        if chunk.total != ref.size:
            raise AssetError(
                ErrorCode.ASSET_SIZE_MISMATCH,
                f"sent as {chunk.total} bytes, the manifest declares {ref.size}",
                path=chunk.sha256,
            )
        self.store.append_partial(chunk.sha256, chunk.offset, chunk.data)
        if not chunk.last:
            return False
        try:
            self.store.finish_partial(ref)
        except AssetError as exc:
            self.fail_asset(chunk.sha256, exc)
            raise
        return True

    def fail_asset(self, sha256: str, error: SignageError) -> None:
        """Give up the waiting bundles that need asset ``sha256`` (the hub cannot send it)."""
        for waiting in self.pending.values():
            if any(ref.sha256 == sha256 for ref in waiting.bundle.assets.values()):
                waiting.failed = error

    def settle(self) -> list[Settled]:
        """Commit every waiting bundle whose assets are all here and decode; drop the failed.

        Returns the outcomes; the programme changes only for committed ones. Image decoding
        takes time: call this off the event loop.
        """
        out: list[Settled] = [Settled(w.ref, w.bundle, w.failed) for w in self._superseded]
        self._superseded.clear()
        for publisher, waiting in list(self.pending.items()):
            error = waiting.failed
            if error is None:
                if self.store.missing(waiting.bundle):
                    continue
                try:
                    self._check_images(waiting.bundle)
                    self.store.commit(waiting.bundle)
                except SignageError as exc:
                    error = exc
            del self.pending[publisher]
            out.append(Settled(waiting.ref, waiting.bundle, error))
            if error is None:
                log.info(
                    "bundle applied publisher=%s version=%d",
                    publisher,
                    waiting.bundle.version,
                )
            else:
                self.last_error = error
                log.warning("bundle refused publisher=%s reason=%s", publisher, error)
        if any(s.error is None for s in out):
            self._evict()
        return out

    def programme(self) -> Programme:
        """Return the programme of every committed bundle (verified again: a key no longer
        trusted stops playing)."""
        items: list[Item] = []
        assets: dict[str, Any] = {}
        tickers: list[str] = []
        sources: list[str] = []
        for publisher, version in sorted(self.store.versions().items()):
            try:
                envelope = self.store.envelope(publisher, version)
                bundle = accept_bundle(envelope, self.trust, {}, self.tz, self.board_area)
            except SignageError as exc:
                log.error("committed bundle unusable publisher=%s reason=%s", publisher, exc)
                self.last_error = exc
                continue
            for item in bundle.items:
                fields = dict(item.fields)
                for name in self._image_fields(item):
                    ref = bundle.assets[str(fields[name])]
                    fields[name] = ref.sha256
                    assets[ref.sha256] = self.store.asset_path(ref.sha256)
                items.append(replace(item, id=f"{publisher}/{item.id}", fields=fields))
            if bundle.ticker:
                tickers.append(bundle.ticker)
            sources.append(f"{publisher}@{version}")
        if not sources:
            return EMPTY
        return Programme(
            tuple(items),
            MappingProxyType(assets),
            TICKER_JOIN.join(tickers) or None,
            ", ".join(sources),
        )

    # -- alerts and commands ----------------------------------------------------------------

    def offer_alert(self, envelope: bytes) -> Alert:
        """Verify an alert and apply it (an Update replaces, a Cancel withdraws what it
        references); return it. Raises SignageError and changes nothing then."""
        state = self.store.read_doc("state")
        seen = dict(state.get("seq", {}))  # type: ignore[call-overload]
        alert = accept_alert(envelope, self.trust, seen, self.board_area)
        # CAP ties identifiers to their sender: an Update or Cancel reaches only alerts of the
        # same publisher. Expired alerts are dropped here.
        gone = {alert.identifier, *alert.references}
        now = datetime.now(alert.sent.tzinfo)
        kept = [
            (a, e)
            for a, e in self._alerts()
            if not (a.publisher == alert.publisher and a.identifier in gone) and now < a.expires
        ]
        if alert.msg_type != "Cancel":
            kept.append((alert, envelope))
        self.store.write_doc("alerts", {"alerts": [e.decode("ascii") for _, e in kept]})
        self._saw(state, alert.publisher, alert.seq)
        log.info(
            "alert applied identifier=%s type=%s expires=%s",
            alert.identifier,
            alert.msg_type,
            alert.expires.isoformat(),
        )
        return alert

    def alert_items(self, now: datetime) -> tuple[Item, ...]:
        """Return the emergency items of the alerts in force at ``now``."""
        return tuple(a.to_item() for a, _ in self._alerts() if a.is_active(now))

    def offer_command(self, envelope: bytes) -> Command:
        """Verify a signed command and record what it changes (blank, power schedule); return
        it. Raises SignageError and changes nothing then."""
        state = self.store.read_doc("state")
        seen = dict(state.get("seq", {}))  # type: ignore[call-overload]
        command = accept_command(envelope, self.trust, seen, self.board_area)
        if command.name in ("blank", "unblank"):
            state["blank"] = command.name == "blank"
        elif command.name == "power":
            parse_power(command.args)  # refuse a schedule the board could not follow
            state["power"] = dict(command.args)
        self._saw(state, command.publisher, command.seq)
        log.info("command accepted name=%s publisher=%s", command.name, command.publisher)
        return command

    def peek_command(self, envelope: bytes) -> Command:
        """Return the verified command in ``envelope`` without recording it. Raises
        SignageError."""
        seen = dict(self.store.read_doc("state").get("seq", {}))  # type: ignore[call-overload]
        return accept_command(envelope, self.trust, seen, self.board_area)

    def blanked(self) -> bool:
        """Return True when a signed blank command is in force."""
        return bool(self.store.read_doc("state").get("blank", False))

    def power_schedule(self) -> tuple[Window, ...] | None:
        """Return the power schedule set by a signed command (None: the board.toml one)."""
        args = self.store.read_doc("state").get("power")
        if not isinstance(args, dict):
            return None
        try:
            return parse_power(args)
        except SignageError:
            return None

    # -- inside -------------------------------------------------------------------------------

    def _saw(self, state: dict[str, Any], publisher: str, seq: int) -> None:
        seqs = dict(state.get("seq", {}))
        seqs[publisher] = seq
        state["seq"] = seqs
        self.store.write_doc("state", state)

    def _alerts(self) -> list[tuple[Alert, bytes]]:
        out: list[tuple[Alert, bytes]] = []
        raw = self.store.read_doc("alerts").get("alerts", [])
        for text in raw if isinstance(raw, list) else []:
            envelope = str(text).encode("ascii", "replace")
            try:
                alert = accept_alert(envelope, self.trust, {}, self.board_area)
            except SignageError as exc:
                log.error("stored alert unusable reason=%s", exc)
                continue
            out.append((alert, envelope))
        return out

    def _image_fields(self, item: Item) -> list[str]:
        template = self.library.get(item.template)
        return [
            spec.name
            for spec in template.fields.values()
            if spec.type == "image"
            and isinstance(item.fields.get(spec.name), str)
            and item.fields.get(spec.name)
        ]

    def _check_items(self, bundle: Bundle) -> None:
        for index, item in enumerate(bundle.items):
            where = f"items[{index}]"
            try:
                self.library.get(item.template).check(item.fields)
            except SignageError as exc:
                raise type(exc)(
                    exc.code, exc.message, path=f"{where}.{exc.path or 'template'}"
                ) from exc
            for name in self._image_fields(item):
                if item.fields[name] not in bundle.assets:
                    raise ContentError(
                        ErrorCode.CONTENT_INVALID,
                        f"names asset {item.fields[name]!r}, which is not in the manifest",
                        path=f"{where}.fields.{name}",
                    )

    def _check_images(self, bundle: Bundle) -> None:
        for item in bundle.items:
            for name in self._image_fields(item):
                ref = bundle.assets[str(item.fields[name])]
                load_image(self.store.asset_path(ref.sha256), self.max_pixels)

    def _evict(self) -> None:
        needed: set[str] = set()
        for waiting in self.pending.values():
            needed.update(ref.sha256 for ref in waiting.bundle.assets.values())
        # Downloads no waiting bundle wants were left by superseded ones (a reconnect may
        # offer one again later: it then starts from 0, which costs bytes, not correctness).
        dropped = self.store.drop_partials(needed)
        if dropped:
            log.info("abandoned downloads dropped bytes=%d", dropped)
        for publisher, version in self.store.versions().items():
            try:
                bundle = accept_bundle(
                    self.store.envelope(publisher, version), self.trust, {}, self.tz, None
                )
            except SignageError:
                continue
            needed.update(ref.sha256 for ref in bundle.assets.values())
        freed = self.store.evict(needed)
        if freed:
            log.info("cache evicted bytes=%d", freed)
