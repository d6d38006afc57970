"""Scheduling strategies, one per module, all behind :class:`Scheduler`."""

from ._protocol import Scheduler as Scheduler
from .random import RandomScheduler as RandomScheduler
