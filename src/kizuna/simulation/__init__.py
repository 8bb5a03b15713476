"""The planning simulator: the scheduling core driven by a simulated clock.

Imports only `kizuna.kernel`, `kizuna.scheduling` and the standard library, so a replay runs
the same scheduler code as the live service, with time as an object (SimPy's lesson).
"""

from kizuna.simulation.clock import SimClock
from kizuna.simulation.events import Event, EventQueue
from kizuna.simulation.metrics import JobHistory, Metrics, Outcome, Run
from kizuna.simulation.replay import ReplayOptions, ReplayResult, replay
from kizuna.simulation.workload import TraceJob, Workload, WorkloadSpec, generate

__all__ = [
    "Event",
    "EventQueue",
    "JobHistory",
    "Metrics",
    "Outcome",
    "ReplayOptions",
    "ReplayResult",
    "Run",
    "SimClock",
    "TraceJob",
    "Workload",
    "WorkloadSpec",
    "generate",
    "replay",
]
