"""ContentSync without a socket: superseded bundles are answered, unknown templates refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signage.errors import ErrorCode, SignageError
from signage.protocol import PrivateKey, Trust
from tests.board.linkkit import make_board, signed_example, signed_text_bundle


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate("tinh-62", "62")


def test_a_bundle_replaced_while_waiting_for_assets_gets_its_answer(
    tmp_path: Path, key: PrivateKey
) -> None:
    board = make_board(tmp_path / "b", "ws://127.0.0.1:9/x", Trust([key.public()]))
    missing = board.sync.offer_bundle(signed_example(key, tmp_path / "hub", 100), "m1")
    assert missing  # its photo is not here yet
    assert board.sync.offer_bundle(signed_text_bundle(key, 101, "Mới hơn"), "m2") == []
    settled = {s.ref: s for s in board.sync.settle()}
    assert settled["m1"].error is not None
    assert settled["m1"].error.code == ErrorCode.BUNDLE_VERSION_NOT_NEWER
    assert settled["m2"].error is None
    assert board.sync.store.versions() == {"tinh-62": 101}
    board.journal.close()


def test_unknown_template_is_refused_and_stages_nothing(tmp_path: Path, key: PrivateKey) -> None:
    board = make_board(tmp_path / "b", "ws://127.0.0.1:9/x", Trust([key.public()]))
    payload = json.loads(
        __import__("base64").b64decode(json.loads(signed_text_bundle(key, 5, "x"))["payload"])
    )
    payload["items"][0]["template"] = "khong-co"
    envelope = key.sign(json.dumps(payload).encode())
    with pytest.raises(SignageError) as caught:
        board.sync.offer_bundle(envelope, "m1")
    assert caught.value.code == ErrorCode.LAYOUT_UNKNOWN
    assert not any((board.sync.store.bundles).rglob("*"))
    assert board.sync.programme().items == ()
    board.journal.close()
