"""Worker processes that cannot outlive their parent.

A campaign's workers run at full CPU until told to stop. If the parent is killed (SIGKILL,
OOM killer, a CI runner timing out) nobody tells them, and they would run forever: each
worker asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux),
and, where that is not available, watches its parent id between runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # include/uapi/linux/prctl.h


def die_with_parent(parent: int) -> bool:
    """In a freshly started child of ``parent``: be killed when it dies.

    Returns False when only :func:`parent_gone` polling is left (not Linux, or no libc).
    Exits at once if the parent died before the request took effect (it would never fire).
    """
    armed = False
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except OSError:
            armed = False
    if parent_gone(parent):
        os._exit(1)
    return armed


def parent_gone(parent: int) -> bool:
    """Whether the process that started us has exited (we were re-parented)."""
    return os.getppid() != parent
