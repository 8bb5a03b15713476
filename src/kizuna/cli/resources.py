"""`kizuna org|project|award|node|token ...`: the control plane's objects.

Each verb prints a short line or a plain table for people, or with `--output json` the
service's JSON (a list verb: one JSON array of every item, all pages followed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from kizuna.cli.choices import OrganizationKind as Kind
from kizuna.cli.client import Json, segment
from kizuna.cli.output import OutputFormat
from kizuna.cli.present import (
    Names,
    Output,
    day,
    emit,
    fields,
    hostlist,
    say,
    service,
    show,
    table,
    when,
)
from kizuna.services.principal import Role


def _group(help: str) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False)


org = _group("Organizations and their members.")
member = _group("Members of an organization and their roles.")
org.add_typer(member, name="member")
project = _group("Projects of organizations.")
award = _group("Awards: GPU-hours and a nominal share of one GPU type, for a project.")
node = _group("Nodes of the cluster (sinfo-like).")
token = _group("API tokens.")


def _done(output: OutputFormat, document: Json, line: str) -> None:
    if output is OutputFormat.JSON:
        emit(document)
    else:
        say(line)


# --- Organizations ---------------------------------------------------------------------


def _org_rows(items: list[Json]) -> Any:
    return table(
        ["NAME", "KIND", "DISPLAY_NAME", "ID", "CREATED"],
        [(o["name"], o["kind"], o["display_name"], o["id"], day(o["created_at"])) for o in items],
    )


@org.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="Short name: lower-case letters, digits, '-'.")],
    kind: Annotated[Kind, typer.Option(help="What kind of organization.")],
    display_name: Annotated[str, typer.Option(help="Name for people (default: NAME).")] = "",
    output: Output = OutputFormat.TABLE,
) -> None:
    """Create an organization (program admins)."""
    with service(output) as client:
        made = client.post(
            "/organizations", {"name": name, "kind": kind.value, "display_name": display_name}
        )
    _done(output, made, f"Created organization {made['name']} ({made['kind']}, {made['id']}).")


@org.command("list")
def org_list(
    kind: Annotated[Kind | None, typer.Option(help="Only organizations of this kind.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """The organizations you can see."""
    with service(output) as client:
        items = list(client.pages("/organizations", {"kind": kind.value if kind else None}))
    if output is OutputFormat.JSON:
        emit(items)
    else:
        show(_org_rows(items))


@org.command("show")
def org_show(
    ref: Annotated[str, typer.Argument(metavar="ORG", help="Organization name or id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """One organization."""
    with service(output) as client:
        found = client.get(f"/organizations/{segment(ref)}")
    if output is OutputFormat.JSON:
        emit(found)
        return
    fields(
        [
            ("Organization", found["name"]),
            ("Id", found["id"]),
            ("Kind", found["kind"]),
            ("DisplayName", found["display_name"]),
            ("Created", when(found["created_at"])),
        ]
    )


@member.command("add")
def member_add(
    ref: Annotated[str, typer.Argument(metavar="ORG", help="Organization name or id.")],
    email: Annotated[str, typer.Argument(help="The person's email (created if new).")],
    name: Annotated[str, typer.Option(help="The person's name, if new.")] = "",
    role: Annotated[Role, typer.Option(help="Their role in the organization.")] = Role.MEMBER,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Add a person to an organization."""
    with service(output) as client:
        made = client.post(
            f"/organizations/{segment(ref)}/members",
            {"email": email, "name": name, "role": role.value},
        )
    _done(output, made, f"Added {made['email']} ({made['person_id']}) to {ref} as {made['role']}.")


@member.command("list")
def member_list(
    ref: Annotated[str, typer.Argument(metavar="ORG", help="Organization name or id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """The members of an organization."""
    with service(output) as client:
        items = list(client.pages(f"/organizations/{segment(ref)}/members"))
    if output is OutputFormat.JSON:
        emit(items)
        return
    show(
        table(
            ["PERSON_ID", "EMAIL", "NAME", "ROLE", "SINCE"],
            [(m["person_id"], m["email"], m["name"], m["role"], day(m["since"])) for m in items],
        )
    )


@member.command("role")
def member_role(
    ref: Annotated[str, typer.Argument(metavar="ORG", help="Organization name or id.")],
    person_id: Annotated[str, typer.Argument(help="The member's person id.")],
    role: Annotated[Role, typer.Argument(help="Their new role.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Change a member's role."""
    with service(output) as client:
        changed = client.patch(
            f"/organizations/{segment(ref)}/members/{segment(person_id)}", {"role": role.value}
        )
    _done(output, changed, f"{changed['email']} is now {changed['role']} of {ref}.")


@member.command("remove")
def member_remove(
    ref: Annotated[str, typer.Argument(metavar="ORG", help="Organization name or id.")],
    person_id: Annotated[str, typer.Argument(help="The member's person id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Remove a person from an organization."""
    with service(output) as client:
        client.delete(f"/organizations/{segment(ref)}/members/{segment(person_id)}")
    _done(
        output,
        {"organization": ref, "person_id": person_id, "removed": True},
        f"Removed {person_id} from {ref}.",
    )


# --- Projects --------------------------------------------------------------------------


@project.command("create")
def project_create(
    ref: Annotated[str, typer.Argument(metavar="ORG/NAME", help="Organization and project name.")],
    description: Annotated[str, typer.Option(help="What the project does.")] = "",
    output: Output = OutputFormat.TABLE,
) -> None:
    """Create a project in an organization."""
    organization, slash, name = ref.partition("/")
    if not slash or not organization or not name or "/" in name:
        raise typer.BadParameter(f"{ref!r} is not ORG/NAME", param_hint="'ORG/NAME'")
    with service(output) as client:
        made = client.post(
            "/projects", {"organization": organization, "name": name, "description": description}
        )
    _done(output, made, f"Created project {organization}/{made['name']} ({made['id']}).")


@project.command("list")
def project_list(
    org_ref: Annotated[str | None, typer.Option("--org", help="Only this organization's.")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """The projects you can see."""
    with service(output) as client:
        items = list(client.pages("/projects", {"organization": org_ref}))
        names = Names(client)
        rows = [
            (names.project(p["id"]), p["id"], p["description"], day(p["created_at"])) for p in items
        ]
    if output is OutputFormat.JSON:
        emit(items)
    else:
        show(table(["PROJECT", "ID", "DESCRIPTION", "CREATED"], rows))


@project.command("show")
def project_show(
    ref: Annotated[str, typer.Argument(metavar="PROJECT", help="org/name, name or id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """One project and its awards."""
    with service(output) as client:
        found = client.get(f"/projects/{_project_path(ref)}")
        awards = list(client.pages("/awards", {"project": found["id"]}))
        full = Names(client).project(found["id"])
    if output is OutputFormat.JSON:
        emit(found)
        return
    fields(
        [
            ("Project", full),
            ("Id", found["id"]),
            ("OrganizationId", found["organization_id"]),
            ("Description", found["description"]),
            ("Created", when(found["created_at"])),
        ]
    )
    if awards:
        show(_award_table(awards, None))


def _project_path(ref: str) -> str:
    return "/".join(segment(part) for part in ref.split("/"))


# --- Awards ----------------------------------------------------------------------------


def parse_when(value: str, option: str) -> str:
    """An ISO date or datetime, taken as UTC when it names no zone, in RFC 3339."""
    try:
        found = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or datetime (2026-12-01, 2026-12-01T08:00)",
            param_hint=f"'{option}'",
        ) from None
    found = found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
    return found.isoformat().replace("+00:00", "Z")


def _award_table(items: list[Json], names: Names | None) -> Any:
    columns = ["ID", *(["PROJECT"] if names else []), "GPU_TYPE", "GPU_HOURS", "NOMINAL_GPUS"]
    rows = [
        (
            a["id"],
            *([names.project(a["project_id"])] if names else []),
            a["gpu_type"],
            f"{a['gpu_hours']:,.0f}",
            a["nominal_gpus"],
            "-" if a["borrowing_limit"] is None else a["borrowing_limit"],
            day(a["starts_at"]),
            day(a["ends_at"]),
        )
        for a in items
    ]
    return table([*columns, "BORROW_LIMIT", "STARTS", "ENDS"], rows)


@award.command("grant")
def award_grant(
    ref: Annotated[str, typer.Argument(metavar="PROJECT", help="org/name or project id.")],
    gpu_type: Annotated[str, typer.Option(help="GPU type, e.g. H100.")],
    gpu_hours: Annotated[int, typer.Option(min=1, help="GPU-hours granted.")],
    nominal_gpus: Annotated[int, typer.Option(min=0, help="GPUs guaranteed at a time.")],
    starts: Annotated[str, typer.Option(help="Start: ISO date or datetime, UTC.")],
    ends: Annotated[str, typer.Option(help="End: ISO date or datetime, UTC.")],
    borrowing_limit: Annotated[
        int | None, typer.Option(min=0, help="GPUs it may borrow above nominal (default: any).")
    ] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Grant a project GPU-hours of one GPU type between two dates (program admins)."""
    body: dict[str, Any] = {
        "project": ref,
        "gpu_type": gpu_type,
        "gpu_hours": gpu_hours,
        "nominal_gpus": nominal_gpus,
        "starts_at": parse_when(starts, "--starts"),
        "ends_at": parse_when(ends, "--ends"),
    }
    if borrowing_limit is not None:
        body["borrowing_limit"] = borrowing_limit
    with service(output) as client:
        made = client.post("/awards", body)
    _done(
        output,
        made,
        f"Granted award {made['id']}: {made['gpu_hours']:,.0f} {made['gpu_type']} GPU-hours, "
        f"{made['nominal_gpus']} nominal GPUs, to {ref} from {day(made['starts_at'])} "
        f"to {day(made['ends_at'])}.",
    )


@award.command("list")
def award_list(
    project_ref: Annotated[
        str | None, typer.Option("--project", help="Only this project's.")
    ] = None,
    org_ref: Annotated[str | None, typer.Option("--org", help="Only this organization's.")] = None,
    gpu_type: Annotated[str | None, typer.Option(help="Only this GPU type.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only awards active now.")] = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """The awards you can see."""
    params = {
        "project": project_ref,
        "organization": org_ref,
        "gpu_type": gpu_type,
        "active_at": datetime.now(UTC).isoformat().replace("+00:00", "Z") if active else None,
    }
    with service(output) as client:
        items = list(client.pages("/awards", params))
        rendered = None if output is OutputFormat.JSON else _award_table(items, Names(client))
    if rendered is None:
        emit(items)
    else:
        show(rendered)


@award.command("show")
def award_show(
    award_id: Annotated[str, typer.Argument(metavar="ID", help="The award's id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """One award."""
    with service(output) as client:
        found = client.get(f"/awards/{segment(award_id)}")
        full = Names(client).project(found["project_id"])
    if output is OutputFormat.JSON:
        emit(found)
        return
    fields(
        [
            ("Award", found["id"]),
            ("Project", full),
            ("GpuType", found["gpu_type"]),
            ("GpuHours", f"{found['gpu_hours']:,.0f}"),
            ("NominalGpus", found["nominal_gpus"]),
            ("BorrowingLimit", found["borrowing_limit"]),
            ("Starts", when(found["starts_at"])),
            ("Ends", when(found["ends_at"])),
            ("Created", when(found["created_at"])),
        ]
    )


@award.command("update")
def award_update(
    award_id: Annotated[str, typer.Argument(metavar="ID", help="The award's id.")],
    ends: Annotated[str | None, typer.Option(help="New end: ISO date or datetime, UTC.")] = None,
    nominal_gpus: Annotated[int | None, typer.Option(min=0, help="New nominal GPUs.")] = None,
    borrowing_limit: Annotated[int | None, typer.Option(min=0, help="New borrowing limit.")] = None,
    gpu_hours: Annotated[int | None, typer.Option(min=1, help="New GPU-hours.")] = None,
    unlimited_borrowing: Annotated[
        bool, typer.Option("--unlimited-borrowing", help="Lift the borrowing limit.")
    ] = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Extend, grow or shrink an award (program admins)."""
    if unlimited_borrowing and borrowing_limit is not None:
        raise typer.BadParameter(
            "give --borrowing-limit or --unlimited-borrowing, not both",
            param_hint="'--unlimited-borrowing'",
        )
    body: dict[str, Any] = {"borrowing_limit": None} if unlimited_borrowing else {}
    if ends is not None:
        body["ends_at"] = parse_when(ends, "--ends")
    for key, value in (
        ("nominal_gpus", nominal_gpus),
        ("borrowing_limit", borrowing_limit),
        ("gpu_hours", gpu_hours),
    ):
        if value is not None:
            body[key] = value
    if not body:
        raise typer.BadParameter(
            "give at least one of --ends, --nominal-gpus, --borrowing-limit,"
            " --unlimited-borrowing, --gpu-hours",
            param_hint="'ID'",
        )
    with service(output) as client:
        changed = client.patch(f"/awards/{segment(award_id)}", body)
    _done(
        output,
        changed,
        f"Updated award {changed['id']}: {changed['gpu_hours']:,.0f} GPU-hours, "
        f"{changed['nominal_gpus']} nominal GPUs, ends {day(changed['ends_at'])}.",
    )


# --- Nodes -----------------------------------------------------------------------------


@node.command("add")
def node_add(
    name: Annotated[str, typer.Argument(help="The node's name, e.g. h100-0.")],
    gpu_type: Annotated[str, typer.Option(help="GPU type, e.g. H100.")],
    gpus: Annotated[int, typer.Option(min=1, help="GPUs in the node.")],
    nvlink_domain: Annotated[str, typer.Option(help="NVLink domain it belongs to.")] = "",
    rack: Annotated[str, typer.Option(help="Rack it stands in.")] = "",
    output: Output = OutputFormat.TABLE,
) -> None:
    """Add a node to the cluster (cluster operators)."""
    with service(output) as client:
        made = client.post(
            "/nodes",
            {
                "name": name,
                "gpu_type": gpu_type,
                "gpus": gpus,
                "nvlink_domain": nvlink_domain,
                "rack": rack,
            },
        )
    _done(
        output,
        made,
        f"Added node {made['name']}: {made['gpus']} {made['gpu_type']}, {made['state']}.",
    )


@node.command("list")
def node_list(
    gpu_type: Annotated[str | None, typer.Option(help="Only nodes of this GPU type.")] = None,
    state: Annotated[str | None, typer.Option(help="Only nodes in this state.")] = None,
    per_node: Annotated[
        bool, typer.Option("--node", "-N", help="One line per node (like sinfo -N).")
    ] = False,
    output: Output = OutputFormat.TABLE,
) -> None:
    """The cluster like sinfo: nodes grouped by GPU type and state."""
    with service(output) as client:
        items = list(client.pages("/nodes", {"gpu_type": gpu_type, "state": state}))
    if output is OutputFormat.JSON:
        emit(items)
        return
    if per_node:
        show(
            table(
                ["NODELIST", "GPU_TYPE", "GPUS", "STATE", "NVLINK", "RACK"],
                [
                    (n["name"], n["gpu_type"], n["gpus"], n["state"], n["nvlink_domain"], n["rack"])
                    for n in items
                ],
            )
        )
        return
    groups: dict[tuple[str, str], list[Json]] = {}
    for n in items:
        groups.setdefault((n["gpu_type"], n["state"]), []).append(n)
    show(
        table(
            ["GPU_TYPE", "STATE", "NODES", "GPUS", "NODELIST"],
            [
                (t, s, len(ns), sum(n["gpus"] for n in ns), hostlist(n["name"] for n in ns))
                for (t, s), ns in sorted(groups.items())
            ],
        )
    )


def _node_fields(found: Json) -> None:
    fields(
        [
            ("NodeName", found["name"]),
            ("Id", found["id"]),
            ("GpuType", found["gpu_type"]),
            ("Gpus", found["gpus"]),
            ("State", found["state"]),
            ("NvlinkDomain", found["nvlink_domain"]),
            ("Rack", found["rack"]),
            ("Added", when(found["created_at"])),
        ]
    )


@node.command("show")
def node_show(
    name: Annotated[str, typer.Argument(help="Node name or id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """One node."""
    with service(output) as client:
        found = client.get(f"/nodes/{segment(name)}")
    if output is OutputFormat.JSON:
        emit(found)
    else:
        _node_fields(found)


def _set_state(name: str, state: str, verb: str, output: OutputFormat) -> None:
    with service(output) as client:
        changed = client.patch(f"/nodes/{segment(name)}", {"state": state})
    _done(output, changed, f"Node {changed['name']} {verb}: now {changed['state']}.")


@node.command("drain")
def node_drain(
    name: Annotated[str, typer.Argument(help="Node name or id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Let what runs on a node finish, start nothing new on it (Slurm's DRAIN)."""
    _set_state(name, "draining", "drains", output)


@node.command("resume")
def node_resume(
    name: Annotated[str, typer.Argument(help="Node name or id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Put a drained or down node back in service."""
    _set_state(name, "up", "resumed", output)


@node.command("down")
def node_down(
    name: Annotated[str, typer.Argument(help="Node name or id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Take a node out of service at once."""
    _set_state(name, "down", "is down", output)


# --- Tokens ----------------------------------------------------------------------------


def _token_rows(items: list[Json]) -> Any:
    now = datetime.now(UTC)
    rows = []
    for t in items:
        expires = datetime.fromisoformat(t["expires_at"].replace("Z", "+00:00"))
        status = "revoked" if t["revoked_at"] else ("expired" if expires <= now else "active")
        rows.append(
            (t["id"], t["name"], t["person_id"], status, day(t["created_at"]), day(t["expires_at"]))
        )
    return table(["ID", "NAME", "PERSON_ID", "STATUS", "CREATED", "EXPIRES"], rows)


@token.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[int, typer.Option(min=1, max=366, help="Lifetime in days.")] = 90,
    person: Annotated[
        str | None, typer.Option(help="Person id to make it for (default: you).")
    ] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Make an API token; its secret is shown once."""
    body: dict[str, Any] = {"name": name, "expires_in_days": expires_in_days}
    if person is not None:
        body["person_id"] = person
    with service(output) as client:
        made = client.post("/tokens", body)
    if output is OutputFormat.JSON:
        emit(made)
        return
    say(f"Created token {made['id']} ({made['name']}), expires {day(made['expires_at'])}.")
    say(f"Secret (shown once, store it now): {made['secret']}")


@token.command("list")
def token_list(
    person: Annotated[str | None, typer.Option(help="Person id (default: you).")] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """API tokens, without their secrets."""
    with service(output) as client:
        items = list(client.pages("/tokens", {"person_id": person}))
    if output is OutputFormat.JSON:
        emit(items)
    else:
        show(_token_rows(items))


@token.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (tok_...).")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Revoke a token: it signs nobody in from now on."""
    with service(output) as client:
        revoked = client.post(f"/tokens/{segment(token_id)}/revoke")
    _done(output, revoked, f"Revoked token {revoked['id']} ({revoked['name']}).")
