"""argparse value types shared by every subcommand: one message style for every bad number."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N", int, float)


def _number(parse: Callable[[str], N], ok: Callable[[N], bool],
            what: str) -> Callable[[str], N]:
    def convert(text: str) -> N:
        try:
            v = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return convert


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0 and math.isfinite(v),
                         "a positive number of seconds")
non_negative_float = _number(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
