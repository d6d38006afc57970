"""The readable interleaving: one column per task, one row per event, steps on the left.

    step | user                    | migrator
    -----+-------------------------+--------------------------
       3 | >> write 1 0 100        |
       4 |                         | >> migrate 1 0 1 0
       4 |                         | down_read mm1.mmap_sem
       9 | lock mm1.ptl[0]         |
      ...
    FINDING at step 57 in migrator: migration-entry-leak in unlock_page

A change of column *is* a context switch, so ``switch`` events are not printed. Events come
from a traced replay (:func:`migfuzz.replay.run_traced`): operations (``op``), lock acquire /
release, get_page / put_page with the resulting count, mapcount changes, pte transitions and
unlocked pte peeks, anon_rss updates, page allocation and freeing, user stores and DMA
writes, and the finding itself.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from typing import Any

from stress import Event


def describe(event: str, f: dict[str, Any]) -> str:
    """One event as a short phrase in kernel vocabulary."""
    if event == "op":
        return f">> {f.get('op')}"
    if event in ("lock", "unlock"):
        lock = f.get("lock")
        if "read" in f:
            verb = ("down_" if event == "lock" else "up_") + ("read" if f["read"] else "write")
        elif event == "lock" and f.get("trylock"):
            verb = "trylock"
        else:
            verb = event
        return f"{verb} {lock}"
    if event in ("get_page", "put_page"):
        return f"{event} pfn{f.get('pfn')} -> {f.get('count')}"
    if event == "mapcount":
        return f"mapcount pfn{f.get('pfn')} = {f.get('mapcount')}"
    if event == "pte":
        return f"pte {f.get('mm')}@{f.get('addr')} {f.get('old')} -> {f.get('new')}"
    if event == "peek":  # an unlocked pte read (no ptl): what the racy fast paths saw
        return f"peek {f.get('mm')}@{f.get('addr')} = {f.get('pte')} (no ptl)"
    if event == "rss":
        return f"anon_rss {f.get('mm')} = {f.get('anon_rss')}"
    if event == "alloc":
        return f"alloc pfn{f.get('pfn')}"
    if event == "free":
        return f"free pfn{f.get('pfn')}"
    if event == "store":
        return f"store {f.get('mm')}@{f.get('addr')} pfn{f.get('pfn')} = {f.get('value')}"
    if event == "dma":
        return f"dma pid{f.get('pid')}@{f.get('addr')} pfn{f.get('pfn')} = {f.get('value')}"
    if event == "finding":
        return f"!! {f.get('kind')}"
    rest = " ".join(f"{k}={v}" for k, v in sorted(f.items()))
    return f"{event} {rest}".rstrip()


def render(
    events: Sequence[Event],
    task_names: Sequence[str],
    *,
    width: int | None = None,
    tail: int | None = None,
) -> str:
    """The timeline as text. ``tail`` keeps only the last N event rows (None: all)."""
    rows = [(s, t, describe(e, f)) for s, t, e, f in events if e != "switch"]
    ntasks = max(1, len(task_names))
    total = width or shutil.get_terminal_size((160, 24)).columns
    col = max(22, min(44, (total - 8) // ntasks - 3))
    omitted = 0
    if tail is not None and 0 < tail < len(rows):
        omitted = len(rows) - tail
        rows = rows[-tail:]

    def cells(values: Sequence[str]) -> str:
        return " | ".join(v[:col].ljust(col) for v in values).rstrip()

    out = [f" step | {cells(task_names)}", "------+-" + "-+-".join("-" * col for _ in task_names)]
    if omitted:
        out.append(f"  ... | ({omitted} earlier events not shown)")
    last_step: int | None = None
    for step, tid, text in rows:
        values = [""] * ntasks
        if 0 <= tid < ntasks:
            values[tid] = text
        else:  # an event outside any task (the execution itself)
            values = [text] + [""] * (ntasks - 1)
        label = f"{step:5d}" if step != last_step else "     "
        last_step = step
        out.append(f"{label} | {cells(values)}")
    return "\n".join(out)


_SWAP_PTE = re.compile(r"S\((\d+):(\d+)\)")  # a swap entry as a pte prints it: S(type:offset)
_VMA = re.compile(r"<vma (\S+) \[(\d+),(\d+)\)")  # VmArea's repr


def _touches(details: dict[str, Any]) -> tuple[str, Callable[[dict[str, Any]], bool]] | None:
    """The object a finding's details name, and a test of whether an event's fields touch it.

    The quiescence oracles (stress/oracles.py) name a page (``pfn``), an mm (``mm``), a swap
    slot (``slot``: no event names a slot, but every pte that holds its swap entry shows it as
    ``S(type:slot)``) or a vma (``vma``, its repr: the ptes of its mm inside its range).
    """
    pfn, mm, slot, vma = (details.get(k) for k in ("pfn", "mm", "slot", "vma"))
    if pfn is not None:
        return f"pfn {pfn}", lambda f: f.get("pfn") == pfn
    if mm is not None:
        return str(mm), lambda f: f.get("mm") == mm
    if isinstance(slot, int):
        def holds_slot(f: dict[str, Any]) -> bool:
            return any(int(m.group(2)) == slot for k in ("old", "new", "pte")
                       for m in _SWAP_PTE.finditer(str(f.get(k, ""))))

        return f"swap slot {slot}", holds_slot
    m = _VMA.match(str(vma)) if vma is not None else None
    if m is not None:
        name, start, end = m.group(1), int(m.group(2)), int(m.group(3))
        return (f"vma {name} [{start},{end})",
                lambda f: f.get("mm") == name and start <= f.get("addr", -1) < end)
    return None


def last_touching(events: Sequence[Event], details: dict[str, Any],
                  n: int = 3) -> tuple[str, list[Event]]:
    """The object a finding is about and the last ``n`` events that touched it: a finding
    raised at quiescence fires after every task has finished, far below its cause in the
    timeline, and these rows are where to start reading. ("", []) if the details name no
    object the timeline records; (object, []) if none of its events touched it."""
    found = _touches(details)
    if found is None:
        return "", []
    what, touched = found
    hits = [e for e in events if e[2] not in ("switch", "finding") and touched(e[3])]
    return what, hits[-n:]
