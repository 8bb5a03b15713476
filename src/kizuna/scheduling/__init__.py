"""The scheduling core: a snapshot in, decisions and reasons out (ADR 0002). Pure."""

from kizuna.scheduling.cycle import run_cycle
from kizuna.scheduling.decisions import (
    Admission,
    CycleResult,
    Preemption,
    Reason,
    ReasonCode,
    ShadowReservation,
)
from kizuna.scheduling.model import (
    Allocation,
    Job,
    Node,
    NodeState,
    PriorityClass,
    Project,
    Quota,
    Reservation,
    RunningJob,
    Snapshot,
)
from kizuna.scheduling.policies import POLICIES, Policy, make_policy
from kizuna.scheduling.reservations import plan_reservation
from kizuna.scheduling.scheduler import PendingChanges, Scheduler
from kizuna.scheduling.validation import ClusterShape, validate_job

__all__ = [
    "POLICIES",
    "Admission",
    "Allocation",
    "ClusterShape",
    "CycleResult",
    "Job",
    "Node",
    "NodeState",
    "PendingChanges",
    "Policy",
    "Preemption",
    "PriorityClass",
    "Project",
    "Quota",
    "Reason",
    "ReasonCode",
    "Reservation",
    "RunningJob",
    "Scheduler",
    "ShadowReservation",
    "Snapshot",
    "make_policy",
    "plan_reservation",
    "run_cycle",
    "validate_job",
]
