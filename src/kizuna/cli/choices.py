"""The words the service accepts for a few options, as CLI choices.

Organization kinds and job states come from `kizuna.services.kinds`, which loads nothing
heavy; priority classes are the scheduling core's (a test checks they stay the same).
"""

from __future__ import annotations

from enum import StrEnum

from kizuna.services.kinds import FINAL, JobState, OrganizationKind

__all__ = ["FINAL", "JobState", "OrganizationKind", "Priority"]


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
