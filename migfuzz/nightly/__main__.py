"""``python -m migfuzz.nightly RUN_DIR/run.json``: one run of a night, in its own process
(``migfuzz nightly`` starts it). A bad run spec is a one-line error and exit 2."""

from __future__ import annotations

import sys

from .._errors import UsageError
from ._children import child_main

if __name__ == "__main__":
    try:
        sys.exit(child_main(sys.argv[1:]))
    except UsageError as exc:
        print(f"migfuzz nightly: error: {exc}", file=sys.stderr)
        sys.exit(2)
