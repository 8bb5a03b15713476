"""Every change leaves an audit entry in its own transaction; the log verifies end to end."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import update

from kizuna.api.testing import Service
from kizuna.audit.checkpoint import VerifierKey
from kizuna.audit.record import AuditRecord
from kizuna.audit.verify import verify_extension, verify_log, verify_record
from kizuna.store.engine import writing
from kizuna.store.tables import AuditEntry


def records(service: Service) -> list[AuditRecord]:
    items: list[dict[str, Any]] = service.ok("GET", "/audit/entries")["items"]
    return [AuditRecord.from_json(item["record"]) for item in items]


def key(service: Service) -> VerifierKey:
    return VerifierKey.from_text(service.ok("GET", "/audit/key")["key"])


def test_each_change_is_one_entry_with_who_what_and_before_after(service: Service) -> None:
    service.org("acme")
    service.project("acme", "llm")
    service.ok("PATCH", "/projects/acme/llm", json={"description": "a 7B model"})
    service.audit_size()
    log = records(service)
    actions = [r.action for r in log]
    assert actions[-3:] == ["organization.create", "project.create", "project.update"]
    change = log[-1]
    assert change.before is not None and change.after is not None
    assert change.before["description"] == "" and change.after["description"] == "a 7B model"
    assert change.actor.startswith("token:")
    assert [r.seq for r in log] == list(range(len(log)))


def test_a_refused_change_leaves_no_entry(service: Service) -> None:
    service.org("acme")
    size = service.audit_size()
    assert (
        service.call("POST", "/organizations", json={"name": "acme", "kind": "startup"}).status_code
        == 409
    )
    assert service.audit_size() == size


def test_the_log_verifies_and_checkpoints_extend_each_other(service: Service) -> None:
    service.org("acme")
    first = service.ok("POST", "/audit/checkpoints")
    service.project("acme", "llm")
    second = service.ok("POST", "/audit/checkpoints")
    listed = service.ok("GET", "/audit/checkpoints")["items"]
    assert [c["note"] for c in listed] == [first["note"], second["note"]]
    report = verify_log(records(service), [first["note"], second["note"]], key(service))
    assert report.problems == () and report.latest_size == second["size"]
    proof = service.ok(
        "GET", "/audit/proofs/consistency", params={"first": first["size"], "size": second["size"]}
    )
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    assert (
        verify_extension(first["note"], second["note"], hashes, key(service)).size == second["size"]
    )
    one = records(service)[1]
    inclusion = service.ok(
        "GET", "/audit/proofs/inclusion", params={"leaf_index": 1, "size": second["size"]}
    )
    verify_record(
        one, 1, [base64.b64decode(h) for h in inclusion["proof"]], second["note"], key(service)
    )


def test_a_rewritten_entry_is_caught(service: Service) -> None:
    service.org("acme")
    note = service.ok("POST", "/audit/checkpoints")["note"]
    wired = service.client.app.state.kizuna  # type: ignore[attr-defined]
    with writing(wired.sessions) as session:
        session.execute(
            update(AuditEntry).where(AuditEntry.leaf_index == 1).values(actor="person:someone-else")
        )
    report = verify_log(records(service), [note], key(service))
    assert report.problems, "a changed record must not verify"


def test_only_platform_roles_read_entries_but_anyone_checks_checkpoints(
    service: Service,
) -> None:
    service.org("acme")
    member = service.person("acme")
    assert service.call("GET", "/audit/entries", member).status_code == 403
    service.audit_size()
    assert service.call("GET", "/audit/checkpoints/latest", member).status_code == 200
    auditor = service.person("program-office", "auditor")
    assert service.call("GET", "/audit/entries", auditor).status_code == 200
    assert (
        service.call(
            "POST", "/organizations", auditor, json={"name": "x", "kind": "startup"}
        ).status_code
        == 403
    )
