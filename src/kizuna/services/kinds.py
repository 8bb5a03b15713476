"""The closed sets of words the service accepts: organization kinds and job states.

A module of its own with nothing heavy behind it, so the CLI offers them as choices without
loading the database layer (`kizuna --help` stays quick).
"""

from __future__ import annotations

from enum import StrEnum


class OrganizationKind(StrEnum):
    STARTUP = "startup"
    COMPANY = "company"
    UNIVERSITY = "university"
    SCHOOL = "school"
    PARTNER = "partner"
    PROGRAM_OFFICE = "program-office"


class JobState(StrEnum):
    PENDING = "pending"
    ADMITTED = "admitted"
    RUNNING = "running"
    PREEMPTING = "preempting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed-out"


FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT})
"""States a job never leaves."""
