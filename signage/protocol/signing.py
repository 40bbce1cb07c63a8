"""Ed25519 signing of bundles and commands, with keys limited to an area (no I/O).

A signed document is a small JSON envelope around the exact bytes that get parsed:

    {"v": 1, "key": "<key id>", "payload": "<base64 of the document bytes>", "sig": "<base64>"}

The signature covers the payload bytes as they are, so what is verified is what is parsed: no
canonicalisation step for a parser to disagree with. A board trusts a set of public keys; each
key may sign only for areas inside its own area prefix ("62" covers "62/23456"; "" covers all).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signage.errors import ContentError, ErrorCode, SigningError
from signage.model import (
    Alert,
    Bundle,
    Command,
    load_alert_json,
    load_bundle_json,
    load_command_json,
)

ENVELOPE_VERSION = 1
MAX_SIGNED_BYTES = 16 * 2**20  # a bundle's JSON, assets travel apart
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def area_within(area: str, prefix: str) -> bool:
    """Return True when administrative area path ``area`` lies inside ``prefix`` (by segments)."""
    inner = [p for p in area.split("/") if p]
    outer = [p for p in prefix.split("/") if p]
    return inner[: len(outer)] == outer


def check_key_id(key_id: str) -> str:
    """Return ``key_id`` if it is 1-64 of a-z 0-9 - _ . ; raise SigningError (key.invalid)."""
    if not 1 <= len(key_id) <= 64 or not set(key_id) <= _KEY_ID_CHARS:
        raise SigningError(
            ErrorCode.KEY_INVALID, "key id must be 1-64 characters of a-z, 0-9, '-', '_', '.'"
        )
    return key_id


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A publisher's public key, its id and the area prefix it may sign for."""

    key_id: str
    area: str
    key: Ed25519PublicKey

    def to_json(self) -> str:
        """Return the key as the JSON of an ``ID.pub`` file."""
        raw = self.key.public_bytes_raw()
        data = {"id": self.key_id, "area": self.area, "ed25519": _b64(raw)}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> PublicKey:
        """Return the key in ``ID.pub`` JSON; raise SigningError (key.invalid) if malformed."""
        key_id, area, raw = _key_file(text, "ed25519")
        try:
            return cls(key_id, area, Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise SigningError(ErrorCode.KEY_INVALID, f"not an Ed25519 public key: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A publisher's signing key. Keep ``ID.key`` files readable by their owner only."""

    key_id: str
    area: str
    key: Ed25519PrivateKey

    @classmethod
    def generate(cls, key_id: str, area: str = "") -> PrivateKey:
        """Return a new random key ``key_id`` for area prefix ``area``."""
        return cls(check_key_id(key_id), area.strip("/"), Ed25519PrivateKey.generate())

    def public(self) -> PublicKey:
        """Return the matching public key."""
        return PublicKey(self.key_id, self.area, self.key.public_key())

    def to_json(self) -> str:
        """Return the key as the JSON of an ``ID.key`` file."""
        data = {
            "id": self.key_id,
            "area": self.area,
            "ed25519_private": _b64(self.key.private_bytes_raw()),
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> PrivateKey:
        """Return the key in ``ID.key`` JSON; raise SigningError (key.invalid) if malformed."""
        key_id, area, raw = _key_file(text, "ed25519_private")
        try:
            return cls(key_id, area, Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise SigningError(ErrorCode.KEY_INVALID, f"not an Ed25519 private key: {exc}") from exc

    def sign(self, payload: bytes) -> bytes:
        """Return the signed envelope around ``payload`` (the exact bytes a verifier will parse)."""
        return canonical_envelope(self.key_id, _b64(payload), _b64(self.key.sign(payload)))


@dataclass(frozen=True, slots=True)
class Signed:
    """A verified envelope: which key signed it, that key's area prefix, and the payload bytes."""

    key_id: str
    area: str
    payload: bytes


class Trust:
    """The public keys a board or hub accepts, by id."""

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self._keys: dict[str, PublicKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise SigningError(ErrorCode.KEY_INVALID, f"key id {key.key_id!r} trusted twice")
            self._keys[key.key_id] = key

    def __len__(self) -> int:
        return len(self._keys)

    def verify(self, envelope: bytes) -> Signed:
        """Return the verified payload of ``envelope``.

        Raises SigningError: bundle.malformed for anything that is not a well-formed envelope,
        signature.unknown_key for a key not trusted here, signature.invalid when the signature
        does not match the payload bytes.
        """
        if len(envelope) > MAX_SIGNED_BYTES:
            raise SigningError(
                ErrorCode.BUNDLE_MALFORMED, f"signed document larger than {MAX_SIGNED_BYTES} bytes"
            )
        data = _object(envelope, "signed envelope", ErrorCode.BUNDLE_MALFORMED)
        version = data.get("v")
        if (
            type(version) is not int
            or version != ENVELOPE_VERSION
            or set(data)
            != {
                "v",
                "key",
                "payload",
                "sig",
            }
        ):
            raise SigningError(
                ErrorCode.BUNDLE_MALFORMED, 'expected {"v": 1, "key", "payload", "sig"}'
            )
        key_id = data["key"]
        if not all(isinstance(data[k], str) for k in ("key", "payload", "sig")) or envelope not in (
            canonical := canonical_envelope(data["key"], data["payload"], data["sig"]),
            canonical.rstrip(b"\n"),
        ):
            # One spelling only: every changed byte of a signed document is refused.
            raise SigningError(
                ErrorCode.BUNDLE_MALFORMED, "envelope is not in its canonical form (see docs)"
            )
        key = self._keys.get(key_id) if isinstance(key_id, str) else None
        if key is None:
            raise SigningError(
                ErrorCode.SIGNATURE_UNKNOWN_KEY,
                f"signed by a key this board does not trust: {key_id!r}",
            )
        payload = _unb64(data["payload"], "payload", ErrorCode.BUNDLE_MALFORMED)
        signature = _unb64(data["sig"], "sig", ErrorCode.BUNDLE_MALFORMED)
        try:
            key.key.verify(signature, payload)
        except InvalidSignature as exc:
            raise SigningError(
                ErrorCode.SIGNATURE_INVALID, f"signature of {key_id!r} does not match the content"
            ) from exc
        return Signed(key.key_id, key.area, payload)


def canonical_envelope(key_id: str, payload_b64: str, sig_b64: str) -> bytes:
    """Return the one accepted spelling of an envelope: compact JSON in the order v, key,
    payload, sig, and a final newline (which may be left out)."""
    data = {"v": ENVELOPE_VERSION, "key": key_id, "payload": payload_b64, "sig": sig_b64}
    return (json.dumps(data, separators=(",", ":")) + "\n").encode("ascii")


def _key_file(text: str | bytes, field: str) -> tuple[str, str, bytes]:
    """Return (id, area, raw key bytes) of a key file's JSON; raise SigningError (key.invalid)."""
    data = _object(text, "key file")
    raw = _unb64(data.get(field), field)
    return check_key_id(_text(data, "id")), _text(data, "area", allow_empty=True), raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: object, name: str, code: ErrorCode = ErrorCode.KEY_INVALID) -> bytes:
    if not isinstance(value, str):
        raise SigningError(code, f"{name}: expected base64 text")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SigningError(code, f"{name}: not valid base64") from exc
    if _b64(raw) != value:  # unused bits set, or odd padding: another spelling of the bytes
        raise SigningError(code, f"{name}: not canonical base64")
    return raw


def _object(
    text: str | bytes, what: str, code: ErrorCode = ErrorCode.KEY_INVALID
) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SigningError(code, f"{what} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SigningError(code, f"{what} must be a JSON object")
    return data


def _text(data: Mapping[str, Any], key: str, allow_empty: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise SigningError(ErrorCode.KEY_INVALID, f"{key}: expected a string")
    return value


def accept_bundle(
    envelope: bytes,
    trust: Trust,
    applied: Mapping[str, int],
    tz: ZoneInfo | None = None,
    board_area: str | None = None,
) -> Bundle:
    """Return the bundle in a signed ``envelope`` once every check passes.

    Checks, in order: the signature of a trusted key over the exact payload bytes; the payload
    is a valid bundle; its publisher is the signing key; its area lies inside the key's area
    prefix; the board (``board_area``, when given) lies inside the bundle's area; its version is
    newer than ``applied[publisher]`` (no rollback). Raises SigningError with the code of the
    first check that fails (bundle.malformed, signature.unknown_key, signature.invalid,
    signature.out_of_scope, area.mismatch, bundle.version_not_newer).
    """
    signed = trust.verify(envelope)
    try:
        bundle = load_bundle_json(signed.payload, tz)
    except ContentError as exc:
        raise SigningError(ErrorCode.BUNDLE_MALFORMED, str(exc)) from exc
    _check_scope(signed, bundle.publisher, bundle.area, board_area)
    last = applied.get(bundle.publisher)
    if last is not None and bundle.version <= last:
        raise SigningError(
            ErrorCode.BUNDLE_VERSION_NOT_NEWER,
            f"version {bundle.version} of {bundle.publisher!r} is not newer than applied {last}",
        )
    return bundle


def accept_alert(
    envelope: bytes, trust: Trust, seen: Mapping[str, int], board_area: str | None = None
) -> Alert:
    """Return the alert in a signed ``envelope`` once every check passes.

    The checks are those of :func:`accept_bundle`, with ``seq`` in place of the version:
    it must be greater than ``seen[publisher]``, the last seq of that publisher's alerts and
    commands. Raises SigningError (alert.invalid for a payload that is not a valid alert,
    command.not_newer for a replayed or older document, and the signature and area codes).
    """
    signed = trust.verify(envelope)
    try:
        alert = load_alert_json(signed.payload)
    except ContentError as exc:
        raise SigningError(ErrorCode.ALERT_INVALID, str(exc)) from exc
    _check_scope(signed, alert.publisher, alert.area, board_area)
    _check_seq(alert.publisher, alert.seq, seen)
    return alert


def accept_command(
    envelope: bytes, trust: Trust, seen: Mapping[str, int], board_area: str | None = None
) -> Command:
    """Return the signed command in ``envelope`` once every check passes (as for alerts).

    Raises SigningError (command.invalid for a payload that is not a valid command,
    command.not_newer, and the signature and area codes).
    """
    signed = trust.verify(envelope)
    try:
        command = load_command_json(signed.payload)
    except ContentError as exc:
        raise SigningError(ErrorCode.COMMAND_INVALID, str(exc)) from exc
    _check_scope(signed, command.publisher, command.area, board_area)
    _check_seq(command.publisher, command.seq, seen)
    return command


def _check_scope(signed: Signed, publisher: str, area: str, board_area: str | None) -> None:
    if publisher != signed.key_id:
        raise SigningError(
            ErrorCode.SIGNATURE_INVALID,
            f"document says publisher {publisher!r} but is signed by {signed.key_id!r}",
        )
    if not area_within(area, signed.area):
        raise SigningError(
            ErrorCode.SIGNATURE_OUT_OF_SCOPE,
            f"key {signed.key_id!r} may sign for area {signed.area or '(all)'!r},"
            f" not {area or '(all)'!r}",
        )
    if board_area is not None and not area_within(board_area, area):
        raise SigningError(
            ErrorCode.AREA_MISMATCH,
            f"meant for area {area or '(all)'!r}; this board is in {board_area or '(all)'!r}",
        )


def _check_seq(publisher: str, seq: int, seen: Mapping[str, int]) -> None:
    last = seen.get(publisher)
    if last is not None and seq <= last:
        raise SigningError(
            ErrorCode.COMMAND_NOT_NEWER,
            f"seq {seq} of {publisher!r} is not newer than {last} (replayed or out of order)",
        )
