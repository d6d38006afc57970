"""migfuzz: the service layer over ``stress`` and ``target``.

The command line (``migfuzz stress | repro | minimize | scenarios``) lives in :mod:`migfuzz.cli`;
the pieces it is built from are importable on their own:

* :mod:`migfuzz.findings`: the versioned finding file, its store (one file per signature).
* :mod:`migfuzz.campaign`: a stress campaign over many runs and worker processes.
* :mod:`migfuzz.replay`: exact replays of a finding, trace hashes, drift detection.
* :mod:`migfuzz.timeline`: the readable interleaving, one column per task.
* :mod:`migfuzz.minimize`: shrink a finding (operations, tasks, preemptions).
* :mod:`migfuzz.pytest_plugin`: ``pytest -p migfuzz.pytest_plugin FINDING.json``.
"""

from __future__ import annotations

__version__ = "0.1.0"
