"""Request and response bodies (`XCreate`, `XUpdate`, `XPublic`): strict types, no unknown
fields, so a wrong type or a typo is a 422 that names the field."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from kizuna.services.kinds import OrganizationKind
from kizuna.services.principal import Role

T = TypeVar("T")

NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
NO_NUL = r"^[^\x00]*$"
"""Text may hold any character but NUL, which PostgreSQL cannot store."""


def whole_number(value: object) -> object:
    """JSON Schema's integer: 8 and 8.0 alike; "8" and 8.5 stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid integer")
    return value


def instant_text(value: object) -> object:
    """Instants are RFC 3339 strings, as the document says; numbers (or numbers in a string,
    which pydantic would take for Unix times) are refused."""
    if not isinstance(value, str) or NUMBER.fullmatch(value.strip()):
        raise ValueError("Input should be an RFC 3339 date-time string")
    return value


WHOLE = BeforeValidator(whole_number)
"""After the bounds in `Annotated[int, Field(...), WHOLE]`, so the document keeps them."""
Instant = Annotated[AwareDatetime, BeforeValidator(instant_text)]


def _text(min_length: int, max_length: int, pattern: str = NO_NUL) -> Any:
    return Field(min_length=min_length, max_length=max_length, pattern=pattern, strict=True)


Name = Annotated[str, _text(1, 63)]
Text = Annotated[str, _text(0, 2000)]
Line = Annotated[str, _text(1, 200)]
Ref = Annotated[str, _text(1, 130)]
"""An organization, project or person named in a body: id, name or `org/name`."""
Word = Annotated[str, _text(0, 63)]
Arg = Annotated[str, _text(0, 8192)]
EMAIL = "^[^@\\s\u0085\ufeff\x00]+@[^@\\s\u0085\ufeff\x00]+$"
"""Excludes the same characters under pydantic's regular expressions and JSON Schema's, whose
`\\s` differ (U+0085, U+FEFF)."""
Email = Annotated[str, _text(3, 254, EMAIL)]
GpuType = Annotated[str, _text(1, 40, r"^[A-Za-z0-9._-]+$")]
Count = Annotated[int, Field(ge=0, le=10_000_000), WHOLE]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ListOf(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class OrganizationCreate(Body):
    name: Name
    display_name: Text = ""
    kind: OrganizationKind


class OrganizationUpdate(Body):
    display_name: Line | None = None


class OrganizationPublic(Public):
    id: str
    name: str
    display_name: str
    kind: str
    created_at: datetime


class MemberCreate(Body):
    email: Email
    name: Text = ""
    role: Role = Role.MEMBER


class MemberUpdate(Body):
    role: Role


class MemberPublic(BaseModel):
    person_id: str
    email: str
    name: str
    organization_id: str
    role: str
    since: datetime


class ProjectCreate(Body):
    organization: Ref
    name: Name
    description: Text = ""


class ProjectUpdate(Body):
    description: Text | None = None


class ProjectPublic(Public):
    id: str
    organization_id: str
    name: str
    description: str
    created_at: datetime


class AwardCreate(Body):
    project: Ref
    gpu_type: GpuType
    gpu_hours: Annotated[int, Field(gt=0, le=10**11), WHOLE]
    nominal_gpus: Count
    borrowing_limit: Count | None = None
    starts_at: Instant
    ends_at: Instant


class AwardUpdate(Body):
    gpu_hours: Annotated[int, Field(gt=0, le=10**11), WHOLE] | None = None
    nominal_gpus: Count | None = None
    borrowing_limit: Count | None = None
    ends_at: Instant | None = None


class AwardPublic(Public):
    id: str
    project_id: str
    organization_id: str
    gpu_type: str
    gpu_hours: float
    nominal_gpus: int
    borrowing_limit: int | None
    starts_at: datetime
    ends_at: datetime
    created_at: datetime


class TokenCreate(Body):
    name: Line
    expires_in_days: Annotated[int, Field(ge=1, le=366), WHOLE] = 90
    person_id: Annotated[str, _text(1, 40)] | None = None


class TokenPublic(Public):
    id: str
    person_id: str
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenSecret(TokenPublic):
    secret: str = Field(description="Shown once, never again: store it now")


class Login(Body):
    email: Email
    password: Annotated[str, _text(1, 1024)]
    token_name: Line = "login"
    expires_in_days: Annotated[int, Field(ge=1, le=366), WHOLE] = 30


class PasswordSet(Body):
    password: Annotated[str, _text(12, 1024)]


class NodeCreate(Body):
    name: Name
    gpu_type: GpuType
    gpus: Annotated[int, Field(ge=1, le=1024), WHOLE]
    nvlink_domain: Word = ""
    rack: Word = ""


class NodeUpdate(Body):
    state: Annotated[str, Field(pattern="^(up|draining|down)$", strict=True)]


class NodePublic(Public):
    id: str
    name: str
    gpu_type: str
    gpus: int
    nvlink_domain: str
    rack: str
    state: str
    created_at: datetime


class JobCreate(Body):
    project: Ref
    command: Annotated[
        list[Arg],
        Field(min_length=1, max_length=1024),
    ]
    gpus: Annotated[int, Field(ge=1, le=1_000_000), WHOLE]
    gpu_type: GpuType
    walltime: Annotated[
        int, Field(ge=1, le=366 * 86_400, description="Seconds the job may run"), WHOLE
    ]
    name: Annotated[str, _text(0, 200)] = ""
    gpus_per_node: Annotated[int, Field(ge=1, le=1024), WHOLE] | None = None
    priority: Annotated[str, Field(pattern="^(low|normal|high)$", strict=True)] = "normal"
    one_domain: StrictBool = False
    signal: Annotated[
        str,
        Field(
            pattern="^(TERM|INT|USR1|USR2|HUP)$",
            strict=True,
            description="The checkpoint signal sent before a stop (sbatch --signal)",
        ),
    ] = "TERM"
    grace: Annotated[
        int,
        Field(ge=0, le=3600, description="Seconds between the checkpoint signal and the kill"),
        WHOLE,
    ] = 30
    workdir: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=4096,
                pattern=r"^/[^\x00]*$",
                strict=True,
                description="Absolute folder the command runs in (sbatch --chdir)",
            ),
        ]
        | None
    ) = None
    requeue: Annotated[
        StrictBool,
        Field(
            description="Whether a run lost by its backend or on a node that went down sends "
            "the job back to the queue (sbatch --requeue) or fails it (--no-requeue)"
        ),
    ] = True


class ReasonPublic(BaseModel):
    code: str
    message: str
    earliest_start: datetime | None = None


class JobPublic(Public):
    id: int
    project_id: str
    organization_id: str
    submitted_by: str
    name: str
    command: list[str]
    gpu_type: str
    gpus: int
    gpus_per_node: int | None
    walltime: int
    priority: str
    one_domain: bool
    signal: str
    grace: int
    workdir: str | None
    requeue: bool
    segments: int = Field(description="Runs started so far (a preempted job runs again)")
    state: str
    submitted_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None


class JobEventPublic(Public):
    at: datetime
    kind: str
    message: str
    actor: str


class JobDetail(JobPublic):
    reason: ReasonPublic | None
    events: list[JobEventPublic]


class WhoAmI(BaseModel):
    person_id: str
    email: str
    token_id: str | None
    roles: dict[str, str]


class CheckpointPublic(BaseModel):
    size: int
    root: str = Field(description="base64 of the RFC 6962 root hash")
    note: str = Field(description="The signed checkpoint (C2SP signed-note text)")
    created_at: datetime


class ProofPublic(BaseModel):
    size: int
    proof: list[str] = Field(description="base64 hashes")
    leaf_index: int | None = None
    first: int | None = None


class AuditEntryPublic(BaseModel):
    record: dict[str, Any]
    leaf_hash: str | None


class VerifierKeyPublic(BaseModel):
    origin: str
    key: str = Field(description="The C2SP verifier key of the checkpoints' signer")


class Items(BaseModel, Generic[T]):
    """A list answered whole (not paged)."""

    items: list[T]


class BalancePublic(BaseModel):
    """An award's account (ADR 0023 L3), in GPU-hours for people and exact GPU-milliseconds."""

    award_id: str
    project: str = Field(description="`org/name`")
    project_id: str
    organization: str
    organization_id: str
    gpu_type: str
    starts_at: datetime
    ends_at: datetime
    granted_gpu_hours: float
    charged_gpu_hours: float
    held_gpu_hours: float = Field(description="Reserved by open runs until they end")
    available_gpu_hours: float = Field(description="granted - charged - held")
    granted_gpu_ms: int
    charged_gpu_ms: int
    held_gpu_ms: int
    available_gpu_ms: int
    burn_gpu_hours_per_day: float = Field(description="Spent per day over the last 7 days")
    runs_out_at: datetime | None = Field(
        description="When the available GPU-hours run out at that rate; null: nothing burns"
    )


class UsageLinePublic(BaseModel):
    group: dict[str, str] = Field(description="The value of each grouping asked for")
    period: str | None = Field(description="2026-03-01, 2026-W09 or 2026-03; null: no period")
    runs: int
    gpu_hours: float
    gpu_ms: int


class RunPublic(BaseModel):
    """One run segment of a job (ADR 0022)."""

    segment: int
    state: str = Field(description="admitted, running, stopping or ended")
    award_id: str
    gpus: int
    allocation: dict[str, Any] = Field(description='{"parts": [[node, [GPU index, ...]], ...]}')
    admitted_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    stop_kind: str | None = Field(description="preempted, cancelled or timed-out")
    outcome: str | None
    exit_codes: list[Any] | None
    charged_gpu_ms: int | None = Field(description="From its usage record; null while open")
