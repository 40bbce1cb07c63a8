"""The publisher's side of ``/publish`` (docs/protocol.md §17): push signed bundles with their
assets, send alerts and commands, list boards, fetch screenshots.

``signage push``, ``signage alert``, ``signage command``, ``signage boards`` and
``signage screenshot`` call these; ``signage demo`` and the tests use them too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signage import __version__
from signage.board.link import check_url, ssl_context
from signage.errors import ErrorCode, HubError, SignageError
from signage.model import load_bundle_json
from signage.protocol import (
    MAX_TEXT_BYTES,
    PUBLISHER_SCHEMAS,
    Chunk,
    decode_chunk,
    decode_text,
    encode_chunk,
    encode_message,
)

UPLOAD_CHUNK = 256 * 2**10


def publish_url(hub: str) -> str:
    """Return the ``/publish`` URL of a hub given as ``ws[s]://host:port`` (a path, if any,
    is kept). Raises ConfigError for a URL a board would refuse too."""
    parts = urlsplit(hub.rstrip("/"))
    path = parts.path if parts.path not in ("", "/", "/board") else "/publish"
    url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    check_url(url, allow_insecure=False)
    return url


class PublisherClient:
    """One connection to a hub's ``/publish``: ``async with PublisherClient(url, token) as c``."""

    def __init__(self, hub: str, token: str, *, ca_file: Path | None = None) -> None:
        self.url = publish_url(hub)
        self.token = token
        self.ca_file = ca_file
        self._ws: ClientConnection | None = None
        self._counter = 0
        self._answers: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._blobs: dict[str, bytearray] = {}
        self._blob_done: dict[str, asyncio.Future[bytes]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PublisherClient:
        try:
            self._ws = await connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                user_agent_header=f"signage-publisher/{__version__}",
                ssl=ssl_context(self.url, self.ca_file),
                max_size=MAX_TEXT_BYTES,
                open_timeout=20,
            )
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code == 401:
                raise HubError(ErrorCode.AUTH_FAILED, "the hub refused this token") from None
            raise HubError(ErrorCode.LINK_FAILED, f"the hub answered HTTP {code}") from None
        except (OSError, TimeoutError) as exc:
            raise HubError(
                ErrorCode.LINK_FAILED, f"cannot reach the hub at {self.url}: {exc}"
            ) from None
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self, kind: str, fields: Mapping[str, Any], timeout: float = 60.0
    ) -> Mapping[str, Any]:
        """Send one request and return its ack's result. Raises HubError with the hub's code
        when it refuses (or link.failed when the connection ends)."""
        assert self._ws is not None, "use PublisherClient in an async with"
        self._counter += 1
        ident = f"p{self._counter}"
        future: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[ident] = future
        await self._ws.send(encode_message(kind, ident, fields, PUBLISHER_SCHEMAS))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise HubError(
                ErrorCode.LINK_FAILED, f"no answer to {kind} in {timeout:.0f} s"
            ) from None
        finally:
            self._answers.pop(ident, None)

    async def push_bundle(
        self, envelope: bytes, assets_dir: Path, wait_s: float = 0.0
    ) -> Mapping[str, Any]:
        """Upload what the hub lacks of the bundle's assets (from ``assets_dir/<sha256>``),
        then publish it; return the publish result (per-board outcomes). Raises SignageError."""
        bundle = load_bundle_json(_payload(envelope))
        wanted = sorted({ref.sha256: ref for ref in bundle.assets.values()}.items())
        answer = await self.request("missing", {"sha256": [sha for sha, _ in wanted]})
        for sha in answer["missing"]:
            path = assets_dir / sha
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise HubError(
                    ErrorCode.ASSET_MISSING, f"the hub needs {sha}: {exc.strerror}", path=str(path)
                ) from None
            if hashlib.sha256(data).hexdigest() != sha:
                raise HubError(ErrorCode.ASSET_HASH_MISMATCH, "file does not match", path=str(path))
            await self._upload(sha, data)
        return await self.publish("bundle", envelope, wait_s)

    async def publish(self, kind: str, envelope: bytes, wait_s: float = 0.0) -> Mapping[str, Any]:
        """Publish a signed ``bundle`` (assets already on the hub), ``alert`` or ``command``;
        return the result. Raises HubError (the hub's or a board's refusal code)."""
        fields = {"signed": json.loads(envelope), "kind": kind, "wait_s": int(wait_s)}
        return await self.request("publish", fields, timeout=wait_s + 60.0)

    async def boards(self) -> list[Mapping[str, Any]]:
        """Return the boards this token may see, with their state."""
        answer = await self.request("boards", {})
        return list(answer["boards"])

    async def screenshot(self, board: str) -> bytes:
        """Return a fresh PNG of ``board``'s screen. Raises HubError."""
        answer = await self.request("screenshot", {"board": board}, timeout=90.0)
        sha = str(answer["sha256"])
        waiter = self._blob_done.setdefault(sha, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(waiter, 60.0)
        except TimeoutError:
            raise HubError(ErrorCode.COMMAND_FAILED, "the screenshot did not arrive") from None
        finally:
            self._blob_done.pop(sha, None)

    # -- inside -------------------------------------------------------------------------------

    async def _upload(self, sha: str, data: bytes) -> None:
        assert self._ws is not None
        for start in range(0, len(data), UPLOAD_CHUNK):
            block = data[start : start + UPLOAD_CHUNK]
            await self._ws.send(encode_chunk(Chunk(sha, start, len(data), block)))

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if isinstance(frame, bytes):
                    self._chunk(frame)
                    continue
                try:
                    message = decode_text(frame, PUBLISHER_SCHEMAS)
                except SignageError:
                    continue
                if message.type != "ack":
                    continue
                future = self._answers.get(message.fields["ref"])
                if future is None or future.done():
                    continue
                if message.fields["ok"]:
                    future.set_result(message.fields.get("result", {}))
                else:
                    error = message.fields["error"]
                    future.set_exception(_refusal(error))
        except ConnectionClosed:
            pass
        finally:
            for future in self._answers.values():
                if not future.done():
                    future.set_exception(
                        HubError(ErrorCode.LINK_FAILED, "the hub closed the connection")
                    )

    def _chunk(self, frame: bytes) -> None:
        try:
            chunk = decode_chunk(frame)
        except SignageError:
            return
        buffer = self._blobs.setdefault(chunk.sha256, bytearray())
        if chunk.offset != len(buffer):
            return
        buffer.extend(chunk.data)
        if chunk.offset + len(chunk.data) == chunk.total:
            data = bytes(self._blobs.pop(chunk.sha256))
            if hashlib.sha256(data).hexdigest() != chunk.sha256:
                return
            waiter = self._blob_done.setdefault(
                chunk.sha256, asyncio.get_running_loop().create_future()
            )
            if not waiter.done():
                waiter.set_result(data)


def _refusal(error: Mapping[str, Any]) -> HubError:
    code = str(error.get("code", ""))
    try:
        known = ErrorCode(code)
    except ValueError:
        known = ErrorCode.LINK_FAILED
    return HubError(known, str(error.get("message", "")), path=error.get("path"))


def _payload(envelope: bytes) -> bytes:
    try:
        return base64.b64decode(json.loads(envelope)["payload"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise HubError(ErrorCode.BUNDLE_MALFORMED, f"not a signed envelope: {exc}") from None


# -- for the command line ------------------------------------------------------------------------

_OUTCOMES = {
    "applied": "applied",
    "refused": "REFUSED",
    "pending": "pending (no answer yet; it will apply or refuse on its own)",
    "offline": "offline (gets it when it reconnects)",
}


def describe_result(result: Mapping[str, Any]) -> list[str]:
    """Return the lines ``signage push``/``alert``/``command`` print: one per target board."""
    lines = []
    for entry in result.get("boards", []):
        text = _OUTCOMES.get(str(entry.get("outcome")), str(entry.get("outcome")))
        error = entry.get("error")
        if isinstance(error, Mapping):
            text += f": {error.get('code')}: {error.get('message')}"
        if str(entry.get("outcome")) == "offline" and "name" in result:
            text = "offline (commands are not kept for offline boards)"
        lines.append(f"  {entry.get('board')}: {text}")
    if not lines:
        lines.append("  no registered board lies in this area")
    return lines


def describe_boards(rows: list[Mapping[str, Any]], now: float) -> list[str]:
    """Return ``signage boards`` output: a table of boards and their state."""
    header = f"{'BOARD':<24} {'AREA':<14} {'STATE':<8} {'SEEN':>8}  {'SHOWING':<28} VERSIONS"
    lines = [header]
    for row in rows:
        seen = row.get("last_seen")
        ago = "never" if not isinstance(seen, int | float) else _ago(now - seen)
        versions = ",".join(f"{p}@{v}" for p, v in sorted(dict(row.get("versions") or {}).items()))
        showing = str(row.get("item") or "-")
        if row.get("display_on") is False:
            showing = "(screen off)"
        lines.append(
            f"{row['id']:<24} {row.get('area') or '(all)':<14}"
            f" {'online' if row.get('online') else 'offline':<8} {ago:>8}"
            f"  {showing[:28]:<28} {versions or '-'}"
        )
        if row.get("last_error"):
            lines.append(f"{'':<24} last error: {row['last_error']}")
    return lines


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
