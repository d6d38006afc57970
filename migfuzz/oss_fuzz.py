"""``python3 -m migfuzz.oss_fuzz OUT``: each fuzz target's libFuzzer options for ClusterFuzzLite
and OSS-Fuzz, written into their build output directory (``.clusterfuzzlite/build.sh`` runs it
with ``$OUT``).

For every target of :data:`migfuzz.fuzz.TARGETS` it writes ``OUT/TARGET.options``::

    [libfuzzer]
    max_len = 512
    dict = TARGET.dict

and ``OUT/TARGET.dict``, a copy of the dictionary, the layout ClusterFuzz reads (an option's
``dict`` names a file beside the fuzzer). The values are :func:`migfuzz.fuzz.libfuzzer_options`,
the ones ``migfuzz fuzz`` passes on the command line, so the targets fuzz there as they do
here: without them libFuzzer's default ``-max_len`` (4096 at most, grown slowly from small
inputs) starves a schedule of one byte per decision, and the schedule dictionary is lost. A
target without a dictionary (``fuzz_preempt``) gets ``max_len`` alone. Bad usage: one line,
exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._files import write_atomic
from .fuzz import TARGETS, libfuzzer_options


def options_text(target: str) -> tuple[str, bytes | None]:
    """``target``'s ``.options`` file, and its dictionary's bytes (None: it has none)."""
    lines = ["[libfuzzer]"]
    dictionary = None
    for name, value in libfuzzer_options(target).items():
        if name == "dict":
            dictionary = Path(str(value)).read_bytes()
            value = f"{target}.dict"
        lines.append(f"{name} = {value}")
    return "\n".join(lines) + "\n", dictionary


def write_options(out: Path) -> list[Path]:
    """Write every target's ``.options`` (and ``.dict``) into ``out``; the paths written."""
    written = []
    for target in TARGETS:
        text, dictionary = options_text(target)
        if dictionary is not None:
            write_atomic(out / f"{target}.dict", dictionary)
            written.append(out / f"{target}.dict")
        write_atomic(out / f"{target}.options", text)
        written.append(out / f"{target}.options")
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        what = "usage: python3 -m migfuzz.oss_fuzz OUT" if len(argv) != 1 else (
            f"{argv[0]}: not a directory")
        print(f"migfuzz.oss_fuzz: error: {what}", file=sys.stderr)
        return 2
    try:
        written = write_options(Path(argv[0]))
    except OSError as exc:
        print(f"migfuzz.oss_fuzz: error: {argv[0]}: cannot write: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
