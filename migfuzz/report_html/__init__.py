"""The nightly HTML report: one static page per night, SVG drawn here, nothing external.

The page has no scripts and no external URLs (stylesheet inline, diagrams inline SVG), so it
can be archived as a CI artifact, mailed, or opened from a file system years later. It is
written by Jinja2 templates (``templates/``, package data; autoescaped): ``page.html``, and
``svg.html`` whose macros draw the diagrams from the geometry computed here. It shows:

* summary: this night's runs (kind, target, execs, exec/s, coverage, status) and findings,
  new versus known (seen on an earlier night, or explained by ``corpus/known`` /
  ``corpus/regressions``);
* trends across nights, from the history database: exec/s per process, fuzz coverage,
  findings per night, and the migration rate (pages moved / pages attempted by the stress
  runs' ``migrate`` operations) per strategy and per scenario, as line plots; a drop of a rate
  against the previous night (:func:`migfuzz.history.compare_rates`) is a red flag row in the
  summary, a red ring on the chart and a row of the rates table;
* each new finding: the command that reproduces it, its interleaving as a *swimlane* (one
  lane per task, one row per traced event, lock hold intervals as bars beside the events, the
  finding marked across the lanes), and its *lock-order graph* (lock classes as nodes, the
  acquired-while-holding edges the replay observed per task, and for a lock-order finding the
  inverting edge in red with the existing chain it closes).

The diagrams come from a traced exact replay of the finding file (:func:`migfuzz.replay.check`,
the same replay ``migfuzz repro`` prints as text); a replay that fails is reported in place of
its diagrams, never by failing the report. Lock events name lock *instances*
(``mm1.ptl[0]``); the graph is over lock *classes* (``pte_lock``), which every lock event
carries (:func:`lock_class`): nothing is guessed from names.
"""

from __future__ import annotations

from ._labels import lock_class as lock_class
from ._lockgraph import Edge as Edge
from ._lockgraph import LockGraphData as LockGraphData
from ._lockgraph import lock_graph as lock_graph
from ._lockgraph import lock_graph_svg as lock_graph_svg
from ._lockgraph import observed_lock_graph as observed_lock_graph
from ._page import FindingView as FindingView
from ._page import finding_views as finding_views
from ._page import render as render
from ._page import write_report as write_report
from ._svg import line_chart_svg as line_chart_svg
from ._swimlane import Bar as Bar
from ._swimlane import hold_bars as hold_bars
from ._swimlane import swimlane_svg as swimlane_svg
