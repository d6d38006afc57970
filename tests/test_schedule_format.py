"""The schedule text format: round trips, tolerance of copy-paste damage, and clear errors.

Like shuttle's serialization property test (proptest ``check_roundtrip``), plus the other
direction: any damage a paste can do is a ``ScheduleFormatError``, never another exception and
never a different schedule.
"""

from __future__ import annotations

import base64
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stress.schedule import (
    LAYOUT_V1,
    LINE_WIDTH,
    PREFIX,
    ScheduleFormatError,
    decode_schedule,
    encode_schedule,
)

small_tids = st.lists(st.integers(0, 7), max_size=400)
any_tids = st.lists(st.integers(0, 2**64 - 1), max_size=40)
schedules = st.one_of(small_tids, any_tids)


def _text_of(raw: bytes) -> str:
    """Render raw layout bytes as the codec would, so tests can build malformed bodies."""
    return PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "big")


# -- round trips ----------------------------------------------------------------------------------


@given(schedules)
def test_round_trip(schedule: list[int]) -> None:
    text = encode_schedule(schedule)
    assert decode_schedule(text) == schedule
    assert text.startswith(PREFIX)
    assert all(0 < len(line) <= LINE_WIDTH for line in text.split("\n"))


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        ([], "mfs1:ueaacuh433jq"),
        ([0, 1, 1, 0], "mfs1:uecacbrd4ko5i"),
        ([0, 1, 2, 2, 2, 1, 0, 2, 1, 0, 1, 0, 2, 1], "mfs1:uehafjegcedkc4k26e"),
        ([2**64 - 1], "mfs1:ueaub7777777777774xefpbi"),
    ],
)
def test_the_format_is_stable(schedule: list[int], text: str) -> None:
    """Pinned encodings: a finding file written today must replay with tomorrow's code."""
    assert encode_schedule(schedule) == text
    assert decode_schedule(text) == schedule


def test_two_task_schedules_are_dense() -> None:
    """One bit per decision with two tasks: 300 decisions in two short lines."""
    text = encode_schedule([0, 1] * 150)
    assert len(text) < 2 * LINE_WIDTH and text.count("\n") == 1


def test_a_long_schedule_round_trips_quickly() -> None:
    schedule = [i % 3 for i in range(50_000)]  # a run cut off at the default step bound
    assert decode_schedule(encode_schedule(schedule)) == schedule


@given(schedules, st.data())
def test_whitespace_and_case_are_ignored(schedule: list[int], data: st.DataObject) -> None:
    text = encode_schedule(schedule)
    chars = list(text)
    for _ in range(data.draw(st.integers(0, 10), label="insertions")):
        pos = data.draw(st.integers(0, len(chars)), label="position")
        chars.insert(pos, data.draw(st.sampled_from([" ", "\n", "\t", "\r\n", "  "])))
    spaced = "".join(chars)
    assert decode_schedule(spaced) == schedule
    assert decode_schedule("  " + PREFIX + text[len(PREFIX):].upper() + "\n") == schedule


@pytest.mark.parametrize("tid", [-1, 2**64, True, 1.0, "1"])
def test_encode_rejects_what_is_not_a_tid(tid: object) -> None:
    with pytest.raises(ValueError, match=r"decision 1: tid .* is not an int in \[0, 2\*\*64\)"):
        encode_schedule([0, tid])  # type: ignore[list-item]


# -- damage ---------------------------------------------------------------------------------------


@given(schedules, st.data())
def test_a_changed_character_is_detected(schedule: list[int], data: st.DataObject) -> None:
    text = encode_schedule(schedule)
    positions = [i for i, c in enumerate(text) if not c.isspace()]
    pos = data.draw(st.sampled_from(positions), label="position")
    new = data.draw(
        st.characters().filter(lambda c: not c.isspace() and c.lower() != text[pos].lower()),
        label="replacement",
    )
    with pytest.raises(ScheduleFormatError):
        decode_schedule(text[:pos] + new + text[pos + 1:])


@given(schedules, st.data())
def test_a_truncated_schedule_is_detected(schedule: list[int], data: st.DataObject) -> None:
    text = encode_schedule(schedule)
    cut = data.draw(st.integers(0, len(text) - 1), label="cut")  # the text ends in base32
    with pytest.raises(ScheduleFormatError):
        decode_schedule(text[:cut])


def _decodes_canonically(text: str) -> None:
    """``text`` is a format error, or the one spelling (up to whitespace and case) of what it
    decodes to: no two texts mean the same schedule, so no damage goes unnoticed."""
    try:
        schedule = decode_schedule(text)
    except ScheduleFormatError:
        return
    assert all(type(t) is int and t >= 0 for t in schedule)
    squeezed = "".join(text.split())
    assert "".join(encode_schedule(schedule).split()) == PREFIX + squeezed[len(PREFIX):].lower()


@given(st.text())
def test_arbitrary_text_is_a_schedule_or_a_format_error(text: str) -> None:
    _decodes_canonically(text)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567ABZ \n="))
def test_arbitrary_base32_is_a_schedule_or_a_format_error(body: str) -> None:
    _decodes_canonically(PREFIX + body)


@given(st.binary())
def test_arbitrary_bytes_with_a_valid_checksum_are_a_schedule_or_a_format_error(
    raw: bytes,
) -> None:
    """Past the checksum, the layout parser itself must not crash on any body."""
    _decodes_canonically(_text_of(_with_crc(bytes([LAYOUT_V1]) + raw)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"not a migfuzz schedule: it must start with 'mfs1:', got ''"),
        ("ueaacuh433jq", r"not a migfuzz schedule: it must start with 'mfs1:'"),
        ("MFS1:ueaacuh433jq", r"not a migfuzz schedule"),
        ("mfs2:ueaacuh433jq", r"schedule format version 2 \('mfs2:'\) is not supported"),
        ("mfs1:ueaacuh433j0", r"bad character '0' at position 16 \(whitespace ignored\)"),
        ("mfs1:ueaacuh433jq=", r"bad character '='"),
        ("mfs1:ueaacuh433j", r"checksum mismatch|truncated|not canonical"),
        ("mfs1:ueaacuh433jr", r"not canonical base32"),
        ("mfs1:ueaacuh433jqaa", r"truncated: 14 base32 characters"),
        ("mfs1:", r"schedule too short \(0 bytes\): it was truncated in copying"),
        ("mfs1:veaacuh433jq", r"unknown schedule layout 0xa9 \(this migfuzz reads 0xa1\)"),
        ("mfs1:uecacbrd4ko5j", r"not canonical|checksum mismatch"),
        ("mfs1:uecacbrd4ko4i", r"checksum mismatch: the schedule was altered or cut off"),
    ],
)
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScheduleFormatError, match=message):
        decode_schedule(text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # 3 decisions of 2 bits need 1 byte; give 2, or 0.
        (bytes([LAYOUT_V1, 3, 2, 0b100100, 0]), r"trailing garbage: 1 bytes after 3 decisions"),
        (bytes([LAYOUT_V1, 3, 2]), r"truncated: 3 decisions of 2 bits need 1 bytes, found 0"),
        (bytes([LAYOUT_V1, 3, 2, 0b11100100]), r"bad padding"),
        (bytes([LAYOUT_V1, 3, 0, 0]), r"bad tid width 0: must be 1..64"),
        (bytes([LAYOUT_V1, 1, 65]) + bytes(9), r"bad tid width 65"),
        (bytes([LAYOUT_V1, 1, 0x80]), r"truncated: the tid width ends early"),
        (bytes([LAYOUT_V1]) + b"\xff" * 11, r"bad decision count: longer than 10 bytes"),
        (bytes([LAYOUT_V1, 0x83, 0, 2, 0b100100]), r"bad decision count: .* redundant zero"),
        (bytes([LAYOUT_V1, 3, 3, 0b1000001, 0]), r"bad tid width 3: the largest tid needs 1 bits"),
    ],
)
def test_a_malformed_body_behind_a_valid_checksum_is_named(body: bytes, message: str) -> None:
    with pytest.raises(ScheduleFormatError, match=message):
        decode_schedule(_text_of(_with_crc(body)))


def test_a_well_formed_hand_built_body_decodes() -> None:
    """The layout as documented: 3 decisions of 2 bits, packed low bits first."""
    assert decode_schedule(_text_of(_with_crc(bytes([LAYOUT_V1, 3, 2, 0b100100])))) == [0, 1, 2]


def test_a_format_error_is_a_value_error() -> None:
    """Callers (migfuzz.strategies.decode) catch ValueError for every bad finding file."""
    assert issubclass(ScheduleFormatError, ValueError)
