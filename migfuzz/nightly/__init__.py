"""``migfuzz nightly``: a time-boxed night of stress and fuzzing, with history and a report.

    migfuzz nightly [--hours H] [--minutes M | --runs N] [--jobs N] [--cluster ADDRESS]
                    [--bug NAME] [--fix NAME] [--fixes all|none] [--out DIR] [--db PATH]
                    [--report DIR] [--json]

The budget (default 8 hours; ``--hours`` and ``--minutes`` add up) is spread over ``--jobs``
processes (default: the machine's cores) as *lanes*, each a queue of runs:

    jobs = 1      one lane: the stress portfolio for half the budget, then each of the F fuzz
                  targets (fuzz_preempt, fuzz_scenario, fuzz_schedule, fuzz_sequential: F = 4)
                  for 1/(2F) of it
    jobs 2..2F-1  a stress campaign with jobs-1 workers for the whole budget, and one lane
                  running the fuzz targets 1/F of the budget each
    jobs >= 2F    a stress campaign with jobs-F workers, and one lane per fuzz target

so a 2-core machine runs two things at a time, and the stress portfolio (the engine that
finds races on the trio executor) keeps at least half the machine. A lane whose queue ends
early (a fuzz target that stops at a crash: libFuzzer without ``-fork`` stops at the first
one, and is restarted as long as restarts find new crashing inputs) fills the rest of the
budget with another stress campaign, so the machine stays busy until the deadline.

With ``--runs N`` instead of a budget (not with ``--hours``/``--minutes``: usage error), no
clock decides what runs: the same lanes run their queues once, each stress run exactly N
schedules from its seed and each fuzz run N libFuzzer executions (``-runs``; one session:
libFuzzer stops at its first crash), nothing fills the lanes and no deadline stops a run. A
night's work then depends only on its options and seeds: tests, and bisecting a drop of a
migration rate (the rates come from the stress runs, whose N schedules are the same each
night of the same seed).

With ``--cluster ADDRESS`` the stress runs' schedules run on a Dask cluster
(:mod:`migfuzz.campaign`'s ``_cluster``: the stress child is the client and the only writer
of its run directory); the plan and the fuzz lanes are the same.

Every run is a child process (``python -m migfuzz.nightly RUN_DIR/run.json``) in the nightly's
process group, with its own output directory ``OUT/runs/nNNNN-SS-KIND-TARGET/``: a stress run
is a :class:`migfuzz.campaign.Campaign` writing finding files there as it finds them (and
committing each to the history database as soon as it is saved); a fuzz run calls
:func:`migfuzz.fuzz.run_fuzz` on a persistent per-target corpus ``OUT/corpus/TARGET`` (seeded
from ``corpus/TARGET``, merged back after each run), and libFuzzer writes its crash artifacts
under the run directory the moment it crashes. The parent polls every run directory twice a
second and records in the history database (:mod:`migfuzz.history`) every finding file and
every artifact it has not seen, each replayed first as ``migfuzz repro`` would (an artifact is
decoded and replayed with the run's bugs and saved as a finding file): a ``*.json`` that does
not load or does not reproduce is recorded as such (``invalid``), listed in the summary, and
never counted as a finding.

Nothing found is lost when a night is killed (``kill -9`` of the process group, a reboot): the
files were written atomically when found, the database rows are committed in short
transactions, and the next ``migfuzz nightly`` starts by marking the dead night and its runs
*killed* and rescanning their directories for anything not yet recorded; its report lists
those findings as new ("recovered"), since no report showed them.

Migration rates: each stress run's campaign counts, per strategy and per scenario, the pages
its ``migrate`` operations found on the source node and the pages they moved
(:data:`migfuzz.campaign.Migrations`); the run writes them into its status and result files
and the parent records them in the ``migrations`` table. Each of tonight's series is compared
with the latest earlier night of the same bugs and fixes that has enough of it
(:func:`migfuzz.history.compare_rates`): a *drop* is a fall of at least
``RATE_MIN_DROP`` (5 points) with a pooled two-proportion z of at most ``-RATE_Z`` (-6), both
nights having at least ``RATE_MIN_ATTEMPTS`` (100) pages. A drop is flagged in the summary,
in ``--json`` (``rate_drops``) and in the report, but does not change the exit status: it is
a statistical signal with no reproducer, like a performance regression in kernel CI, and a
CI job failing on noise once in a while would train people to ignore it; a new finding is a
reproducible failure and keeps exit 1.

A finding is *new* when no earlier report showed its deduplication key (signature + injected
bugs, as in ``corpus/README.md``) and no entry of ``corpus/known`` or ``corpus/regressions``
explains it (same key; or same signature with the corpus entry's bugs all injected), and no
known flaw of V2 as posted explains it (``migfuzz.flaws``: with that flaw's upstream fix the
finding is gone). The stress runs label their findings themselves; what is still unlabelled
when the runs end (a fuzz crash, a killed run's file) is labelled by the parent before the
report, which lists known flaws with their label, apart from new findings.

Exit status: 0 no new findings (known flaws are not new; a drop of a migration rate is
flagged, not failed), 1 new findings, 2 usage error (another nightly holds the database, a bad
option), 3 a run hit a harness error, a run directory held a file that does not load or does
not reproduce, or the report could not be written.
"""

from __future__ import annotations

from ._children import child_main as child_main
from ._command import DESCRIPTION as DESCRIPTION
from ._command import HELP as HELP
from ._command import configure as configure
from ._command import run as run
from ._harvest import CorpusIndex as CorpusIndex
from ._harvest import Harvest as Harvest
from ._harvest import harvest as harvest
from ._harvest import label_known_flaws as label_known_flaws
from ._plan import RESERVED as RESERVED
from ._plan import Item as Item
from ._plan import Lane as Lane
from ._plan import plan as plan
from ._recovery import record_migrations as record_migrations
from ._recovery import recover as recover
from ._spec import RunKind as RunKind
from ._spec import RunSpec as RunSpec
from ._summary import NightSummary as NightSummary
from ._summary import format_night as format_night
from ._supervisor import Nightly as Nightly
