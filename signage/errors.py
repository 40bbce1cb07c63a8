"""Typed errors shared by every layer.

Each error carries a stable machine-readable ``code`` (never reworded once released: hubs,
reports and technicians match on it) and a message a technician can act on. Codes are grouped
by the part of the system that raises them.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes. The value is what appears in reports, logs and acks."""

    # content model
    CONTENT_INVALID = "content.invalid"
    CONTENT_JSON = "content.json"
    # text and fonts
    TEXT_RAQM_MISSING = "text.raqm_missing"
    TEXT_FONT_CONFIG = "text.font_config"
    TEXT_FONT_MISSING = "text.font_missing"
    TEXT_GLYPH_MISSING = "text.glyph_missing"
    # layouts
    LAYOUT_UNKNOWN = "layout.unknown"
    LAYOUT_INVALID = "layout.invalid"
    LAYOUT_FIELD_MISSING = "layout.field_missing"
    # assets
    ASSET_MISSING = "asset.missing"
    ASSET_UNREADABLE = "asset.unreadable"
    ASSET_IMAGE_BROKEN = "asset.image_broken"
    ASSET_IMAGE_TOO_LARGE = "asset.image_too_large"
    ASSET_QR_TOO_LONG = "asset.qr_too_long"
    ASSET_HASH_MISMATCH = "asset.hash_mismatch"
    ASSET_SIZE_MISMATCH = "asset.size_mismatch"
    BUNDLE_INCOMPLETE = "bundle.incomplete"
    # signed bundles and keys
    BUNDLE_MALFORMED = "bundle.malformed"
    BUNDLE_VERSION_NOT_NEWER = "bundle.version_not_newer"
    SIGNATURE_INVALID = "signature.invalid"
    SIGNATURE_UNKNOWN_KEY = "signature.unknown_key"
    SIGNATURE_OUT_OF_SCOPE = "signature.out_of_scope"
    KEY_INVALID = "key.invalid"
    AREA_MISMATCH = "area.mismatch"
    # alerts and signed commands
    ALERT_INVALID = "alert.invalid"
    ALERT_EXPIRED = "alert.expired"
    COMMAND_INVALID = "command.invalid"
    COMMAND_UNKNOWN = "command.unknown"
    COMMAND_NOT_NEWER = "command.not_newer"
    COMMAND_FAILED = "command.failed"
    # wire protocol (docs/protocol.md)
    MESSAGE_MALFORMED = "message.malformed"
    MESSAGE_TOO_LARGE = "message.too_large"
    MESSAGE_UNKNOWN_TYPE = "message.unknown_type"
    MESSAGE_UNSUPPORTED_VERSION = "message.unsupported_version"
    MESSAGE_RATE_LIMITED = "message.rate_limited"
    SESSION_UNEXPECTED = "session.unexpected"
    SESSION_TIMEOUT = "session.timeout"
    ASSET_OUT_OF_ORDER = "asset.out_of_order"
    LINK_FAILED = "link.failed"
    # the reference hub: registry, tokens, publisher requests
    AUTH_FAILED = "auth.failed"
    AUTH_FORBIDDEN = "auth.forbidden"
    BOARD_UNKNOWN = "board.unknown"
    BOARD_OFFLINE = "board.offline"
    PUBLISHER_UNKNOWN = "publisher.unknown"
    REGISTRY_CONFLICT = "registry.conflict"
    # content folders (folder mode)
    FOLDER_INVALID = "folder.invalid"
    # board configuration, play log, display
    CONFIG_INVALID = "config.invalid"
    STORE_FAILED = "store.failed"
    DISPLAY_FAILED = "display.failed"
    # command line
    USAGE = "usage"


class SignageError(Exception):
    """Base of every error the board raises on purpose.

    ``code`` is stable; ``message`` is for people; ``path`` names the bad field or file
    when there is one (``fields.title``, ``layouts/news-photo.json``).
    """

    def __init__(self, code: ErrorCode, message: str, *, path: str | None = None) -> None:
        self.code = code
        self.message = message
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message} [{self.code.value}]"

    def as_dict(self) -> dict[str, str]:
        """Return the error as JSON-ready data: ``code``, ``message`` and, if known, ``path``."""
        out = {"code": self.code.value, "message": self.message}
        if self.path:
            out["path"] = self.path
        return out


class ContentError(SignageError):
    """An item or bundle does not follow docs/content.md."""


class FontError(SignageError):
    """A font, the font registry or the shaping engine is unusable."""


class LayoutError(SignageError):
    """A layout template is unknown or malformed."""


class AssetError(SignageError):
    """An asset (image, logo) is missing, unreadable, broken or too large."""


class SigningError(SignageError):
    """A signed bundle or command is refused, or a key is unusable."""


class ProtocolError(SignageError):
    """A message, binary chunk or session step breaks docs/protocol.md."""


class ConfigError(SignageError):
    """board.toml (or a command-line override) is invalid; ``path`` names the key."""


class StoreError(SignageError):
    """The data directory or its databases cannot be used."""


class FolderError(SignageError):
    """A content folder (folder mode) cannot be applied; the old programme keeps playing."""


class DisplayError(SignageError):
    """The screen cannot be opened or used."""


class HubError(SignageError):
    """The reference hub refused a request (auth.*, board.*, registry.*)."""


class UsageError(SignageError):
    """A command-line argument is wrong."""
