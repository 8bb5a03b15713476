"""Every table of the service, as typed SQLAlchemy 2 mappings (ADR 0018).

Ids of organizations, people, projects, awards, tokens, clusters and nodes are strings with a
kind prefix whose body sorts by creation time (`kizuna.services.ids`); jobs have Slurm-like
integer ids. Every tenant-owned row carries its `organization_id`, so one filter keeps tenants
apart (ADR 0019).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kizuna.store.types import UtcDateTime

ID = String(40)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        list[Any]: JSON(),
    }


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class Person(Base):
    __tablename__ = "people"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("person_id", "organization_id"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Award(Base):
    __tablename__ = "awards"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    gpu_type: Mapped[str] = mapped_column(String(40))
    gpu_seconds: Mapped[int] = mapped_column(BigInteger)
    nominal_gpus: Mapped[int] = mapped_column(Integer)
    borrowing_limit: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime]


class Cluster(Base):
    __tablename__ = "clusters"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime]


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    gpu_type: Mapped[str] = mapped_column(String(40))
    gpus: Mapped[int] = mapped_column(Integer)
    nvlink_domain: Mapped[str] = mapped_column(String(63), default="")
    rack: Mapped[str] = mapped_column(String(63), default="")
    state: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_org_state", "organization_id", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    submitted_by: Mapped[str] = mapped_column(ForeignKey("people.id"))
    name: Mapped[str] = mapped_column(String(200))
    command: Mapped[list[str]]
    gpu_type: Mapped[str] = mapped_column(String(40))
    gpus: Mapped[int] = mapped_column(Integer)
    gpus_per_node: Mapped[int | None] = mapped_column(Integer)
    walltime: Mapped[int] = mapped_column(Integer)
    priority: Mapped[str] = mapped_column(String(20))
    one_domain: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), index=True)
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason_message: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    exit_code: Mapped[int | None] = mapped_column(Integer)
    signal: Mapped[str] = mapped_column(String(10), default="TERM")
    """The checkpoint signal sent before a stop (Slurm's `--signal`)."""
    grace: Mapped[int] = mapped_column(Integer, default=30)
    """Seconds between the checkpoint signal and the kill."""
    workdir: Mapped[str | None] = mapped_column(String(4096))
    """Where the command runs (sbatch's `--chdir`; the CLI sends the submitter's folder)."""
    segments: Mapped[int] = mapped_column(Integer, default=0)
    """Runs started so far; the next run is segment `segments + 1`."""
    reason_start: Mapped[datetime | None]
    """The scheduler's estimate of the earliest start, with the stored reason."""
    requeue: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """Whether a run its backend lost, or one on a node that went down, sends the job back to
    pending (sbatch's `--requeue`, the default) or fails it (`--no-requeue`)."""


class Run(Base):
    """One run segment of a job: admitted with a hold on one award, ended with one usage
    record (ADR 0022, 0023). Open while `ended_at` is null."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("job_id", "segment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    segment: Mapped[int] = mapped_column(Integer)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    award_id: Mapped[str] = mapped_column(ForeignKey("awards.id"), index=True)
    gpu_type: Mapped[str] = mapped_column(String(40))
    gpus: Mapped[int] = mapped_column(Integer)
    allocation: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), index=True)
    hold_ms: Mapped[int] = mapped_column(BigInteger)
    """GPU-milliseconds reserved on the award until the run ends (GPUs x walltime)."""
    admitted_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    stop_kind: Mapped[str | None] = mapped_column(String(20))
    stop_signalled_at: Mapped[datetime | None]
    stop_deadline: Mapped[datetime | None]
    for_job: Mapped[int | None] = mapped_column(Integer)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    exit_codes: Mapped[list[Any] | None] = mapped_column(JSON)


class UsageRecord(Base):
    """What one run segment used, charged once against its award (ADR 0023): the ledger's
    only source; every balance is derived from these rows and the open runs' holds."""

    __tablename__ = "usage_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    segment: Mapped[int] = mapped_column(Integer)
    award_id: Mapped[str] = mapped_column(ForeignKey("awards.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    gpu_type: Mapped[str] = mapped_column(String(40))
    gpus: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime] = mapped_column(index=True)
    gpu_ms: Mapped[int] = mapped_column(BigInteger)
    """GPU-milliseconds charged: GPUs x the run's length, at most its hold."""


class JobEvent(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(60))


class AuditEntry(Base):
    """One change, written in the change's own transaction; `leaf_index` is given later by
    the sequencer, in commit order, and never changes again (ADR 0017, 0018)."""

    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    leaf_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(30))
    object_id: Mapped[str] = mapped_column(String(60))
    organization_id: Mapped[str | None] = mapped_column(String(40), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(60))


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class IdempotencyKey(Base):
    """A POST's first response, kept so a retry with the same key gets it byte for byte."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("person_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)
