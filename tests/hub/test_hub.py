"""The reference hub with real boards on 127.0.0.1: scoped fan-out, catch-up, tokens, reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from signage.errors import ErrorCode, HubError
from tests.board.linkkit import signed_text_bundle
from tests.hub.hubkit import running_hub, wait_online


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_a_commune_publisher_reaches_only_its_own_commune(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_hub(tmp_path) as rig:
            xa_a = rig.add_publisher("xa-23456", "62/23456")
            xa_b = rig.add_publisher("xa-11111", "62/11111")
            for board_id, area in (("a1", "62/23456"), ("a2", "62/23456"), ("b1", "62/11111")):
                rig.add_board(board_id, area)
                await rig.start_board(board_id)
            await wait_online(rig, "a1", "a2", "b1")
            async with rig.publisher("xa-23456") as client:
                envelope = signed_text_bundle(xa_a, 10, "Thông báo xã", area="62/23456")
                result = await client.push_bundle(envelope, tmp_path, wait_s=10)
            outcomes = {b["board"]: b["outcome"] for b in result["boards"]}
            assert outcomes == {"a1": "applied", "a2": "applied"}
            assert rig.boards["b1"].sync.store.versions() == {}
            # A commune's key cannot publish for another commune, even through its own token.
            async with rig.publisher("xa-11111") as client:
                stray = signed_text_bundle(xa_b, 11, "Sai địa bàn", area="62/23456")
                with pytest.raises(HubError) as refused:
                    await client.push_bundle(stray, tmp_path, wait_s=5)
                assert refused.value.code is ErrorCode.SIGNATURE_OUT_OF_SCOPE
                # ... nor pass on a document signed by someone else.
                borrowed = signed_text_bundle(xa_a, 12, "Mượn khoá", area="62/23456")
                with pytest.raises(HubError) as forbidden:
                    await client.push_bundle(borrowed, tmp_path, wait_s=5)
                assert forbidden.value.code is ErrorCode.AUTH_FORBIDDEN
            assert rig.boards["a1"].sync.store.versions() == {"xa-23456": 10}

    run(scenario())
