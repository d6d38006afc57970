"""A stress campaign: many runs of generated or canonical scenarios, findings deduplicated.

Run ``k`` of a campaign with seed ``S`` is a pure function of (S, k): its scenario is
``generate(S * 2**32 + k)`` (or the canonical one), its strategy is the portfolio's turn for
``k`` seeded with the same number. Worker ``w`` of ``N`` takes runs ``w, w + N, w + 2N, ...``,
so with ``--runs`` the set of runs, and therefore the findings and their hit counts, is the
same for every ``--jobs`` (only the time it takes changes).

Workers send what they find to the parent, the only writer of the findings directory. For each
signature the file keeps the smallest reproducer, shortlex on (tasks, operations, decisions),
ties to the lower run index: a total order, so which run ends up in the file does not depend
on which worker reported first. A worker sends a full record (which costs one traced replay to
get the trace hash) only when it improves on what *it* has sent for that signature, and a bare
hit otherwise, so a bug hit on every other run does not double the campaign's cost.

    parent                            worker w (N processes, or in-process with --jobs 1)
    start workers, then loop:         for k in w, w+N, ...: run k under its strategy
      take messages (<= 0.1 s)          finding? improves my best: traced replay -> record
      new/smaller finding: write file   else: hit
      hits: mark file dirty (1 s)       progress every 0.2 s
      refresh the progress line        until runs exhausted or the stop event is set
    deadline / Ctrl-C: set stop event ---> finish the current run, send "done"
    drain, flush dirty files, summary
"""

from __future__ import annotations

from ._cluster import DASK_MISSING as DASK_MISSING
from ._cluster import connect_cluster as connect_cluster
from ._cluster import run_batch as run_batch
from ._cluster import worker_identity as worker_identity
from ._messages import Found as Found
from ._messages import Hit as Hit
from ._messages import Message as Message
from ._messages import Migrations as Migrations
from ._messages import Progress as Progress
from ._messages import WorkerError as WorkerError
from ._parent import Campaign as Campaign
from ._plan import SCENARIO_MODES as SCENARIO_MODES
from ._plan import CampaignConfig as CampaignConfig
from ._plan import default_jobs as default_jobs
from ._plan import migration_rates as migration_rates
from ._plan import plan_run as plan_run
from ._plan import run_seed as run_seed
from ._summary import Entry as Entry
from ._summary import Summary as Summary
from ._worker import make_record as make_record
from ._worker import worker_loop as worker_loop
