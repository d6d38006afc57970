"""A Dask worker preload for tests/test_cluster.py: watches and kills the cluster's batches.

Loaded into every worker process of the tests' LocalCluster (``preload=``), it wraps
``migfuzz.campaign._cluster.run_batch`` (the client pickles the function by name, so the
worker runs the wrapper). For a campaign writing to ``--out .../NAME``, in
``$MIGFUZZ_TEST_CLUSTER_DIR/NAME/``:

* every batch leaves ``ran-PID-FIRST-END``: which worker process ran which runs;
* ``worker_identity`` says ``$MIGFUZZ_TEST_CLUSTER_DIR/other-model`` (version and commit)
  while that file exists: a worker on other code;
* if ``die-at`` holds a run index, the first batch holding that run kills its worker process
  (``os._exit``, as a machine lost mid-batch would) after writing its pid in ``died``; the run's
  batch must then be redone elsewhere. Only one batch ever wins the ``died`` file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from migfuzz.campaign import _cluster

# (a worker may load its preload twice: wrap the real function once)
_real = getattr(_cluster.run_batch, "real", _cluster.run_batch)


def _hooked(cfg: Any, first: int, end: int) -> Any:
    d = Path(os.environ["MIGFUZZ_TEST_CLUSTER_DIR"]) / Path(cfg.out).name
    d.mkdir(parents=True, exist_ok=True)
    die_at = d / "die-at"
    if die_at.exists() and first <= int(die_at.read_text()) < end:
        try:
            fd = os.open(d / "died", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)
    out = _real(cfg, first, end)
    (d / f"ran-{os.getpid()}-{first}-{end}").touch()
    return out


_hooked.real = _real  # type: ignore[attr-defined]
_cluster.run_batch = _hooked  # type: ignore[assignment]

_real_identity = getattr(_cluster.worker_identity, "real", _cluster.worker_identity)


def _identity() -> tuple[str, str]:
    """What the worker says it runs, or the contents of ``other-model`` if it exists."""
    other = Path(os.environ["MIGFUZZ_TEST_CLUSTER_DIR"]) / "other-model"
    if other.exists():
        version, commit = other.read_text().split()
        return version, commit
    return _real_identity()


_identity.real = _real_identity  # type: ignore[attr-defined]
_cluster.worker_identity = _identity  # type: ignore[assignment]
