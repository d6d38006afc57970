"""Schedules as text: short, copy-pasteable strings that replay an execution exactly.

A schedule is ``Outcome.schedule``, one tid per decision. This module turns it into a string
that survives a terminal, an e-mail, a bug tracker and a JSON finding file, and back, and
rejects a mangled paste with a :class:`ScheduleFormatError` saying what is wrong, rather than
replaying some other schedule.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Sequence

# The text format is this:
#
#   mfs1:<base32 of the bytes below, lowercase, no padding>
#
# wrapped at 76 columns (the prefix counts). Whitespace anywhere is ignored and base32 is
# read in either case, so re-wrapping, indenting or quoting in a mail client does not matter.
# The prefix names the format ("migfuzz schedule") and its text version; the bytes are
#
#   [layout] [count] [width] [tid]* [crc32]
#
#   layout  one byte, LAYOUT_V1 (0xa1): how the rest is laid out. A new layout gets a new
#           byte, and decode_schedule keeps reading every layout it has ever written.
#   count   varint (LEB128: 7 bits a byte, low first, high bit = more): number of decisions.
#   width   varint, >= 1: bits per tid, the bit length of the largest tid (1 for none).
#           Varints are minimal and the width is exactly this, so that every schedule has one
#           spelling and the decoder can insist on it: any other body is damage.
#   tid*    count tids of ``width`` bits each, packed little-endian (the first tid in the low
#           bits of the first byte), the last byte's spare high bits zero. Tids are small (a
#           scenario has 2 to 4 tasks), so 1 or 2 bits a decision: a few hundred decisions
#           fit in a few lines, 4 to 8 times shorter than a varint or hex byte per decision.
#   crc32   4 bytes, big-endian, zlib.crc32 of everything before it. It catches every
#           mangled character (a base32 character spans at most 2 bytes, and CRC-32 detects
#           every burst of up to 32 bits) and most truncations, which would otherwise replay
#           as a different schedule.
#
# Base32 (RFC 4648, a-z 2-7) rather than hex: 5 bits a character instead of 4, and its digits
# leave out 0, 1 and 8, which a font confuses with o, l and b.

PREFIX = "mfs1:"
LAYOUT_V1 = 0xA1
LINE_WIDTH = 76
MAX_WIDTH = 64  # bits per tid; a tid is a task index, and nothing near 2**64 tasks exists

_CRC_BYTES = 4
_VARINT_MAX_BYTES = 10  # enough for any count of a schedule that fits in memory
_BASE32 = re.compile(r"[a-zA-Z2-7]*")  # ASCII only: str.lower() of others may grow
_ANY_PREFIX = re.compile(r"mfs([0-9]+):")


class ScheduleFormatError(ValueError):
    """The text is not a schedule this version can read; the message says why."""


def encode_schedule(schedule: Sequence[int]) -> str:
    """The text form of ``schedule`` (see the format above).

    Raises:
        ValueError: a tid is not an int in ``[0, 2**MAX_WIDTH)``.
    """
    for i, tid in enumerate(schedule):
        if type(tid) is not int or not 0 <= tid < 1 << MAX_WIDTH:
            raise ValueError(
                f"decision {i}: tid {tid!r} is not an int in [0, 2**{MAX_WIDTH})"
            )
    width = max(1, max(schedule, default=0).bit_length())
    raw = bytearray([LAYOUT_V1])
    raw += _varint(len(schedule))
    raw += _varint(width)
    raw += _pack(schedule, width)
    raw += zlib.crc32(raw).to_bytes(_CRC_BYTES, "big")
    text = PREFIX + base64.b32encode(bytes(raw)).decode("ascii").rstrip("=").lower()
    return "\n".join(text[i:i + LINE_WIDTH] for i in range(0, len(text), LINE_WIDTH))


def decode_schedule(text: str) -> list[int]:
    """The schedule that :func:`encode_schedule` turned into ``text``.

    Raises:
        ScheduleFormatError: not a schedule, a version this code does not read, bad
            characters, a checksum mismatch (mangled or cut in copying), or a malformed body.
    """
    payload = _checked_payload("".join(text.split()))
    count, pos = _read_varint(payload, 1, "decision count")
    width, pos = _read_varint(payload, pos, "tid width")
    if not 1 <= width <= MAX_WIDTH:
        raise ScheduleFormatError(f"bad tid width {width}: must be 1..{MAX_WIDTH}")
    packed = payload[pos:]
    need = (count * width + 7) // 8
    if len(packed) < need:
        raise ScheduleFormatError(
            f"truncated: {count} decisions of {width} bits need {need} bytes, "
            f"found {len(packed)}"
        )
    if len(packed) > need:
        raise ScheduleFormatError(
            f"trailing garbage: {len(packed) - need} bytes after {count} decisions"
        )
    schedule = _unpack(packed, count, width)
    minimal = max(1, max(schedule, default=0).bit_length())
    if width != minimal:
        raise ScheduleFormatError(
            f"bad tid width {width}: the largest tid needs {minimal} bits"
        )
    return schedule


def _checked_payload(compact: str) -> bytes:
    """The payload of a schedule text without whitespace (layout byte, varints, packed tids),
    checked: prefix and version, base32 alphabet, length, layout and CRC."""
    if not compact.startswith(PREFIX):
        m = _ANY_PREFIX.match(compact)
        if m:
            raise ScheduleFormatError(
                f"schedule format version {m.group(1)} ({m.group(0)!r}) is not supported; "
                f"this migfuzz reads {PREFIX!r}: use the migfuzz that wrote it"
            )
        raise ScheduleFormatError(
            f"not a migfuzz schedule: it must start with {PREFIX!r}, got {_excerpt(compact)}"
        )
    body = compact[len(PREFIX):]
    m = _BASE32.match(body)
    assert m is not None  # the pattern matches the empty string
    if m.end() != len(body):
        pos = m.end()
        raise ScheduleFormatError(
            f"bad character {compact[len(PREFIX) + pos]!r} at position {len(PREFIX) + pos} "
            "(whitespace ignored): a schedule holds only base32 letters a-z and digits 2-7"
        )
    raw = _b32decode(body.lower())
    if len(raw) < 1 + 2 + _CRC_BYTES:
        raise ScheduleFormatError(
            f"schedule too short ({len(raw)} bytes): it was truncated in copying"
        )
    if raw[0] != LAYOUT_V1:
        raise ScheduleFormatError(
            f"unknown schedule layout 0x{raw[0]:02x} (this migfuzz reads 0x{LAYOUT_V1:02x}): "
            "the text is corrupt or from a newer migfuzz"
        )
    payload, crc = raw[:-_CRC_BYTES], int.from_bytes(raw[-_CRC_BYTES:], "big")
    if zlib.crc32(payload) != crc:
        raise ScheduleFormatError(
            "checksum mismatch: the schedule was altered or cut off in copying; "
            "paste it again from the report"
        )
    return payload


def _b32decode(body: str) -> bytes:
    """Unpadded lowercase base32 to bytes, rejecting lengths and spare bits no encoder makes."""
    if len(body) % 8 in (1, 3, 6):
        raise ScheduleFormatError(
            f"truncated: {len(body)} base32 characters is not a whole number of bytes"
        )
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except binascii.Error as exc:  # unreachable after the checks above; kept as a guard
        raise ScheduleFormatError(f"not valid base32: {exc}") from None
    # A last character with non-zero spare bits decodes to the same bytes as the canonical
    # one; insisting on the canonical text means every changed character is detected.
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != body:
        raise ScheduleFormatError(
            "not canonical base32: the last character was altered in copying"
        )
    return raw


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    value = 0
    for i in range(_VARINT_MAX_BYTES):
        if pos + i >= len(data):
            raise ScheduleFormatError(f"truncated: the {what} ends early")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:  # canonical form: one spelling per value
                raise ScheduleFormatError(f"bad {what}: a varint with a redundant zero byte")
            return value, pos + i + 1
    raise ScheduleFormatError(f"bad {what}: longer than {_VARINT_MAX_BYTES} bytes")


def _pack(schedule: Sequence[int], width: int) -> bytes:
    # A small accumulator, flushed a byte at a time: linear in the schedule's length (one big
    # int shifted per tid would be quadratic for a 50,000-decision livelock).
    out = bytearray()
    acc = 0
    bits = 0
    for tid in schedule:
        acc |= tid << bits
        bits += width
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc)
    return bytes(out)


def _unpack(packed: bytes, count: int, width: int) -> list[int]:
    out: list[int] = []
    mask = (1 << width) - 1
    acc = 0
    bits = 0
    it = iter(packed)
    for _ in range(count):
        while bits < width:
            acc |= next(it) << bits
            bits += 8
        out.append(acc & mask)
        acc >>= width
        bits -= width
    if acc:
        raise ScheduleFormatError("bad padding: the spare bits after the last tid are not zero")
    return out


def _excerpt(text: str) -> str:
    return repr(text[:12] + ("..." if len(text) > 12 else ""))
