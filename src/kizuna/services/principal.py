"""Who is asking, and what they may see and do (ADR 0019).

Roles:
- platform roles, held through a membership of a program-office organization:
  `program-admin` (everything), `cluster-operator` (sees every job and node, manages nodes,
  cancels any job), `auditor` (reads everything, changes nothing);
- organization roles: `org-admin` (manages its organization's projects, members and their
  tokens, submits and cancels its jobs), `member` (reads its organization, submits jobs,
  cancels its own).
R1. An object of an organization the caller is not in is, to the caller, an object that does
    not exist: 404, never 403, and lists leave it out.
R2. A caller who may see an object but not change it gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    PROGRAM_ADMIN = "program-admin"
    CLUSTER_OPERATOR = "cluster-operator"
    AUDITOR = "auditor"
    ORG_ADMIN = "org-admin"
    MEMBER = "member"


PLATFORM_ROLES = frozenset({Role.PROGRAM_ADMIN, Role.CLUSTER_OPERATOR, Role.AUDITOR})
ORGANIZATION_ROLES = frozenset({Role.ORG_ADMIN, Role.MEMBER})


@dataclass(frozen=True)
class Principal:
    """An authenticated person with their roles, by organization."""

    person_id: str
    email: str
    roles: dict[str, Role] = field(default_factory=dict)
    """Organization id -> the person's role there."""
    token_id: str | None = None
    system: str | None = None
    """Set (to `system`, the audit log's word) for Kizuna's own parts acting on their own,
    e.g. the live loop's inventory of a backend's nodes: the actor its audit entries name."""

    @property
    def actor(self) -> str:
        if self.system is not None:
            return self.system
        return f"token:{self.token_id}" if self.token_id else f"person:{self.person_id}"

    @property
    def platform(self) -> frozenset[Role]:
        return frozenset(r for r in self.roles.values() if r in PLATFORM_ROLES)

    @property
    def sees_everything(self) -> bool:
        return bool(self.platform)

    @property
    def is_program_admin(self) -> bool:
        return Role.PROGRAM_ADMIN in self.platform

    @property
    def operates_cluster(self) -> bool:
        return bool(self.platform & {Role.PROGRAM_ADMIN, Role.CLUSTER_OPERATOR})

    def sees(self, organization_id: str | None) -> bool:
        """R1: may this caller know that objects of `organization_id` exist?"""
        return self.sees_everything or organization_id in self.roles

    def visible_organizations(self) -> frozenset[str] | None:
        """The organizations whose objects the caller may see; None: all of them."""
        return None if self.sees_everything else frozenset(self.roles)

    def administers(self, organization_id: str) -> bool:
        return self.is_program_admin or self.roles.get(organization_id) == Role.ORG_ADMIN

    def member_of(self, organization_id: str) -> bool:
        return self.roles.get(organization_id) in ORGANIZATION_ROLES
