"""Hypothesis-driven fuzzing of the codec, the session, the bundle, alert and command parsers and
the CAP translation (targets in tests/system/fuzz_targets.py): arbitrary bytes, and inputs that
start well-formed and are then mutated (a field replaced, removed or added, a nasty value put
in, raw JSON that json.dumps never writes, bytes flipped or cut).

Short in the default run. SIGNAGE_FUZZ_EXAMPLES sets the examples per test for a long run:

    SIGNAGE_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q -p no:cacheprovider \\
        tests/system/test_fuzz.py --hypothesis-show-statistics

Coverage-guided runs of the same targets: tests/system/fuzz_atheris.py.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from signage.protocol import Chunk, Role, State, encode_chunk
from tests.system.fuzz_targets import (
    ALERT,
    BUNDLE,
    CAP_CANCEL,
    CAP_FILE,
    COMMAND,
    OPS,
    SENDS,
    SHA,
    STATES,
    TARGETS,
    document,
    frame_of,
    fuzz_alert,
    fuzz_bundle,
    fuzz_cap,
    fuzz_codec,
    fuzz_session,
    sample_messages,
    seeds,
    session_input,
    watchdog,
)

EXAMPLES = int(os.environ.get("SIGNAGE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def run(target: Callable[[bytes], str], data: bytes) -> None:
    """Run one input under the hang watchdog and count its outcome in the statistics."""
    with watchdog():
        outcome = target(data)
    event(outcome)


# -- building blocks: JSON values, nasty values, raw JSON spellings -----------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
NASTY: list[Any] = [
    "",
    " ",
    "../../etc/passwd",
    "..",
    "/etc/passwd",
    "a/../../b.jpg",
    "..\\..\\windows",
    "%2e%2e%2f",
    "dong-lua.jpg",
    "\x00",
    "\ud800",  # an unpaired surrogate: json.dumps writes it as the escape \ud800
    "\udc80x",
    "\ufeff",
    "\u202e",
    "ĕ ƀ Ƀ",
    "x" * 5000,
    0,
    -1,
    1,
    2**53 + 1,
    2**63,
    2**64,
    -(2**63),
    0.5,
    1e308,
    True,
    False,
    None,
    [],
    {},
    [[[[]]]],
    {"": None},
]
# Spellings json.dumps never writes; each is put into the text in place of a placeholder.
RAW = [
    "1e400",
    "-1e400",
    "1E-400",
    "NaN",
    "-Infinity",
    "1" + "0" * 5000,
    "[" * 3000 + "]" * 3000,
    '{"a":' * 950 + "1" + "}" * 950,
    '"\\ud83d\\ude00"',
    '"\\udc80"',
    '"\\u0000"',
    '"a\\/b"',
]
_PLACEHOLDER = "\x01raw{}\x01"


def _slots(doc: Any) -> Iterator[tuple[Any, Any]]:
    """Yield (container, key or index) for every value inside ``doc``."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield doc, key
            yield from _slots(value)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield doc, index
            yield from _slots(value)


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> bytes:
    """Return ``base`` as JSON bytes after a few random changes."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 4))):
        slots = list(_slots(doc))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["value", "nasty", "nasty", "raw", "delete", "add", "twice"]))
        if action == "value":
            container[key] = draw(JSON)
        elif action == "nasty":
            container[key] = copy.deepcopy(draw(st.sampled_from(NASTY)))
        elif action == "raw":
            container[key] = _PLACEHOLDER.format(draw(st.integers(0, len(RAW) - 1)))
        elif action == "delete":
            del container[key]
        elif action == "add" and isinstance(container, dict):
            container[draw(st.sampled_from(["x", "", "../a", "\ud800", "assets", "v"]))] = draw(
                JSON
            )
        elif action == "twice" and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
    text = json.dumps(
        doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
    )
    for index, raw in enumerate(RAW):
        text = text.replace(json.dumps(_PLACEHOLDER.format(index)), raw)
    # A lone surrogate cannot be UTF-8: write it as the JSON escape it stands for.
    data = text.encode("utf-8", "backslashreplace")
    return draw(_damaged(data))


@st.composite
def _damaged(draw: st.DrawFn, data: bytes) -> bytes:
    how = draw(st.sampled_from(["none", "none", "none", "cut", "flip", "insert", "bom", "twice"]))
    if how == "none" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return data[:at]
    if how == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if how == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    return data + data


# -- the codec ---------------------------------------------------------------------------------

MESSAGES = [
    {"v": 1, "type": kind, "id": f"m{n}", **fields}
    for n, (kind, fields) in enumerate(sample_messages())
]


@st.composite
def chunks(draw: st.DrawFn) -> bytes:
    """Return a binary frame that is a chunk, or nearly one."""
    total = draw(st.sampled_from([0, 1, 2, 300, 2**26, 2**26 + 1, 2**64 - 1]) | st.integers(0, 600))
    offset = draw(st.sampled_from([0, 1, total, total - 1, 2**64 - 1]) | st.integers(0, 600))
    body = draw(st.binary(max_size=40))
    header = b"SGB1" + bytes.fromhex(SHA)
    return header + (offset % 2**64).to_bytes(8, "big") + (total % 2**64).to_bytes(8, "big") + body


@FUZZ
@given(st.binary(max_size=600))
@example(
    b'{"v":1,"type":"hello","id":"b1","board":"a","software":"s","held":{"\\udc80":1},"assets":[]}'
)
@example(b'{"v":1,"type":"heartbeat","id":"b2","status":{"load":1e400}}')
@example(b'{"v":1,"type":"welcome","id":"h1","session":"\\ud800","heartbeat_s":30,"time":"t"}')
def test_any_bytes_through_the_codec(data: bytes) -> None:
    run(fuzz_codec, data)


@FUZZ
@given(st.sampled_from(MESSAGES).flatmap(mutated) | chunks())
def test_mutated_messages_through_the_codec(data: bytes) -> None:
    run(fuzz_codec, data)


# -- the session -------------------------------------------------------------------------------


@st.composite
def session_ops(draw: st.DrawFn) -> bytes:
    """Return a fuzz_session input: well-formed, mutated and random frames, waits and sends."""
    ops: list[tuple[str, bytes]] = []
    for _ in range(draw(st.integers(1, 30))):
        what = draw(st.sampled_from(["good", "good", "mutated", "chunk", "random", "op"]))
        if what == "good":
            message = draw(st.sampled_from(MESSAGES))
            ident = draw(st.sampled_from(["b1", "b2", "h1", "h2", "h3", "x9", message["id"]]))
            fields = {k: v for k, v in message.items() if k not in ("v", "type", "id")}
            if message["type"] == "ack":
                fields["ref"] = draw(st.sampled_from(["b1", "b2", "h1", "h2", "h3", "x9"]))
            ops.append(("text", frame_of(message["type"], ident, fields).encode()))
        elif what == "mutated":
            ops.append(
                (
                    draw(st.sampled_from(["text", "raw"])),
                    draw(mutated(draw(st.sampled_from(MESSAGES)))),
                )
            )
        elif what == "chunk":
            ops.append(("binary", draw(chunks())))
        elif what == "random":
            ops.append(
                (draw(st.sampled_from(["text", "raw", "binary"])), draw(st.binary(max_size=80)))
            )
        else:
            op = draw(st.sampled_from(["wait", "send", "pair"]))
            if op == "wait":
                payload = draw(st.integers(0, 2000)).to_bytes(2, "big")
            elif op == "send":
                payload = bytes([draw(st.integers(0, len(SENDS) - 1))])
            else:
                payload = b""
            ops.append((op, payload))
    role = draw(st.sampled_from([Role.BOARD, Role.HUB]))
    return session_input(role, draw(st.sampled_from(STATES)), draw(st.booleans()), ops)


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_through_a_session(data: bytes) -> None:
    run(fuzz_session, data)


@FUZZ
@given(session_ops())
@example(
    session_input(
        Role.BOARD,
        State.SYNC,
        False,
        [
            (
                "text",
                b'{"v":1,"type":"hello","id":"h5","board":"a","software":"s","held":{"\\udc80":1},"assets":[]}',
            )
        ],
    )
)
def test_traffic_through_a_paired_session(data: bytes) -> None:
    run(fuzz_session, data)


def test_the_session_input_format_round_trips() -> None:
    ops = [(op, bytes([n]) * n) for n, op in enumerate(OPS)]
    data = session_input(Role.BOARD, State.READY, True, ops)
    assert data[0] == 1 | 3 << 1 | 1 << 3
    assert fuzz_session(data).startswith("board:")


# -- bundles, alerts, commands, CAP ------------------------------------------------------------

ITEMS: list[dict[str, Any]] = [
    *BUNDLE["items"],
    {"id": "anh", "template": "fullscreen-image", "fields": {"image": "dong-lua.jpg"}},
    {
        "id": "cb",
        "template": "emergency",
        "priority": "emergency",
        "duration_s": 30,
        "fields": {
            "headline": "Bão số 9",
            "description": "Gió giật cấp 12.",
            "severity": "Extreme",
            "expires": "2026-11-22T06:00:00+07:00",
        },
    },
    {"id": "gio", "template": "clock", "fields": {}},
    {
        "id": "chu",
        "template": "text-only",
        "windows": [{"from": "00:00", "to": "24:00"}],
        "fields": {"body": "Khẩu hiệu"},
    },
]


@st.composite
def bundles(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(st.sampled_from(ITEMS), max_size=4, unique_by=lambda i: i["id"]))
    return draw(mutated({**BUNDLE, "items": items}))


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_as_a_bundle(data: bytes) -> None:
    run(fuzz_bundle, data)


@FUZZ
@given(bundles())
@example(document({**BUNDLE, "assets": {"a.png": {"sha256": SHA, "size": 1, "media_type": {}}}}))
@example(json.dumps({**BUNDLE, "\udc80": 1}).encode())  # an escaped half surrogate
def test_mutated_bundles(data: bytes) -> None:
    run(fuzz_bundle, data)


CANCEL = {
    **{k: v for k, v in ALERT.items() if k not in ("headline", "description", "instruction")},
    "msgType": "Cancel",
    "identifier": "62-bao-9-huy",
    "references": ["62-bao-9-2026"],
}


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_as_an_alert_or_command(data: bytes) -> None:
    run(fuzz_alert, data)


@FUZZ
@given(
    st.sampled_from([ALERT, CANCEL, COMMAND, {**COMMAND, "name": "blank", "args": {}}]).flatmap(
        mutated
    )
)
def test_mutated_alerts_and_commands(data: bytes) -> None:
    run(fuzz_alert, data)


CAP_TEXTS = [
    "",
    "Actual",
    "Exercise",
    "Update",
    "Cancel",
    "Ack",
    "Public",
    "Restricted",
    "2026-12-02T17:00:00Z",
    "2026-12-02T17:00:00.123456+07:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+14:00",
    "2026-13-45T99:99:99+07:00",
    "62/23456",
    "../..",
    "62//1",
    "a,b,c d,e,f",
    ",,",
    "x" * 30000,
    "vi",
    "Bão &amp; lũ",
    "<![CDATA[ <b> ]]>",
    "&#0;",
    "&#xD800;",
    "]]>",
]


_ELEMENT = re.compile(r"(\s*<[^/>][^>]*>)[^<]*(</[^>]+>\s*)", re.DOTALL)


@st.composite
def cap_messages(draw: st.DrawFn) -> bytes:
    """Return a CAP message with element texts replaced, elements dropped or repeated."""
    text = draw(st.sampled_from([CAP_FILE.read_text(encoding="utf-8"), CAP_CANCEL.decode()]))
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        line = lines[at]
        action = draw(st.sampled_from(["text", "drop", "twice", "dtd", "encoding"]))
        element = _ELEMENT.fullmatch(line)
        if action == "text" and element is not None:
            value = draw(st.sampled_from(CAP_TEXTS) | st.text(max_size=30))
            lines[at] = f"{element.group(1)}{value}{element.group(2)}"
        elif action == "drop":
            del lines[at]
        elif action == "twice":
            lines.insert(at, line)
        elif action == "dtd":
            lines.insert(1, '<!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>\n')
        elif action == "encoding":
            lines[0] = draw(
                st.sampled_from(
                    [
                        '<?xml version="1.0" encoding="UTF-16"?>\n',
                        '<?xml version="1.0" encoding="x-nope"?>\n',
                        '<?xml version="1.0" encoding="UTF-7"?>\n',
                        '<?xml version="1.0" encoding="Shift_JIS"?>\n',
                        "<?xml?>\n",
                        "\ufeff",
                    ]
                )
            )
        if not lines:
            break
    data = "".join(lines).encode("utf-8", "surrogatepass")
    return draw(_damaged(data))


@FUZZ
@given(st.binary(max_size=600))
@example(b'<?xml version="1.0" encoding="UTF-7"?>\n<alert/>')  # found by atheris
def test_any_bytes_as_a_cap_message(data: bytes) -> None:
    run(fuzz_cap, data)


@FUZZ
@given(cap_messages())
def test_mutated_cap_messages(data: bytes) -> None:
    run(fuzz_cap, data)


# -- the seeds reach the deepest checks ---------------------------------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_seed_is_accepted_where_it_should_be(target: str) -> None:
    outcomes = [TARGETS[target](data) for data in seeds(target)]
    assert outcomes, target
    if target == "session":
        assert {o.split(":")[1] for o in outcomes} >= {"ready", "closed"}
    elif target == "alert":
        assert set(outcomes) == {"alert", "command:power", "command:blank"}
    else:
        accepted = [o for o in outcomes if o == "accepted"]
        assert len(accepted) >= 2, outcomes


def test_a_chunk_seed_is_a_chunk() -> None:
    frame = encode_chunk(Chunk(SHA, 0, 2, b"ok"))
    assert fuzz_codec(frame) == "chunk"
