"""The checks behind `kizuna audit verify` (see kizuna.cli.audit), loaded only by that verb."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from kizuna.audit import (
    AuditRecord,
    CheckpointError,
    ProofError,
    VerifierKey,
    open_note,
    verify_extension,
    verify_log,
    verify_record,
)
from kizuna.cli.client import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    Client,
    CliError,
    Json,
    local_problem,
)
from kizuna.cli.output import OutputFormat
from kizuna.cli.present import console, emit, fields, say, service, show, table


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Finding:
    """One problem, where it is, in words."""

    kind: str
    where: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "message": self.message}


@dataclass
class Outcome:
    """What `verify` found: the document printed with --output json."""

    mode: str
    key: str
    key_source: str
    origin: str | None
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            **self.facts,
            "origin": self.origin,
            "key": self.key,
            "key_source": self.key_source,
            "problems": [f.as_json() for f in self.findings],
        }


def _pinned(key: str | None, key_file: Path | None) -> VerifierKey | None:
    if key is not None and key_file is not None:
        raise typer.BadParameter("give --key or --key-file, not both", param_hint="'--key'")
    if key_file is not None:
        try:
            key = key_file.read_text()
        except OSError as error:
            raise typer.BadParameter(str(error), param_hint="'--key-file'") from None
    if key is None:
        return None
    try:
        return VerifierKey.from_text(key)
    except ValueError as error:
        hint = "'--key-file'" if key_file is not None else "'--key'"
        raise typer.BadParameter(f"not a verifier key: {error}", param_hint=hint) from None


def _saved(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError as error:
        raise typer.BadParameter(str(error), param_hint="'--checkpoint'") from None


def _served_key(client: Client) -> tuple[VerifierKey, str | None]:
    """The service's verifier key and log origin (GET /audit/key)."""
    served = client.get("/audit/key")
    try:
        return VerifierKey.from_text(served["key"]), served.get("origin")
    except (ValueError, KeyError, TypeError) as error:
        raise local_problem(
            "Bad verifier key", f"the service's verifier key is unusable: {error}", EXIT_FAILED
        ) from None


def _latest(client: Client) -> Json:
    """The latest signed checkpoint, or None when none was signed yet."""
    try:
        return client.get("/audit/checkpoints/latest")
    except CliError as error:
        if error.exit_code == EXIT_NOT_FOUND:
            return None
        raise


def run(
    output: OutputFormat,
    checkpoint_file: Path | None,
    save_checkpoint: Path | None,
    record: int | None,
    key: str | None,
    key_file: Path | None,
) -> None:
    """`kizuna audit verify`."""
    pinned = _pinned(key, key_file)
    old_note = _saved(checkpoint_file)
    with service(output) as client:
        verifier, origin = (pinned, None) if pinned else _served_key(client)
        outcome = Outcome(
            mode="record" if record is not None else "log",
            key=verifier.to_text(),
            key_source="pinned" if pinned else "service",
            origin=origin,
        )
        latest = _latest(client)  # before the records: the log only grows after it
        if record is not None:
            _check_record(client, outcome, record, latest, verifier)
        else:
            _check_log(client, outcome, latest, old_note, verifier)
    if outcome.ok and save_checkpoint is not None and latest is not None:
        save_checkpoint.write_text(latest["note"])
        outcome.facts["saved_checkpoint"] = str(save_checkpoint)
    _report(outcome, output)
    if not outcome.ok:
        raise typer.Exit(EXIT_FAILED)


def _entries(client: Client) -> Iterable[Json]:
    return client.pages("/audit/entries")


def _check_log(
    client: Client, outcome: Outcome, latest: Json, old_note: str | None, verifier: VerifierKey
) -> None:
    findings = outcome.findings
    records: list[AuditRecord] = []
    for position, entry in enumerate(_entries(client)):
        try:
            found = AuditRecord.from_json(entry["record"])
        except (ValueError, TypeError) as error:
            findings.append(Finding("record-format", f"entry {position}", str(error)))
            continue
        served = entry.get("leaf_hash")
        if served and served != b64(found.leaf_hash()):
            findings.append(
                Finding(
                    "leaf-hash",
                    f"seq {found.seq}",
                    "the record no longer hashes to the leaf the log sequenced: it was "
                    "changed after it was logged",
                )
            )
        records.append(found)
    notes = [n for n in (old_note, None if latest is None else latest["note"]) if n]
    labels = (["saved checkpoint"] if old_note else []) + (["latest checkpoint"] if latest else [])
    report = verify_log(records, notes, verifier, origin=outcome.origin)
    for problem in report.problems:
        if problem.seq is not None:
            where = f"seq {problem.seq}"
        elif problem.checkpoint_index is not None:
            where = labels[problem.checkpoint_index]
            if problem.checkpoint_size is not None:
                where += f" (size {problem.checkpoint_size})"
        else:
            where = "log"
        findings.append(Finding(str(problem.kind), where, problem.message))
    if old_note:
        _check_extension(client, outcome, old_note, latest, verifier)
    outcome.facts.update(
        records=report.records_checked,
        checkpoints_verified=report.checkpoints_verified,
        size=report.latest_size,
        root=b64(report.latest_root),
        tree_root=b64(report.tree_root),
        unsealed=report.unsealed,
        extends_saved_checkpoint=None
        if not old_note
        else not any(f.kind == "extension" for f in findings),
    )


def _check_extension(
    client: Client, outcome: Outcome, old_note: str, latest: Json, verifier: VerifierKey
) -> None:
    try:
        old = open_note(old_note, verifier, origin=outcome.origin)
    except CheckpointError as error:
        outcome.findings.append(Finding("extension", "saved checkpoint", str(error)))
        return
    if latest is None:
        if old.size:
            outcome.findings.append(
                Finding(
                    "extension",
                    "saved checkpoint",
                    f"you saved a checkpoint of size {old.size} but the service has none now: "
                    "the log went back",
                )
            )
        return
    proof: list[bytes] = []
    if 0 < old.size <= latest["size"]:
        answer = client.get(
            "/audit/proofs/consistency", {"first": old.size, "size": latest["size"]}
        )
        proof = [base64.b64decode(h) for h in answer["proof"]]
    try:
        verify_extension(old_note, latest["note"], proof, verifier, origin=outcome.origin)
    except (CheckpointError, ProofError) as error:
        outcome.findings.append(
            Finding("extension", f"saved checkpoint (size {old.size})", str(error))
        )


def _check_record(
    client: Client, outcome: Outcome, index: int, latest: Json, verifier: VerifierKey
) -> None:
    findings = outcome.findings
    outcome.facts["record"] = index
    if latest is None or index >= latest["size"]:
        size = 0 if latest is None else latest["size"]
        findings.append(
            Finding(
                "not-sealed",
                f"seq {index}",
                f"no signed checkpoint covers record {index} yet (latest size {size}); "
                "run `kizuna audit checkpoint` and try again",
            )
        )
        return
    entry = next((e for e in _entries(client) if e["record"].get("seq") == index), None)
    if entry is None:
        findings.append(Finding("seq-gap", f"seq {index}", f"the log holds no record {index}"))
        return
    outcome.facts["entry"] = entry["record"]
    answer = client.get("/audit/proofs/inclusion", {"leaf_index": index, "size": latest["size"]})
    proof = [base64.b64decode(h) for h in answer["proof"]]
    try:
        found = AuditRecord.from_json(entry["record"])
        proven = verify_record(found, index, proof, latest["note"], verifier, origin=outcome.origin)
    except (ValueError, CheckpointError, ProofError) as error:
        findings.append(Finding("inclusion", f"seq {index}", str(error)))
        return
    outcome.facts.update(size=proven.size, root=b64(proven.root))


def _report(outcome: Outcome, output: OutputFormat) -> None:
    if output is OutputFormat.JSON:
        emit(outcome.as_json())
        return
    facts = outcome.facts
    if not outcome.ok:
        show(
            table(
                ["PROBLEM", "WHERE", "WHAT"],
                [(f.kind, f.where, f.message) for f in outcome.findings],
                title=f"Audit verification FAILED: {len(outcome.findings)} problem(s)",
            )
        )
        console(stderr=True).print(
            "[bold red]Error:[/] [red]the audit log does not verify (see the problems above)[/]"
        )
        return
    if outcome.mode == "record":
        entry = facts["entry"]
        say(
            f"Verified: record {facts['record']} ({entry['action']} {entry['object_id']} by "
            f"{entry['actor']}) is in the signed checkpoint of size {facts['size']}."
        )
        fields([("Size", facts["size"]), ("Root", facts["root"]), ("Key", outcome.key)])
        return
    if facts["size"] == 0:
        say(
            f"No signed checkpoint yet: {facts['records']} records read, none sealed. "
            "Run `kizuna audit checkpoint` first."
        )
    else:
        say(f"Verified: the audit log's {facts['size']} records match its signed checkpoint.")
    pairs: list[tuple[str, object]] = [
        ("Size", facts["size"]),
        ("Root", facts["root"]),
        ("Unsealed", facts["unsealed"]),
        ("Key", f"{outcome.key} ({outcome.key_source})"),
    ]
    if facts.get("extends_saved_checkpoint"):
        pairs.append(("ExtendsSavedCheckpoint", "yes"))
    if facts.get("saved_checkpoint"):
        pairs.append(("SavedCheckpoint", facts["saved_checkpoint"]))
    fields(pairs)
