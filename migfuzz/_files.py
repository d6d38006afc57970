"""Reading and writing the files migfuzz keeps: bounded reads, JSON in any encoding JSON
allows, diff-friendly JSON, atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ._errors import FindingFileError
from ._finding_schema import MAX_FILE_BYTES


def pretty_json(value: Any, indent: str = "") -> str:
    """JSON with objects indented and lists of scalars on one line (an op, a prefault store,
    a schedule read as one row each), so that a finding file reads well in a diff."""
    inner = indent + "  "
    if isinstance(value, dict) and all(not isinstance(v, (dict, list)) for v in value.values()):
        flat = json.dumps(value)
        if len(flat) <= 72:
            return flat
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {pretty_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value:
        if all(not isinstance(v, (dict, list)) for v in value):
            return json.dumps(value)
        items = [inner + pretty_json(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value)


def read_bounded(path: str) -> bytes:
    """The bytes of ``path`` (at most :data:`MAX_FILE_BYTES`); FindingFileError otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise FindingFileError(path, "no such file") from None
    except IsADirectoryError:
        raise FindingFileError(path, "is a directory, not a finding file") from None
    except OSError as exc:
        raise FindingFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise FindingFileError(path, f"larger than {MAX_FILE_BYTES >> 20} MiB: not a finding "
                                     "file")
    return data


def parse_json(data: bytes) -> Any:
    """``data`` as JSON in any encoding JSON allows (UTF-8 with or without a BOM, UTF-16,
    UTF-32), or ValueError. Nesting too deep for the parser and integers too long to convert
    are ValueErrors here too, not a RecursionError escaping as a traceback."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8 if a str) to ``path`` so that a reader sees the old file or the
    new, never half.

    The temp file is in the same directory because ``os.replace`` is atomic only within one
    file system; a campaign interrupted (Ctrl-C, OOM kill, power loss) mid-write must not leave
    a truncated finding that ``repro`` would reject, and re-hits rewrite files constantly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
