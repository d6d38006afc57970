"""A campaign's runs on a Dask distributed cluster (``--cluster ADDRESS``).

The campaign's process is the Dask client. It cuts the runs into batches of consecutive run
indices and submits each as a future of :func:`run_batch`, which runs them as a worker of the
process pool runs its share (``worker_loop``) and returns the messages it would have sent
(:class:`Progress`, :class:`Found`, :class:`Hit`, :class:`WorkerError`). The client merges
the batches in run order, batch ``i`` only after batch ``i - 1``, through the same
``Campaign.handle`` as the pool's messages; it alone writes finding files and the history.

    client (the campaign)                    Dask workers (any number, any machines)
    connect, wait for a worker               run_batch(cfg, first, end), one at a time
    keep 2 batches per worker in flight ---> for k in first..end-1: run k, collect messages
    merge finished batches in run order <--- return the messages (no file written)
    deadline / Ctrl-C / error: submit no more, wait for the batches in flight, cancel the rest

Why the findings are those of ``--jobs N``: run ``k`` is a pure function of (seed, k), each
batch sends a :class:`Found` whenever a run improves on what that batch sent for its key,
so the smallest reproducer of each signature (shortlex, ties to the lower run) always
reaches the client, and every run that hits a signature counts once. Which batch runs where,
and how big batches are, changes the work, not the result.

A worker lost mid-batch loses nothing: the scheduler reruns the batches it held (those it was
running and those whose results it kept) on the workers left, and ``retries`` reruns a batch
that raised. That is sound because a batch is pure and idempotent: it writes no file and no
shared state, so running it twice returns the same messages, and the client takes the first.

Dask is imported only here and only when ``--cluster`` is given: ``--jobs`` needs no Dask.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._errors import UsageError
from ._messages import Message, Progress, WorkerError, add_progress
from ._plan import CampaignConfig
from ._worker import worker_loop

if TYPE_CHECKING:
    from ._parent import Campaign

CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler, then to see a first worker
BATCH_RUNS = 64  # runs per batch at most: ~0.1-0.3 s of one core, next to ~1 ms of Dask's
IN_FLIGHT = 2  # batches per worker: the next one waits on the worker while one runs
RETRIES = 2  # reruns of a batch that raised (a worker that died is Dask's own matter)
JOIN_GRACE = 5.0  # seconds the batches in flight get to finish after a stop
WAIT_S = 0.1  # seconds between progress refreshes while no batch finishes

# ``injected`` patches the model's module globals for the whole process, so two batches in
# the threads of one worker (``dask worker --nthreads 2``) would run with each other's
# injections: a worker process runs one batch at a time.
_ONE_AT_A_TIME = threading.Lock()

DASK_MISSING = ("--cluster needs Dask distributed, which is not installed: "
                "pip install 'migfuzz[cluster]'")


def run_batch(cfg: CampaignConfig, first: int, end: int) -> list[Message]:
    """Runs ``first`` to ``end - 1`` of the campaign, on a Dask worker: what they report, in
    run order (a pure function of its arguments: no file, no state left behind)."""
    out: list[Message] = []

    def keep(msg: Message) -> None:
        if not (isinstance(msg, Progress) and not msg.done):  # only the batch's last word
            out.append(msg)

    with _ONE_AT_A_TIME:
        worker_loop(cfg, first, 1, keep, lambda: False, runs=range(first, end))
    return out


def connect_cluster(address: str) -> Any:
    """A Dask client of the scheduler at ``address`` with at least one worker.

    Raises:
        UsageError: Dask is not installed, the scheduler cannot be reached within
            ``CONNECT_TIMEOUT``, or it has no worker.
    """
    try:
        import distributed
    except ImportError:
        raise UsageError(DASK_MISSING) from None
    from distributed.comm.addressing import resolve_address

    dask: Any = distributed  # (partly untyped: the client is used through Any)
    try:
        # A malformed address or unknown host fails here, at once; given to Client, it
        # would leave a half-made client whose finalizer hangs 10 s and prints a traceback.
        resolve_address(address)
        client = dask.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"--cluster {address}: cannot reach a Dask scheduler: {why}") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        client.close()
        raise UsageError(f"--cluster {address}: the scheduler has no worker after "
                         f"{CONNECT_TIMEOUT:g} s (start one: dask worker {address} "
                         "--nthreads 1)") from None
    try:
        _check_same_model(address, client.run(worker_identity, on_error="return"))
    except UsageError:
        client.close()
        raise
    return client


def worker_identity() -> tuple[str, str]:
    """(migfuzz version, model commit) of the process that runs it: on each worker."""
    from .. import __version__
    from ..findings import model_commit

    return __version__, model_commit()


def _check_same_model(address: str, workers: dict[str, Any]) -> None:
    """Run k of seed S is a function of (S, k) *and the model*: a worker on other code would
    give other findings under the same --runs/--seed. Commits are compared where both are
    known (``unknown`` outside a git checkout, as a pip-installed worker is)."""
    mine = worker_identity()
    for worker, theirs in sorted(workers.items()):
        if isinstance(theirs, BaseException):
            raise UsageError(f"--cluster {address}: worker {worker} cannot run migfuzz: "
                             f"{type(theirs).__name__}: {theirs}")
        version, commit = theirs
        if version != mine[0] or ("unknown" not in (commit, mine[1]) and commit != mine[1]):
            raise UsageError(f"--cluster {address}: worker {worker} runs migfuzz {version} "
                             f"at model commit {commit}, this client {mine[0]} at {mine[1]}: "
                             "every worker needs the same checkout")


class _Batches:
    """The client's side of a cluster campaign: submit, collect, merge in run order."""

    def __init__(self, campaign: Campaign, client: Any) -> None:
        import distributed

        self.c = campaign
        self.client = client
        self.wait: Any = distributed.wait
        self.tag = uuid.uuid4().hex[:12]  # the campaign's task keys, as the dashboard shows
        self.pending: dict[Any, int] = {}  # future -> batch index
        self.results: dict[int, list[Message]] = {}
        self.submitted = self.merged = 0  # batches submitted; batches merged (a prefix)
        self.total = Progress(0)
        self._workers = (0, -1e9)  # (count, when asked)
        cfg = campaign.cfg
        size = BATCH_RUNS
        if cfg.runs is not None:  # at least 4 batches per worker, for an even spread
            size = max(1, min(size, math.ceil(cfg.runs / (4 * self.workers()))))
        self.size = size

    def workers(self) -> int:
        count, asked = self._workers
        t = time.monotonic()
        if t - asked >= 1.0:  # workers come and go; ask the scheduler once a second
            count = max(1, len(self.client.nthreads()))
            self._workers = (count, t)
        return count

    def more(self) -> bool:
        runs = self.c.cfg.runs
        return runs is None or self.submitted * self.size < runs

    def span(self, i: int) -> tuple[int, int]:
        """Batch ``i``'s runs: ``first`` to ``end - 1``."""
        first = i * self.size
        end = first + self.size
        return first, end if self.c.cfg.runs is None else min(end, self.c.cfg.runs)

    def submit(self) -> None:
        while (not self.c.should_stop() and self.more()
               and len(self.pending) < IN_FLIGHT * self.workers()):
            i = self.submitted
            first, end = self.span(i)
            f = self.client.submit(run_batch, self.c.cfg, first, end, retries=RETRIES,
                                   key=f"migfuzz-batch-{self.tag}-{first}")
            self.pending[f] = i
            self.submitted += 1

    def collect(self, timeout: float) -> None:
        """Take the batches that finish within ``timeout``; merge what is now in order."""
        if not self.pending:
            return
        try:
            with self.client.as_current():  # (``wait`` asks for the current client)
                done = self.wait(list(self.pending), timeout=timeout,
                                 return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        for f in done:
            i = self.pending.pop(f)
            try:
                self.results[i] = f.result()
            except Exception as exc:  # KilledWorker (its workers kept dying), an import error
                first, end = self.span(i)
                self.results[i] = [WorkerError(
                    Progress(i, done=True), first, "-", "-",
                    f"the batch of runs {first}-{end - 1} failed on the "
                    f"cluster: {type(exc).__name__}: {exc}")]
        while self.merged in self.results:
            self.merge(self.results.pop(self.merged))
            self.merged += 1

    def merge(self, msgs: list[Message]) -> None:
        for msg in msgs:
            if isinstance(msg, Progress):
                self.total = add_progress(self.total, msg)
                self.c.handle(self.total)
            elif isinstance(msg, WorkerError):
                self.total = add_progress(self.total, msg.progress)
                self.c.handle(replace(msg, progress=self.total))
            else:
                self.c.handle(msg)

    def run(self) -> None:
        try:
            while not self.c.should_stop():
                self.submit()
                if not self.pending:
                    break
                self.collect(WAIT_S)
                self.c._maybe_show()
            self.finish()
        except KeyboardInterrupt:  # a second Ctrl-C: do not wait for the batches in flight
            self.c.interrupted = True
            self.client.cancel(list(self.pending))

    def finish(self) -> None:
        """After a stop: the batches in flight finish (up to ``JOIN_GRACE``), what finished is
        merged (in run order, gaps skipped), the rest is cancelled."""
        grace = time.monotonic() + JOIN_GRACE
        while self.pending and time.monotonic() < grace:
            self.collect(max(0.0, grace - time.monotonic()))
        self.client.cancel(list(self.pending))
        for i in sorted(self.results):
            self.merge(self.results.pop(i))


def run_on_cluster(campaign: Campaign, client: Any) -> None:
    """Run ``campaign``'s runs on the cluster of ``client`` (the module docstring)."""
    _Batches(campaign, client).run()
