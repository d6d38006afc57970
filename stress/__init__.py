"""Executes the model concurrently: executions, executors, schedulers, workloads, oracles."""

from target.kernel import Event as Event
from target.kernel import PendingOp as PendingOp

from ._execution import DEFAULT_MAX_STEPS as DEFAULT_MAX_STEPS
from ._execution import Execution as Execution
from ._execution import Finding as Finding
from ._execution import ModelTask as ModelTask
from ._execution import Outcome as Outcome
from ._execution import StressInternalError as StressInternalError
