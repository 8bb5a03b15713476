"""Members of an organization: add, filter by role, change role, remove."""

from __future__ import annotations

from kizuna.api.testing import Service


def test_members_come_and_go_with_their_roles(service: Service) -> None:
    service.org("acme")
    admin = service.person("acme", "org-admin")
    added = service.ok(
        "POST",
        "/organizations/acme/members",
        admin,
        json={"email": "Bob@Acme.example", "name": "Bob"},
    )
    assert (added["email"], added["role"]) == ("bob@acme.example", "member")
    again = service.call(
        "POST", "/organizations/acme/members", admin, json={"email": "bob@acme.example"}
    )
    assert again.status_code == 409
    admins = service.ok("GET", "/organizations/acme/members", params={"role": "org-admin"})
    assert [m["role"] for m in admins["items"]] == ["org-admin"]
    person = added["person_id"]
    changed = service.ok(
        "PATCH", f"/organizations/acme/members/{person}", admin, json={"role": "org-admin"}
    )
    assert changed["role"] == "org-admin"
    assert service.call("DELETE", f"/organizations/acme/members/{person}", admin).status_code == 204
    left = service.ok("GET", "/organizations/acme/members")["items"]
    assert person not in [m["person_id"] for m in left]


def test_platform_roles_live_only_in_the_program_office(service: Service) -> None:
    service.org("acme")
    refused = service.call(
        "POST", "/organizations/acme/members", json={"email": "eve@acme.example", "role": "auditor"}
    )
    assert refused.status_code == 422
    assert "only in a program-office organization" in refused.json()["detail"]


def test_someone_of_another_organization_is_added_by_a_program_admin(service: Service) -> None:
    service.org("acme")
    service.org("anvil")
    admin = service.person("acme", "org-admin")
    service.ok("POST", "/organizations/anvil/members", json={"email": "bo@anvil.example"})
    refused = service.call(
        "POST", "/organizations/acme/members", admin, json={"email": "bo@anvil.example"}
    )
    assert refused.status_code == 403
    assert service.ok("POST", "/organizations/acme/members", json={"email": "bo@anvil.example"})[
        "organization_id"
    ]
