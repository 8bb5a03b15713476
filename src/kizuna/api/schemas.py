"""Request and response bodies (`XCreate`, `XUpdate`, `XPublic`): strict types, no unknown
fields, so a wrong type or a typo is a 422 that names the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from kizuna.services.kinds import OrganizationKind
from kizuna.services.principal import Role

T = TypeVar("T")

Name = Annotated[str, Field(min_length=1, max_length=63, strict=True)]
Text = Annotated[str, Field(max_length=2000, strict=True)]
Line = Annotated[str, Field(min_length=1, max_length=200, strict=True)]
Email = Annotated[
    str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", strict=True)
]
GpuType = Annotated[
    str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$", strict=True)
]
Count = Annotated[StrictInt, Field(ge=0, le=10_000_000)]


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
    organization: Annotated[str, Field(min_length=1, max_length=63, strict=True)]
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
    project: Annotated[str, Field(min_length=1, max_length=130, strict=True)]
    gpu_type: GpuType
    gpu_hours: Annotated[StrictInt, Field(gt=0, le=10**11)]
    nominal_gpus: Count
    borrowing_limit: Count | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class AwardUpdate(Body):
    gpu_hours: Annotated[StrictInt, Field(gt=0, le=10**11)] | None = None
    nominal_gpus: Count | None = None
    borrowing_limit: Count | None = None
    ends_at: AwareDatetime | None = None


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
    expires_in_days: Annotated[StrictInt, Field(ge=1, le=366)] = 90
    person_id: Annotated[str, Field(max_length=40, strict=True)] | None = None


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
    password: Annotated[str, Field(min_length=1, max_length=1024, strict=True)]
    token_name: Line = "login"
    expires_in_days: Annotated[StrictInt, Field(ge=1, le=366)] = 30


class PasswordSet(Body):
    password: Annotated[str, Field(min_length=12, max_length=1024, strict=True)]


class NodeCreate(Body):
    name: Name
    gpu_type: GpuType
    gpus: Annotated[StrictInt, Field(ge=1, le=1024)]
    nvlink_domain: Annotated[str, Field(max_length=63, strict=True)] = ""
    rack: Annotated[str, Field(max_length=63, strict=True)] = ""


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
    project: Annotated[str, Field(min_length=1, max_length=130, strict=True)]
    command: Annotated[
        list[Annotated[str, Field(max_length=8192, strict=True)]],
        Field(min_length=1, max_length=1024),
    ]
    gpus: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    gpu_type: GpuType
    walltime: Annotated[
        StrictInt, Field(ge=1, le=366 * 86_400, description="Seconds the job may run")
    ]
    name: Annotated[str, Field(max_length=200, strict=True)] = ""
    gpus_per_node: Annotated[StrictInt, Field(ge=1, le=1024)] | None = None
    priority: Annotated[str, Field(pattern="^(low|normal|high)$", strict=True)] = "normal"
    one_domain: StrictBool = False


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
