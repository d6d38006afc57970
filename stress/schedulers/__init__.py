"""Scheduling strategies, one per module, all behind :class:`Scheduler`."""

from ._protocol import PendingOpsScheduler as PendingOpsScheduler
from ._protocol import Scheduler as Scheduler
from ._protocol import StepObserver as StepObserver
from .bytes import ByteScheduler as ByteScheduler
from .cpct import ConflictPCTScheduler as ConflictPCTScheduler
from .dfs import DFSScheduler as DFSScheduler
from .dfs import NondeterminismError as NondeterminismError
from .dpor import DPORScheduler as DPORScheduler
from .pct import PCTScheduler as PCTScheduler
from .pos import POSScheduler as POSScheduler
from .preempt import PreemptScheduler as PreemptScheduler
from .random import RandomScheduler as RandomScheduler
from .replay import ReplayScheduler as ReplayScheduler
from .replay import ScheduleDivergence as ScheduleDivergence
from .surw import SURWScheduler as SURWScheduler
