"""The concurrency substrate the model is written against.

It knows nothing of trio or of any scheduler: an executor from ``stress`` installs itself with
:func:`install`, and every lock operation and shared access in the model reaches it through
:func:`preempt`, which names the operation the task is about to perform (:class:`PendingOp`).
Implementation modules are private; this namespace only re-exports.
"""

from ._bug import BUG as BUG
from ._bug import BUG_ON as BUG_ON
from ._bug import FINDING_KINDS as FINDING_KINDS
from ._bug import KernelFinding as KernelFinding
from ._kasan import KObject as KObject
from ._kasan import kasan_check as kasan_check
from ._kasan import kfree as kfree
from ._kasan import kreuse as kreuse
from ._lockdep import DOCUMENTED_ORDER as DOCUMENTED_ORDER
from ._lockdep import LockClass as LockClass
from ._lockdep import LockGraph as LockGraph
from ._lockdep import canonical_classes as canonical_classes
from ._lockdep import declare_order as declare_order
from ._locking import TracedWaitBit as TracedWaitBit
from ._locking import WaitBit as WaitBit
from ._locking import lockdep_assert_held as lockdep_assert_held
from ._locking import rcu_read_lock as rcu_read_lock
from ._locking import rcu_read_unlock as rcu_read_unlock
from ._locking import rw_semaphore as rw_semaphore
from ._locking import spinlock_t as spinlock_t
from ._sched import ACQUIRE as ACQUIRE
from ._sched import HOOKS as HOOKS
from ._sched import NEVER as NEVER
from ._sched import NONE as NONE
from ._sched import READ as READ
from ._sched import RELEASE as RELEASE
from ._sched import RELEASED as RELEASED
from ._sched import TRY as TRY
from ._sched import WRITE as WRITE
from ._sched import Action as Action
from ._sched import Event as Event
from ._sched import KTask as KTask
from ._sched import LockFields as LockFields
from ._sched import PendingOp as PendingOp
from ._sched import Released as Released
from ._sched import Runqueue as Runqueue
from ._sched import cond_resched as cond_resched
from ._sched import current as current
from ._sched import install as install
from ._sched import irq_idle as irq_idle
from ._sched import might_sleep as might_sleep
from ._sched import other_tasks_alive as other_tasks_alive
from ._sched import preempt as preempt
from ._sched import raise_irq as raise_irq
from ._sched import touch as touch
from ._sched import trace as trace
from ._sched import trace_lock as trace_lock
from ._sched import uninstall as uninstall
from ._sched import wait_for_other_task_exit as wait_for_other_task_exit
from ._sched import yield_ as yield_
