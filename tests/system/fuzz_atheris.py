"""Coverage-guided fuzzing of one target of tests/system/fuzz_targets.py with atheris
(libFuzzer for Python):

    .venv/bin/python tests/system/fuzz_atheris.py TARGET [libFuzzer options] [CORPUS_DIR ...]

TARGET is one of codec, session, bundle, alert, cap. Without a corpus directory the run uses
$SIGNAGE_FUZZ_DIR/TARGET (default /tmp/signage-fuzz/TARGET), seeded with the target's valid
inputs; new inputs that reach new code are kept there. Useful options: -max_total_time=SECONDS,
-runs=N, -jobs=N, -timeout=SECONDS (one input taking longer is a hang), -print_final_stats=1.
A crash (an exception other than an expected refusal) stops the run, prints the traceback and
writes the input as $SIGNAGE_FUZZ_DIR/TARGET-crash-<sha1> (unless -artifact_prefix says
otherwise); replay it with

    .venv/bin/python tests/system/fuzz_atheris.py TARGET /tmp/signage-fuzz/TARGET-crash-<sha1>

Needs atheris (.venv/bin/pip install atheris: a prebuilt wheel exists for CPython 3.11 on
x86-64 Linux; elsewhere it builds from source and needs clang with libFuzzer). Exit codes: 0
done, 2 usage, 3 atheris missing; libFuzzer's own otherwise (crash: 1, hang: 70 and so on).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_NAMES = ("codec", "session", "bundle", "alert", "cap")
DEFAULTS = ("-timeout=30", "-rss_limit_mb=4096", "-max_len=65536", "-print_final_stats=1")


def main(argv: list[str]) -> int:
    """Run atheris on the target named in ``argv``; return the exit code."""
    if len(argv) < 2 or argv[1] not in TARGET_NAMES:
        print(__doc__, file=sys.stderr)
        print(f"fuzz_atheris: name a target: {', '.join(TARGET_NAMES)}", file=sys.stderr)
        return 2
    name, rest = argv[1], argv[2:]
    try:
        import atheris
    except ImportError:
        print(
            "fuzz_atheris: atheris is not installed in this Python. Install it with"
            " `.venv/bin/pip install atheris` (a wheel exists for CPython 3.11 on x86-64 Linux;"
            " elsewhere it needs clang with libFuzzer). The hypothesis fuzzing in"
            " tests/system/test_fuzz.py runs without it.",
            file=sys.stderr,
        )
        return 3
    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["signage"]):  # coverage of signage, not tests
        from tests.system.fuzz_targets import TARGETS, seeds, world

    world()  # keys, templates and the scratch store before the first input
    target = TARGETS[name]
    options = [a for a in rest if a.startswith("-")]
    inputs = [a for a in rest if not a.startswith("-")]
    work = Path(os.environ.get("SIGNAGE_FUZZ_DIR", "/tmp/signage-fuzz"))
    if not inputs:
        corpus = work / name
        corpus.mkdir(parents=True, exist_ok=True)
        for number, seed in enumerate(seeds(name)):
            (corpus / f"seed-{number}").write_bytes(seed)
        inputs = [str(corpus)]
    work.mkdir(parents=True, exist_ok=True)
    given = {a.split("=")[0] for a in options}
    defaults = [*DEFAULTS, f"-artifact_prefix={work}/{name}-"]  # crashes never in the work tree
    options += [d for d in defaults if d.split("=")[0] not in given]

    def one(data: bytes) -> None:
        target(data)

    atheris.Setup([argv[0], *options, *inputs], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
