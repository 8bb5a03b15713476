"""Typed identifiers, so a project id is never passed where a job id belongs."""

from typing import NewType

JobId = NewType("JobId", str)
NodeId = NewType("NodeId", str)
ProjectId = NewType("ProjectId", str)
CohortId = NewType("CohortId", str)
ReservationId = NewType("ReservationId", str)
GpuType = NewType("GpuType", str)
"""A GPU model as the cluster names it: "H100", "H200", "A100"..."""
