"""The tenancy matrix (ADR 0019, Kizuna issue 4): to a person of one organization, the objects
of another do not exist (404 with the sentence of a missing object, never 403), lists leave
them out, nothing the person does changes them, and inside an organization each role does
what R3 gives it and gets 403 (R2) for the rest.

The world, built once per test: organizations A (`anvil`) and B (`beacon`), each with a
project, an award, an org admin and a member with tokens, and jobs; the program office's
program admin, cluster operator and auditor. The route tables below are checked against the
app's own routes, so a new route fails `test_the_matrix_covers_every_route` until it is in them.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from httpx2 import Response
from sqlalchemy import update

from kizuna.api.testing import API, AWARD_WINDOW, Service
from kizuna.services.ids import new_id
from kizuna.store.engine import writing
from kizuna.store.tables import ApiToken

PROGRAM_OFFICE = "program-office"
PROGRAM_ADMIN_EMAIL = "admin@office.example"  # made by the `service` fixture's bootstrap
NODES = ("h100-0", "h100-1")
UNAUTHENTICATED = "the token is unknown, expired or revoked"

# ----------------------------------------------------------------------------------------------
# The world


@dataclass(frozen=True)
class Person:
    token: str
    """The bearer secret."""
    id: str
    email: str
    token_id: str


@dataclass(frozen=True)
class Tenant:
    name: str
    id: str
    project: str
    """The project's name; `ref` is `org/name`."""
    project_id: str
    award: str
    admin: Person
    member: Person
    job: int
    """A job of the member's."""

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.project}"

    def refs(self) -> dict[str, str]:
        """What a probe may name of this organization, by placeholder."""
        return {
            "org": self.name,
            "org_id": self.id,
            "own_org": self.name,
            "project": self.ref,
            "project_id": self.project_id,
            "project_name": self.project,
            "award": self.award,
            "job": str(self.job),
            "person": self.member.id,
            "token": self.member.token_id,
            "email": self.member.email,
        }


def missing_refs() -> dict[str, str]:
    """Objects of the same shapes that do not exist."""
    now = datetime.now(UTC)
    return {
        "org": "nowhere",
        "org_id": new_id("organization", now),
        "project": "nowhere/lantern",
        "project_id": new_id("project", now),
        "project_name": "nothing",
        "award": new_id("award", now),
        "job": "999999",
        "person": new_id("person", now),
        "token": new_id("token", now),
        "email": "nobody@nowhere.example",
    }


def enrol(service: Service, org: str, role: str, label: str = "") -> Person:
    email = f"{label or role}@{org}.example"
    added = service.ok("POST", f"/organizations/{org}/members", json={"email": email, "role": role})
    token = service.ok("POST", "/tokens", json={"name": "t", "person_id": added["person_id"]})
    return Person(token["secret"], added["person_id"], email, token["id"])


def submit(service: Service, project: str, gpus: int, who: Person) -> int:
    job_id: int = service.job(project, gpus=gpus, token=who.token)["id"]
    return job_id


def tenant(service: Service, name: str, project: str, gpus: int) -> Tenant:
    org = service.org(name)
    made = service.project(name, project)
    award = service.award(f"{name}/{project}", nominal=24)
    admin, member = enrol(service, name, "org-admin"), enrol(service, name, "member")
    job = submit(service, f"{name}/{project}", gpus, member)
    return Tenant(name, org["id"], project, made["id"], award["id"], admin, member, job)


@dataclass
class World:
    service: Service
    a: Tenant
    b: Tenant
    a_waiting: int
    """A job of A's admin that waits behind B's job (J3: its reason must not name that job)."""

    @cached_property
    def operator(self) -> Person:
        return enrol(self.service, PROGRAM_OFFICE, "cluster-operator")

    @cached_property
    def auditor(self) -> Person:
        return enrol(self.service, PROGRAM_OFFICE, "auditor")

    def as_(self, role: str) -> Person:
        return {"org-admin": self.a.admin, "member": self.a.member}[role]

    def snapshot(self, *tenants: Tenant, audit: bool = True) -> list[Any]:
        """Everything of `tenants` as the program admin reads it, with the audit log's size."""
        s = self.service
        seen: list[Any] = []
        for t in tenants:
            seen.append(s.ok("GET", f"/organizations/{t.id}"))
            by_org = {"organization": t.id, "limit": 500}
            seen.append(s.ok("GET", f"/organizations/{t.id}/members", params={"limit": 500}))
            seen += [s.ok("GET", path, params=by_org) for path in ("/projects", "/awards", "/jobs")]
            seen += [
                s.ok("GET", "/tokens", params={"person_id": p.id}) for p in (t.admin, t.member)
            ]
        seen += [s.ok("GET", path, params={"limit": 500}) for path in ("/organizations", "/nodes")]
        if audit:
            seen.append(s.audit_size())
        return seen

    def b_marks(self) -> list[re.Pattern[str]]:
        """What of B must never reach A: names, ids, people, tokens, its job's id."""
        b = self.b
        words = [b.name, b.id, b.project, b.project_id, b.award]
        words += [x for p in (b.admin, b.member) for x in (p.id, p.email, p.token_id)]
        marks = [re.compile(rf"(?<![\w-]){re.escape(w)}(?![\w-])") for w in words]
        return [*marks, re.compile(rf'"id":\s*{b.job}(?!\d)'), re.compile(rf"\bjob {b.job}\b")]

    def leaks(self, text: str) -> list[str]:
        return [m.pattern for m in self.b_marks() if m.search(text)]


@pytest.fixture
def world(service: Service) -> World:
    for node in NODES:
        service.node(node)
    b = tenant(service, "beacon", "lantern", gpus=8)  # B's job is job 1, and waits: 0 free
    a = tenant(service, "anvil", "forge", gpus=16)  # starts at the next cycle
    waiting = submit(service, a.ref, 8, a.admin)  # waits behind B's job 1
    return World(service, a, b, waiting)


# ----------------------------------------------------------------------------------------------
# The probes: a call that names an object by placeholders, and what it must answer


@dataclass(frozen=True)
class Probe:
    method: str
    route: str
    """The route as the app names it, under /api/v1."""
    path: str
    detail: str | None = None
    """The expected detail; None in FILTERS: a 404 or an empty list will do."""
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None
    status: int = 404

    def __str__(self) -> str:
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        body = f" {json.dumps(self.body)}" if self.body else ""
        return f"{self.method} {self.path}{query}{body}"

    def placeholders(self) -> set[str]:
        texts = [self.path, *strings(self.body), *(self.query or {}).values()]
        return {f for t in texts for _, f, _, _ in string.Formatter().parse(t) if f}

    def call(self, service: Service, who: Person, refs: Mapping[str, str]) -> Response:
        kwargs: dict[str, Any] = {"params": fill(self.query, refs)} if self.query else {}
        if self.body is not None:
            kwargs["json"] = fill(self.body, refs)
        return service.call(self.method, fill(self.path, refs), who.token, **kwargs)

    def named(self, refs: Mapping[str, str]) -> list[str]:
        """The values this probe names: the caller said them, so an answer may repeat them."""
        return sorted({refs[p] for p in self.placeholders()}, key=len, reverse=True)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for v in value.values() if isinstance(value, dict) else value:
            yield from strings(v)


def fill(template: Any, refs: Mapping[str, str]) -> Any:
    if isinstance(template, str):
        return template.format_map(refs)
    if isinstance(template, dict):
        return {k: fill(v, refs) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, refs) for v in template]
    return template


def redacted(value: Any, named: list[str]) -> Any:
    """`value` with each of `named` replaced by `<ref>` where it stands as a whole word."""
    if isinstance(value, str):
        for word in named:
            value = re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", "<ref>", value)
        return value
    if isinstance(value, dict):
        return {k: redacted(v, named) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, named) for v in value]
    return value


def answer(response: Response, named: list[str]) -> tuple[int, str | None, Any]:
    body = response.json() if response.content else None
    return response.status_code, response.headers.get("content-type"), redacted(body, named)


def problem(status: int, detail: str) -> dict[str, Any]:
    titles = {401: "Not signed in", 403: "Forbidden", 404: "Not found"}
    return {"type": "about:blank", "title": titles[status], "status": status, "detail": detail}


JOB = {"command": ["python", "train.py"], "gpus": 8, "gpu_type": "H100", "walltime": 3600}
AWARD = {"gpu_type": "H100", "gpu_hours": 10, "nominal_gpus": 8, **AWARD_WINDOW}

FOREIGN: list[Probe] = [
    # organizations and members, by name and by id; members of B named in A's own organization
    Probe("GET", "/organizations/{org}", "/organizations/{org}", "no organization {org}"),
    Probe("GET", "/organizations/{org}", "/organizations/{org_id}", "no organization {org_id}"),
    *(
        Probe(
            "PATCH",
            "/organizations/{org}",
            f"/organizations/{{{ref}}}",
            f"no organization {{{ref}}}",
            {"display_name": "Taken Over"},
        )
        for ref in ("org", "org_id")
    ),
    Probe(
        "GET",
        "/organizations/{org}/members",
        "/organizations/{org}/members",
        "no organization {org}",
    ),
    Probe(
        "POST",
        "/organizations/{org}/members",
        "/organizations/{org}/members",
        "no organization {org}",
        {"email": "intruder@anvil.example", "role": "member"},
    ),
    Probe(
        "PATCH",
        "/organizations/{org}/members/{person_id}",
        "/organizations/{org}/members/{person}",
        "no organization {org}",
        {"role": "org-admin"},
    ),
    Probe(
        "DELETE",
        "/organizations/{org}/members/{person_id}",
        "/organizations/{org}/members/{person}",
        "no organization {org}",
    ),
    Probe(
        "PATCH",
        "/organizations/{org}/members/{person_id}",
        "/organizations/{own_org}/members/{person}",
        "no member {person}",
        {"role": "org-admin"},
    ),
    Probe(
        "DELETE",
        "/organizations/{org}/members/{person_id}",
        "/organizations/{own_org}/members/{person}",
        "no member {person}",
    ),
    # projects by org/name, id and bare name
    *(
        Probe(
            method,
            "/projects/{project:path}",
            f"/projects/{{{ref}}}",
            f"no project {{{ref}}}",
            body,
        )
        for ref in ("project", "project_id", "project_name")
        for method, body in (("GET", None), ("PATCH", {"description": "taken over"}))
    ),
    Probe("GET", "/awards/{award}", "/awards/{award}", "no award {award}"),
    Probe("PATCH", "/awards/{award}", "/awards/{award}", "no award {award}", {"nominal_gpus": 0}),
    Probe("GET", "/jobs/{job}", "/jobs/{job}", "no job {job}"),
    Probe("GET", "/jobs/{job}/reason", "/jobs/{job}/reason", "no job {job}"),
    Probe("POST", "/jobs/{job}/cancel", "/jobs/{job}/cancel", "no job {job}"),
    Probe("GET", "/jobs/{job}/runs", "/jobs/{job}/runs", "no job {job}"),
    Probe("GET", "/jobs/{job}/logs", "/jobs/{job}/logs", "no job {job}"),
    Probe("GET", "/tokens/{token}", "/tokens/{token}", "no token {token}"),
    Probe("POST", "/tokens/{token}/revoke", "/tokens/{token}/revoke", "no token {token}"),
    # objects named in a body
    Probe(
        "POST",
        "/projects",
        "/projects",
        "no organization {org}",
        {"organization": "{org}", "name": "outpost"},
    ),
    Probe("POST", "/awards", "/awards", "no project {project}", {"project": "{project}", **AWARD}),
    Probe("POST", "/jobs", "/jobs", "no project {project}", {"project": "{project}", **JOB}),
    Probe(
        "POST",
        "/tokens",
        "/tokens",
        "no person {person}",
        {"name": "borrowed", "person_id": "{person}"},
    ),
]

# One sentence for a wrong password of B's member and for an email nobody has
LOGIN = Probe(
    "POST",
    "/login",
    "/login",
    "wrong email or password",
    {"email": "{email}", "password": "not-the-password"},
    status=401,
)

FILTERS: list[Probe] = [
    Probe("GET", "/projects", "/projects", query={"organization": "{org}"}),
    Probe("GET", "/projects", "/projects", query={"organization": "{org_id}"}),
    Probe("GET", "/awards", "/awards", query={"organization": "{org}"}),
    Probe("GET", "/awards", "/awards", query={"project": "{project}"}),
    Probe("GET", "/awards", "/awards", query={"project": "{project_name}"}),
    Probe("GET", "/jobs", "/jobs", query={"organization": "{org}"}),
    Probe("GET", "/jobs", "/jobs", query={"project": "{project}"}),
    Probe("GET", "/jobs", "/jobs", query={"project": "{project_id}"}),
    Probe("GET", "/jobs", "/jobs", query={"submitted_by": "{person}"}),
    Probe("GET", "/tokens", "/tokens", query={"person_id": "{person}"}),
    Probe("GET", "/balances", "/balances", query={"organization": "{org}"}),
    Probe("GET", "/balances", "/balances", query={"project": "{project}"}),
    Probe("GET", "/usage", "/usage", query={"organization": "{org}"}),
    Probe("GET", "/usage", "/usage", query={"project": "{project_id}"}),
    Probe("GET", "/history/jobs", "/history/jobs", query={"organization": "{org}"}),
    Probe("GET", "/history/jobs", "/history/jobs", query={"project": "{project}"}),
]

# Lists every signed-in person may call: (path, what each item must belong to)
LISTS: dict[str, str] = {
    "/organizations": "id",
    "/projects": "organization_id",
    "/awards": "organization_id",
    "/jobs": "organization_id",
    "/tokens": "person_id",
    "/organizations/{own_org}/members": "organization_id",
    "/nodes": "",  # R4: node facts are not tenant data
    "/balances": "organization_id",
}
LIST_ROUTES = {("GET", p.replace("{own_org}", "{org}")) for p in LISTS}

# Reads that name no tenant object: they must not mention B either.
SHARED_READS: dict[tuple[str, str], int] = {
    ("GET", "/whoami"): 200,
    ("GET", "/health"): 200,
    ("GET", "/nodes/{node}"): 200,
    ("GET", "/audit/key"): 200,
    ("GET", "/audit/checkpoints"): 200,
    ("GET", "/audit/checkpoints/latest"): 200,
    ("GET", "/audit/checkpoints/{size}"): 200,
    ("GET", "/audit/proofs/inclusion"): 200,
    ("GET", "/audit/proofs/consistency"): 200,
    ("GET", "/audit/entries"): 403,  # every organization's changes: platform roles only
    ("GET", "/usage"): 200,  # no run has ended in this world: the report must not name B
}

# Changes to the cluster and the program, refused to everyone but platform roles.
PLATFORM_CHANGES: list[Probe] = [
    Probe(
        "POST",
        "/organizations",
        "/organizations",
        body={"name": "rogue", "kind": "startup"},
        status=403,
    ),
    Probe(
        "POST",
        "/nodes",
        "/nodes",
        body={"name": "rogue-0", "gpu_type": "H100", "gpus": 8},
        status=403,
    ),
    Probe("PATCH", "/nodes/{node}", "/nodes/h100-0", body={"state": "down"}, status=403),
    Probe("POST", "/audit/checkpoints", "/audit/checkpoints", status=403),
]

# Writes an auditor may do, as anyone may, to itself or to the log's checkpoints
SELF_SERVICE: dict[tuple[str, str], str] = {
    ("PUT", "/password"): "sets the caller's own password",
    ("POST", "/login"): "signs in with email and password; no token involved",
}

ROLES = ["org-admin", "member"]


def assert_none(problems: list[str]) -> None:
    assert not problems, "; ".join(problems)


TENANT_PARAMS = ("{org}", "{project:path}", "{award}", "{job}", "{token}", "{person_id}")


def app_of(service: Service) -> FastAPI:
    app = service.client.app
    assert isinstance(app, FastAPI)
    return app


def app_routes(service: Service) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app_of(service).routes):
        if isinstance(route.original_route, APIRoute):
            assert route.path is not None and route.methods is not None
            found |= {(m, route.path.removeprefix(API)) for m in route.methods}
    return found


def covered() -> set[tuple[str, str]]:
    probes = [*FOREIGN, *FILTERS, *PLATFORM_CHANGES, LOGIN]
    return (
        {(p.method, p.route) for p in probes}
        | LIST_ROUTES
        | SHARED_READS.keys()
        | set(SELF_SERVICE)
    )


def test_the_matrix_covers_every_route(service: Service) -> None:
    routes = app_routes(service)
    assert {("GET", "/jobs"), ("POST", "/jobs/{job}/cancel")} <= routes  # the walk works
    assert routes - covered() == set(), "routes the tenancy matrix does not cover"
    assert covered() - routes == set(), "routes in the matrix that the app no longer has"
    named_objects = {r for r in routes if any(p in r[1] for p in TENANT_PARAMS)}
    foreign = {(p.method, p.route) for p in FOREIGN}
    assert named_objects - foreign == set(), "routes naming a tenant object without a 404 probe"
    changes = {r for r in routes if r[0] != "GET"}
    refused = {(p.method, p.route) for p in [*FOREIGN, *PLATFORM_CHANGES]}
    assert changes - refused - SELF_SERVICE.keys() == set(), "writes not refused to the auditor"


# ----------------------------------------------------------------------------------------------
# 1 and 3: another organization's objects, named in a path, a body or a filter


def check_probe(world: World, who: Person, probe: Probe, where: str) -> None:
    """B's object must get exactly the answer a missing object of its shape gets."""
    foreign, missing = world.b.refs(), {**missing_refs(), "own_org": world.a.name}
    foreign["own_org"] = world.a.name
    got = probe.call(world.service, who, foreign)
    baseline = probe.call(world.service, who, missing)
    where = f"{probe} as {where}: {got.status_code} {got.text}"
    assert answer(got, probe.named(foreign)) == answer(baseline, probe.named(missing)), where
    if probe.detail is None:
        empty = got.status_code == 200 and got.json()["items"] == []
        assert got.status_code == 404 or empty, where
    else:
        assert got.status_code == probe.status, where
        assert got.json() == problem(probe.status, fill(probe.detail, foreign)), where
    assert world.leaks(str(redacted(got.text, probe.named(foreign)))) == [], where


@pytest.mark.parametrize("role", ROLES)
def test_to_each_role_another_organization_does_not_exist(world: World, role: str) -> None:
    before = world.snapshot(world.a, world.b)
    for probe in [*FOREIGN, *FILTERS]:
        check_probe(world, world.as_(role), probe, role)
    check_lists_and_shared_reads(world, role)
    assert world.snapshot(world.a, world.b) == before


# ----------------------------------------------------------------------------------------------
# 2: lists, and reads that name no tenant object


def shared_read(world: World, who: Person, route: tuple[str, str], size: int) -> Response:
    paths = {
        "/nodes/{node}": f"/nodes/{NODES[0]}",
        "/audit/checkpoints/{size}": f"/audit/checkpoints/{size}",
    }
    params = {
        "/audit/proofs/inclusion": {"leaf_index": 0, "size": size},
        "/audit/proofs/consistency": {"first": 1, "size": size},
    }
    method, path = route
    return world.service.call(method, paths.get(path, path), who.token, params=params.get(path, {}))


def check_lists_and_shared_reads(world: World, role: str) -> None:
    """Lists hold only the caller's organization's items; shared reads name nothing of B."""
    who, a = world.as_(role), world.a
    mine = {
        "/organizations": a.id,
        "/projects": a.project_id,
        "/awards": a.award,
        "/jobs": a.job,
        "/tokens": who.token_id,
        "/organizations/{own_org}/members": who.id,
        "/nodes": NODES[0],
        "/balances": a.award,
    }
    for path, owner in LISTS.items():
        got = world.service.call("GET", path.format(own_org=a.name), who.token)
        where = f"GET {path} as {role}: {got.text}"
        assert got.status_code == 200, where
        items = got.json()["items"]
        keys = {"id", "name", "person_id", "award_id"}
        assert any(mine[path] in {i.get(k) for k in keys} for i in items), where
        if owner:
            expected = who.id if owner == "person_id" else a.id
            assert {i[owner] for i in items} == {expected}, where
        assert world.leaks(got.text) == [], where
    size = world.service.ok("GET", "/audit/checkpoints/latest")["size"]
    for route, status in SHARED_READS.items():
        got = shared_read(world, who, route, size)
        assert got.status_code == status, f"{route} as {role}: {got.text}"
        assert world.leaks(got.text) == [], f"{route} as {role}: {got.text}"
    # J3/R5: A's job waits behind B's job 1, and its reason says so without naming it
    for path in (f"/jobs/{world.a_waiting}", f"/jobs/{world.a_waiting}/reason"):
        got = world.service.call("GET", path, who.token)
        assert got.status_code == 200 and "a job of another organization" in got.text, got.text
        assert world.leaks(got.text) == [], got.text


# ----------------------------------------------------------------------------------------------
# 4: roles inside their own organization and on the platform


def refused(world: World, who: Person, probes: list[Probe], refs: Mapping[str, str]) -> None:
    for probe in probes:
        got = probe.call(world.service, who, refs)
        assert got.status_code == 403, f"{probe} by {who.email}: {got.status_code} {got.text}"
        assert got.json()["detail"], got.text


def own_org_probes(a: Tenant, admin: Person) -> list[Probe]:
    """What a member of A may not do in A: run it, or touch another person or their things."""
    return [
        Probe("POST", "/projects", "/projects", body={"organization": a.name, "name": "side"}),
        Probe(
            "PATCH",
            "/organizations/{org}",
            f"/organizations/{a.name}",
            body={"display_name": "Mine"},
        ),
        Probe(
            "POST",
            "/organizations/{org}/members",
            f"/organizations/{a.name}/members",
            body={"email": "friend@anvil.example", "role": "member"},
        ),
        Probe(
            "PATCH",
            "/organizations/{org}/members/{person_id}",
            f"/organizations/{a.name}/members/{admin.id}",
            body={"role": "member"},
        ),
        Probe(
            "DELETE",
            "/organizations/{org}/members/{person_id}",
            f"/organizations/{a.name}/members/{admin.id}",
        ),
        Probe(
            "PATCH", "/projects/{project:path}", f"/projects/{a.ref}", body={"description": "mine"}
        ),
        Probe("POST", "/tokens", "/tokens", body={"name": "borrowed", "person_id": admin.id}),
        Probe("GET", "/tokens", "/tokens", query={"person_id": admin.id}),
        *awards_and_platform(a),
    ]


def awards_and_platform(a: Tenant) -> list[Probe]:
    """What only the program admin (awards, organizations) or an operator (nodes) does."""
    return [
        Probe("POST", "/awards", "/awards", body={"project": a.ref, **AWARD}),
        Probe("PATCH", "/awards/{award}", f"/awards/{a.award}", body={"nominal_gpus": 0}),
        *PLATFORM_CHANGES,
        Probe("GET", "/audit/entries", "/audit/entries"),
    ]


def cancel(world: World, who: Person, job: int) -> Response:
    return world.service.call("POST", f"/jobs/{job}/cancel", who.token)


def test_members_and_org_admins_do_what_their_role_allows(world: World) -> None:
    a, s = world.a, world.service
    other = enrol(s, a.name, "member", "member-2")
    others_job = submit(s, a.ref, 8, other)
    before, b_before = world.snapshot(a, world.b), world.snapshot(world.b, audit=False)
    refused(world, a.member, own_org_probes(a, a.admin), {})
    assert cancel(world, a.member, others_job).status_code == 403
    assert cancel(world, a.member, world.a_waiting).status_code == 403  # the admin's job
    refused(world, a.admin, awards_and_platform(a), {})
    assert world.snapshot(a, world.b) == before
    done = cancel(world, a.member, a.job)
    assert done.status_code == 200 and done.json()["state"] == "cancelled", done.text
    assert cancel(world, a.admin, others_job).json()["state"] == "cancelled"
    made = s.call("POST", "/projects", a.admin.token, json={"organization": a.name, "name": "p2"})
    assert made.status_code == 201, made.text
    assert world.snapshot(world.b, audit=False) == b_before


def test_the_auditor_reads_everything_and_changes_nothing(world: World) -> None:
    auditor, s = world.auditor, world.service
    before = world.snapshot(world.a, world.b)
    for t in (world.a, world.b):
        refs = t.refs()
        for probe in [*FOREIGN, *FILTERS]:
            if probe.method != "GET" or probe.route.startswith("/tokens"):
                continue  # token reads: test_the_auditor_reads_tokens_and_cannot_revoke_them
            got = probe.call(s, auditor, refs)
            assert got.status_code == 200, f"{probe} of {t.name}: {got.text}"
        for probe in [p for p in FOREIGN if p.method != "GET"]:
            got = probe.call(s, auditor, refs)
            assert got.status_code == 403, f"{probe} of {t.name}: {got.text}"
    refused(world, auditor, PLATFORM_CHANGES, {})
    assert world.snapshot(world.a, world.b) == before
    assert world.leaks(s.call("GET", "/audit/entries", auditor.token).text) != []  # it reads B


def test_the_auditor_reads_tokens_and_cannot_revoke_them(world: World) -> None:
    auditor, s, member = world.auditor, world.service, world.b.member
    listed = s.call("GET", "/tokens", auditor.token, params={"person_id": member.id})
    shown = s.call("GET", f"/tokens/{member.token_id}", auditor.token)
    revoked = s.call("POST", f"/tokens/{member.token_id}/revoke", auditor.token)
    assert whoami(world, member.token).status_code == 200  # whatever the answers, no change
    expected = [("GET /tokens?person_id=", listed, 200), ("GET /tokens/{id}", shown, 200)]
    expected += [("POST /tokens/{id}/revoke", revoked, 403)]
    assert_none(
        [f"{what}: {got.status_code}" for what, got, want in expected if got.status_code != want]
    )


def test_the_operator_runs_the_cluster_and_only_the_program_admin_grants_awards(
    world: World,
) -> None:
    operator, s, a = world.operator, world.service, world.a
    for t in (a, world.b):
        got = s.call("GET", f"/organizations/{t.name}", operator.token)
        assert got.status_code == 200, got.text
        done = cancel(world, operator, t.job)
        assert done.status_code == 200 and done.json()["state"] == "cancelled", done.text
    node = {"name": "h100-2", "gpu_type": "H100", "gpus": 8}
    assert s.call("POST", "/nodes", operator.token, json=node).status_code == 201
    drained = s.call("PATCH", f"/nodes/{NODES[1]}", operator.token, json={"state": "draining"})
    assert drained.status_code == 200 and drained.json()["state"] == "draining", drained.text
    people = (a.admin, a.member, operator, world.auditor)
    before = world.snapshot(a, world.b)
    for who in people:
        grant = s.call("POST", "/awards", who.token, json={"project": a.ref, **AWARD})
        change = s.call("PATCH", f"/awards/{a.award}", who.token, json={"nominal_gpus": 0})
        for got in (grant, change):
            assert got.status_code == 403, f"{who.email}: {got.text}"
            assert "only a program admin" in got.json()["detail"], got.text
    refused(
        world,
        operator,
        [
            PLATFORM_CHANGES[0],  # organizations
            Probe("POST", "/projects", "/projects", body={"organization": a.name, "name": "ops"}),
            Probe(
                "POST",
                "/organizations/{org}/members",
                f"/organizations/{a.name}/members",
                body={"email": "ops@anvil.example", "role": "org-admin"},
            ),
        ],
        {},
    )
    assert world.snapshot(a, world.b) == before
    assert s.call("POST", "/awards", json={"project": a.ref, **AWARD}).status_code == 201
    assert s.ok("PATCH", f"/awards/{a.award}", json={"nominal_gpus": 0})["nominal_gpus"] == 0


# ----------------------------------------------------------------------------------------------
# 5: tokens


def whoami(world: World, secret: str) -> Response:
    return world.service.call("GET", "/whoami", secret)


def test_an_org_admin_manages_its_members_tokens_and_a_dead_token_gets_401(world: World) -> None:
    s, admin, member, theirs = world.service, world.a.admin, world.a.member, world.b.member
    listed = s.call("GET", "/tokens", admin.token, params={"person_id": member.id})
    assert [t["id"] for t in listed.json()["items"]] == [member.token_id], listed.text
    assert s.call("GET", f"/tokens/{member.token_id}", admin.token).status_code == 200
    for method, path, params in (
        ("GET", "/tokens", {"person_id": theirs.id}),
        ("GET", f"/tokens/{theirs.token_id}", {}),
        ("POST", f"/tokens/{theirs.token_id}/revoke", {}),
    ):
        got = s.call(method, path, admin.token, params=params)
        assert got.status_code == 404, f"{method} {path}: {got.text}"
    assert whoami(world, theirs.token).status_code == 200
    # a member may not touch its admin's token: tokens.get answers 404 to non-managers
    assert s.call("POST", f"/tokens/{admin.token_id}/revoke", member.token).status_code == 404
    assert whoami(world, admin.token).status_code == 200
    revoked = s.call("POST", f"/tokens/{member.token_id}/revoke", admin.token)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    assert s.ok("GET", f"/tokens/{member.token_id}", admin.token)["revoked_at"]
    # revoked (the member's), expired (the admin's) and unknown: one 401, one sentence
    with writing(app_of(s).state.kizuna.sessions) as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == admin.token_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    for secret in (member.token, admin.token, "kz_" + "x" * 43):
        got = whoami(world, secret)
        assert got.status_code == 401, got.text
        assert got.json() == problem(401, UNAUTHENTICATED), got.text
        assert got.headers["www-authenticate"] == "Bearer"
    for path in (f"/jobs/{world.a.job}", "/projects", f"/organizations/{world.a.name}"):
        assert s.call("GET", path, member.token).status_code == 401
        assert s.call("GET", path, admin.token).status_code == 401
    assert whoami(world, theirs.token).status_code == 200
    # signing in: B's member's email with a wrong password answers as an unknown email does
    s.ok("PUT", "/password", theirs.token, json={"password": "b" * 16})
    check_probe(world, admin, LOGIN, "anyone")


def test_an_org_admin_cannot_get_a_token_acting_outside_its_organization(world: World) -> None:
    s, admin = world.service, world.a.admin
    stolen = {}
    for victim in (world.b.member.email, PROGRAM_ADMIN_EMAIL):
        added = s.call(
            "POST",
            f"/organizations/{world.a.name}/members",
            admin.token,
            json={"email": victim, "role": "member"},
        )
        if added.status_code != 201:
            continue  # refusing to enrol someone of another organization closes the hole
        issued = s.call(
            "POST",
            "/tokens",
            admin.token,
            json={"name": "borrowed", "person_id": added.json()["person_id"]},
        )
        if issued.status_code == 201:
            roles = whoami(world, issued.json()["secret"]).json()["roles"]
            if set(roles) - {world.a.id}:
                stolen[victim] = roles
    assert_none(
        [f"A's admin holds a token of {who} with the roles {r}" for who, r in stolen.items()]
    )
