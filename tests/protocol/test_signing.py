"""Signing and verification: keys, the envelope over exact bytes, area scope, no rollback."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from signage.cli import main
from signage.errors import ContentError, ErrorCode, SigningError
from signage.model import bundle_to_json, load_bundle_json
from signage.protocol import PrivateKey, PublicKey, Trust, accept_bundle, area_within
from signage.protocol.signing import canonical_envelope

REPO = Path(__file__).resolve().parents[2]
ISSUED = datetime.fromisoformat("2026-11-26T17:00:00+07:00")
SHA = "a" * 64


def _bundle(publisher: str = "tinh-62", version: int = 5, area: str = "62/23456") -> bytes:
    data: dict[str, Any] = {
        "bundle": 1,
        "publisher": publisher,
        "version": version,
        "issued": ISSUED.isoformat(),
        "area": area,
        "items": [
            {
                "id": "tb-1",
                "template": "announcement",
                "fields": {"title": "Thông báo", "body": "Nội dung ơ̆ ư̆ ĕ"},
            }
        ],
        "assets": {"dong-lua.jpg": {"sha256": SHA, "size": 10, "media_type": "image/jpeg"}},
    }
    return bundle_to_json(data)


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate("tinh-62", "62")


@pytest.fixture(scope="module")
def trust(key: PrivateKey) -> Trust:
    return Trust([key.public()])


def test_keys_round_trip_through_json(key: PrivateKey) -> None:
    again = PrivateKey.from_json(key.to_json())
    assert again.key_id == "tinh-62" and again.area == "62"
    public = PublicKey.from_json(key.public().to_json())
    assert public.key.public_bytes_raw() == key.public().key.public_bytes_raw()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"id": "x"}',
        '{"id": "x", "area": "", "ed25519": "!!"}',
        '{"id": "X Y", "area": "", "ed25519": "AAAA"}',
        '{"id": "x", "area": "", "ed25519": "AAAA"}',
    ],
)
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(SigningError) as caught:
        PublicKey.from_json(text)
    assert caught.value.code is ErrorCode.KEY_INVALID


def test_a_signed_bundle_verifies(key: PrivateKey, trust: Trust) -> None:
    bundle = accept_bundle(key.sign(_bundle()), trust, {})
    assert bundle.publisher == "tinh-62" and bundle.version == 5
    assert bundle.items[0].fields["body"] == "Nội dung ơ̆ ư̆ ĕ"


def test_every_single_byte_change_is_refused(key: PrivateKey, trust: Trust) -> None:
    signed = key.sign(_bundle())
    for index in range(len(signed)):
        for flip in (0x01, 0x80):
            changed = bytearray(signed)
            changed[index] ^= flip
            with pytest.raises(SigningError):
                accept_bundle(bytes(changed), trust, {})


def test_payload_bytes_are_what_is_signed(key: PrivateKey, trust: Trust) -> None:
    envelope = json.loads(key.sign(_bundle()))
    other = json.loads(key.sign(_bundle(version=6)))
    envelope["payload"] = other["payload"]  # a valid payload under someone else's signature
    with pytest.raises(SigningError) as caught:
        accept_bundle(canonical_envelope(**_parts(envelope)), trust, {})
    assert caught.value.code is ErrorCode.SIGNATURE_INVALID


def _parts(envelope: dict[str, str]) -> dict[str, str]:
    return {
        "key_id": envelope["key"],
        "payload_b64": envelope["payload"],
        "sig_b64": envelope["sig"],
    }


def test_only_the_canonical_spelling_of_an_envelope_is_accepted(
    key: PrivateKey, trust: Trust
) -> None:
    signed = key.sign(_bundle())
    assert accept_bundle(signed.rstrip(b"\n"), trust, {}).version == 5
    loose = json.dumps(json.loads(signed)).encode()  # same content, spaces after separators
    with pytest.raises(SigningError) as caught:
        accept_bundle(loose, trust, {})
    assert caught.value.code is ErrorCode.BUNDLE_MALFORMED


@pytest.mark.parametrize(
    ("area", "ok"),
    [("62", True), ("62/23456", True), ("620/1", False), ("64/1", False), ("", False)],
)
def test_a_key_signs_only_inside_its_area(
    key: PrivateKey, trust: Trust, area: str, ok: bool
) -> None:
    signed = key.sign(_bundle(area=area))
    if ok:
        assert accept_bundle(signed, trust, {}).area == area
    else:
        with pytest.raises(SigningError) as caught:
            accept_bundle(signed, trust, {})
        assert caught.value.code is ErrorCode.SIGNATURE_OUT_OF_SCOPE


def test_area_paths_compare_by_segments() -> None:
    assert area_within("62/23456", "62") and area_within("62", "") and area_within("62", "62/")
    assert not area_within("620", "62") and not area_within("62", "62/23456")


@pytest.mark.parametrize("applied", [5, 6, 100])
def test_no_rollback(key: PrivateKey, trust: Trust, applied: int) -> None:
    with pytest.raises(SigningError) as caught:
        accept_bundle(key.sign(_bundle(version=5)), trust, {"tinh-62": applied})
    assert caught.value.code is ErrorCode.BUNDLE_VERSION_NOT_NEWER
    assert accept_bundle(key.sign(_bundle(version=5)), trust, {"tinh-62": 4}).version == 5


def test_unknown_key_and_foreign_publisher(key: PrivateKey) -> None:
    stranger = PrivateKey.generate("xa-khac", "62")
    with pytest.raises(SigningError) as caught:
        accept_bundle(stranger.sign(_bundle(publisher="xa-khac")), Trust([key.public()]), {})
    assert caught.value.code is ErrorCode.SIGNATURE_UNKNOWN_KEY
    both = Trust([key.public(), stranger.public()])
    with pytest.raises(SigningError) as caught:
        accept_bundle(stranger.sign(_bundle(publisher="tinh-62")), both, {})
    assert caught.value.code is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("name", "entry", "path"),
    [
        ("../etc.jpg", {"sha256": SHA, "size": 1, "media_type": "image/jpeg"}, "assets.../etc.jpg"),
        ("a/b.jpg", {"sha256": SHA, "size": 1, "media_type": "image/jpeg"}, "assets.a/b.jpg"),
        (
            "x.jpg",
            {"sha256": "A" * 64, "size": 1, "media_type": "image/jpeg"},
            "assets.x.jpg.sha256",
        ),
        ("x.jpg", {"sha256": SHA, "size": 0, "media_type": "image/jpeg"}, "assets.x.jpg.size"),
        (
            "x.svg",
            {"sha256": SHA, "size": 1, "media_type": "image/svg+xml"},
            "assets.x.svg.media_type",
        ),
    ],
)
def test_bad_asset_manifests_name_the_field(name: str, entry: object, path: str) -> None:
    data = json.loads(_bundle())
    data["assets"] = {name: entry}
    with pytest.raises(ContentError) as caught:
        load_bundle_json(json.dumps(data).encode())
    assert caught.value.path == path


def test_cli_keys_build_sign_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, out = tmp_path / "keys", tmp_path / "out"
    assert main(["keys", "new", "--id", "tinh-62", "--area", "62", "--out", str(keys)]) == 0
    assert stat.S_IMODE((keys / "tinh-62.key").stat().st_mode) == 0o600
    assert main(["keys", "new", "--id", "tinh-62", "--out", str(keys)]) == 2  # never overwritten
    assert main(["keys", "new", "--id", "khac", "--area", "64", "--out", str(keys)]) == 0
    source = REPO / "examples" / "xa-sa-thay"
    assert (
        main(
            [
                "bundle",
                "build",
                str(source),
                "--key",
                str(keys / "tinh-62.key"),
                "--area",
                "62/23456",
                "--out",
                str(out / "b.json"),
            ]
        )
        == 0
    )
    manifest = json.loads((out / "b.json").read_text(encoding="utf-8"))["assets"]
    digest = manifest["dong-lua.jpg"]["sha256"]
    assert (out / "assets" / digest).read_bytes() == (source / "dong-lua.jpg").read_bytes()
    assert (
        main(
            [
                "bundle",
                "sign",
                str(out / "b.json"),
                "--key",
                str(keys / "tinh-62.key"),
                "--out",
                str(out / "b.signed"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(["bundle", "verify", str(out / "b.signed"), "--trust", str(keys / "tinh-62.pub")]) == 0
    )
    assert capsys.readouterr().out.startswith("valid: publisher tinh-62")
    assert main(["bundle", "verify", str(out / "b.signed"), "--trust", str(keys / "khac.pub")]) == 2
    assert "signature.unknown_key" in capsys.readouterr().err
    assert (
        main(
            [
                "bundle",
                "sign",
                str(out / "b.json"),
                "--key",
                str(keys / "khac.key"),
                "--out",
                str(out / "x.signed"),
            ]
        )
        == 2
    )
