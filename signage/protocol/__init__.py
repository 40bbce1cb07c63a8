"""Protocol layer: signing and verification of bundles and commands (and, next, the messages and
the sans-I/O session of docs/protocol.md). No I/O."""

from signage.protocol.signing import (
    ENVELOPE_VERSION,
    MAX_SIGNED_BYTES,
    PrivateKey,
    PublicKey,
    Signed,
    Trust,
    accept_bundle,
    area_within,
    check_key_id,
)

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_SIGNED_BYTES",
    "PrivateKey",
    "PublicKey",
    "Signed",
    "Trust",
    "accept_bundle",
    "area_within",
    "check_key_id",
]
