"""Verifying a log: each kind of tampering is found and named (ADR 0017, rules L3, L7-L8)."""

from __future__ import annotations

import dataclasses

import pytest

from kizuna.audit import (
    EMPTY_ROOT,
    AuditRecord,
    Checkpoint,
    CheckpointError,
    CheckpointFormatError,
    CheckpointSignatureError,
    LogReport,
    ProblemKind,
    ProofError,
    SigningKey,
    Tree,
    sign,
    verify_extension,
    verify_log,
    verify_record,
)

ORIGIN = "kizuna.example/audit"
KEY = SigningKey.from_private_bytes(ORIGIN, bytes(range(1, 33)))
SIZES = (5, 10, 15, 20)


def _record(seq: int, name: str | None = None) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        at=f"2026-11-27T10:00:{seq:02d}.000000Z",
        actor="person:7" if seq % 2 else "system",
        action="project.update",
        object_type="project",
        object_id=f"p-{seq % 3}",
        organization_id="org-1",
        before={"name": f"n{seq}"},
        after={"name": name or f"n{seq + 1}"},
        request_id=f"req-{seq}",
    )


RECORDS = [_record(i) for i in range(20)]
TREE = Tree(r.leaf_hash() for r in RECORDS)


def _note(size: int, key: SigningKey = KEY, root: bytes | None = None) -> str:
    return sign(Checkpoint(ORIGIN, size, TREE.root(size) if root is None else root), key)


NOTES = [_note(s) for s in SIZES]


def _kinds(report: LogReport) -> set[ProblemKind]:
    return {p.kind for p in report.problems}


def test_an_untouched_log_verifies() -> None:
    report = verify_log(RECORDS, NOTES, KEY.public, origin=ORIGIN)
    assert report.ok and report.problems == ()
    assert report.records_checked == 20
    assert report.checkpoints_checked == report.checkpoints_verified == 4
    assert (report.latest_size, report.latest_root) == (20, TREE.root())
    assert report.tree_root == TREE.root() and report.unsealed == 0


def test_records_after_the_last_checkpoint_are_unsealed_not_wrong() -> None:
    report = verify_log(RECORDS, NOTES[:2], KEY.public)
    assert report.ok
    assert (report.latest_size, report.unsealed) == (10, 10)
    empty = verify_log([], [], KEY.public)
    assert empty.ok and empty.latest_root == EMPTY_ROOT == empty.tree_root


def test_a_changed_field_breaks_the_roots_that_cover_it() -> None:
    records = list(RECORDS)
    records[7] = dataclasses.replace(records[7], after={"name": "tampered"})
    report = verify_log(records, NOTES, KEY.public)
    assert _kinds(report) == {ProblemKind.ROOT_MISMATCH}
    assert [p.checkpoint_size for p in report.problems] == [10, 15, 20]
    assert "seq in 5..9 was changed" in report.problems[0].message
    assert (report.latest_size, report.checkpoints_verified) == (5, 1)


def test_a_changed_seq_free_field_is_found_too() -> None:
    records = list(RECORDS)
    records[0] = dataclasses.replace(records[0], actor="person:99")
    report = verify_log(records, NOTES, KEY.public)
    assert [p.checkpoint_size for p in report.problems] == list(SIZES)
    assert "seq in 0..4" in report.problems[0].message
    assert report.latest_size == 0


def test_a_deleted_record_is_a_gap() -> None:
    records = RECORDS[:7] + RECORDS[8:]
    report = verify_log(records, NOTES, KEY.public)
    gap = [p for p in report.problems if p.kind is ProblemKind.SEQ_GAP]
    assert [(p.seq, p.message) for p in gap] == [(7, "seq 7 is missing: a record was deleted")]
    assert ProblemKind.CHECKPOINT_BEYOND_LOG in _kinds(report)


def test_several_deleted_records_are_one_gap() -> None:
    report = verify_log(RECORDS[:3] + RECORDS[6:], NOTES, KEY.public)
    gap = [p for p in report.problems if p.kind is ProblemKind.SEQ_GAP]
    assert [p.message for p in gap] == ["seq 3..5 are missing: 3 records were deleted"]


def test_records_cut_off_the_end_are_beyond_the_log() -> None:
    report = verify_log(RECORDS[:17], NOTES, KEY.public)
    assert _kinds(report) == {ProblemKind.CHECKPOINT_BEYOND_LOG}
    (problem,) = report.problems
    assert problem.checkpoint_size == 20 and "seq 17..19 were cut off" in problem.message
    assert report.latest_size == 15


def test_swapped_records_are_out_of_order() -> None:
    records = list(RECORDS)
    records[3], records[4] = records[4], records[3]
    report = verify_log(records, NOTES, KEY.public)
    order = [p for p in report.problems if p.kind is ProblemKind.SEQ_ORDER]
    assert [p.seq for p in order] == [3]
    assert "seq 3 comes after seq 4" in order[0].message
    assert ProblemKind.SEQ_GAP not in _kinds(report)
    assert ProblemKind.ROOT_MISMATCH in _kinds(report)


def test_swapped_contents_under_kept_seqs_break_the_roots() -> None:
    records = list(RECORDS)
    records[3] = dataclasses.replace(RECORDS[4], seq=3)
    records[4] = dataclasses.replace(RECORDS[3], seq=4)
    report = verify_log(records, NOTES, KEY.public)
    assert _kinds(report) == {ProblemKind.ROOT_MISMATCH}
    assert report.latest_size == 0


def test_an_inserted_record_is_a_duplicate() -> None:
    records = [*RECORDS[:9], _record(8, name="inserted"), *RECORDS[9:]]
    report = verify_log(records, NOTES, KEY.public)
    duplicate = [p for p in report.problems if p.kind is ProblemKind.SEQ_DUPLICATE]
    assert [p.seq for p in duplicate] == [8]
    assert ProblemKind.ROOT_MISMATCH in _kinds(report)


def test_an_inserted_and_renumbered_record_breaks_the_roots() -> None:
    renumbered = [dataclasses.replace(r, seq=r.seq + 1) for r in RECORDS[12:]]
    records = [*RECORDS[:12], _record(12, name="inserted"), *renumbered]
    report = verify_log(records, NOTES, KEY.public)
    assert _kinds(report) == {ProblemKind.ROOT_MISMATCH}
    assert [p.checkpoint_size for p in report.problems] == [15, 20]
    assert report.latest_size == 10


def test_a_forged_signature_is_found() -> None:
    forger = SigningKey.generate(ORIGIN)
    notes = [*NOTES[:3], _note(20, key=forger)]
    report = verify_log(RECORDS, notes, KEY.public)
    assert _kinds(report) == {ProblemKind.CHECKPOINT_SIGNATURE}
    (problem,) = report.problems
    assert problem.checkpoint_index == 3 and problem.checkpoint_size is None
    assert "no trusted key signed the note" in problem.message
    assert report.latest_size == 15


def test_a_rewritten_root_in_a_signed_note_fails_its_signature() -> None:
    old = Checkpoint(ORIGIN, 10, TREE.root(10)).body().splitlines()[2]
    new = Checkpoint(ORIGIN, 10, TREE.root(9)).body().splitlines()[2]
    notes = [NOTES[0], NOTES[1].replace(old, new), *NOTES[2:]]
    report = verify_log(RECORDS, notes, KEY.public)
    assert _kinds(report) == {ProblemKind.CHECKPOINT_SIGNATURE}
    assert "does not verify" in report.problems[0].message


def test_a_signed_checkpoint_with_a_wrong_root_is_a_mismatch() -> None:
    notes = [NOTES[0], _note(10, root=TREE.root(9)), *NOTES[2:]]
    report = verify_log(RECORDS, notes, KEY.public)
    assert _kinds(report) == {ProblemKind.ROOT_MISMATCH}
    assert report.problems[0].checkpoint_size == 10


def test_two_roots_for_one_size_are_a_fork() -> None:
    notes = [*NOTES[:2], _note(10, root=TREE.root(9)), *NOTES[2:]]
    report = verify_log(RECORDS, notes, KEY.public)
    assert _kinds(report) == {ProblemKind.CHECKPOINT_FORK, ProblemKind.ROOT_MISMATCH}
    fork = next(p for p in report.problems if p.kind is ProblemKind.CHECKPOINT_FORK)
    assert fork.checkpoint_index == 2 and "two different roots for size 10" in fork.message


def test_a_shrinking_checkpoint_is_out_of_order() -> None:
    notes = [NOTES[0], NOTES[2], NOTES[1], NOTES[3]]
    report = verify_log(RECORDS, notes, KEY.public)
    assert _kinds(report) == {ProblemKind.CHECKPOINT_ORDER}
    assert report.problems[0].checkpoint_index == 2


def test_malformed_and_foreign_checkpoints() -> None:
    foreign = sign(Checkpoint("other.example/log", 5, TREE.root(5)), KEY)
    notes = ["not a note", *NOTES, foreign]
    report = verify_log(RECORDS, notes, KEY.public)
    assert [(p.kind, p.checkpoint_index) for p in report.problems] == [
        (ProblemKind.CHECKPOINT_FORMAT, 0),
        (ProblemKind.CHECKPOINT_ORIGIN, 5),
    ]
    assert report.latest_size == 20
    first = verify_log(RECORDS, [foreign, *NOTES], KEY.public)
    assert {p.checkpoint_index for p in first.problems} == {1, 2, 3, 4}, "the first sets the log"
    assert (
        verify_log(RECORDS, NOTES, KEY.public, origin="other.example/log").checkpoints_verified == 0
    )


def test_every_problem_is_reported_not_just_the_first() -> None:
    records = [dataclasses.replace(RECORDS[0], after={"x": 1}), *RECORDS[2:17]]
    notes = ["garbage", *NOTES]
    report = verify_log(records, notes, KEY.public)
    assert _kinds(report) == {
        ProblemKind.SEQ_GAP,
        ProblemKind.CHECKPOINT_FORMAT,
        ProblemKind.ROOT_MISMATCH,
        ProblemKind.CHECKPOINT_BEYOND_LOG,
    }


def test_verify_record() -> None:
    note = NOTES[2]
    proof = TREE.inclusion_proof(11, 15)
    assert verify_record(RECORDS[11], 11, proof, note, KEY.public).size == 15
    with pytest.raises(ProofError, match="seq is 11 but the proof is for leaf 12"):
        verify_record(RECORDS[11], 12, proof, note, KEY.public)
    changed = dataclasses.replace(RECORDS[11], object_id="other")
    with pytest.raises(ProofError, match="record 11 is not proven in the checkpoint of size 15"):
        verify_record(changed, 11, proof, note, KEY.public)
    with pytest.raises(ProofError, match="not inside a tree of size 15"):
        verify_record(RECORDS[16], 16, proof, note, KEY.public)
    with pytest.raises(CheckpointSignatureError):
        verify_record(RECORDS[11], 11, proof, note, SigningKey.generate(ORIGIN).public)


def test_verify_extension() -> None:
    proof = TREE.consistency_proof(10, 20)
    assert verify_extension(NOTES[1], NOTES[3], proof, KEY.public).size == 20
    assert verify_extension(NOTES[3], NOTES[3], [], KEY.public).size == 20
    with pytest.raises(ProofError, match="smaller than the saved one"):
        verify_extension(NOTES[3], NOTES[1], proof, KEY.public)
    with pytest.raises(ProofError, match="does not extend the saved one of size 10"):
        verify_extension(NOTES[1], NOTES[3], TREE.consistency_proof(9, 20), KEY.public)
    forked = _note(20, root=TREE.root(19))
    with pytest.raises(ProofError, match="does not lead to root2"):
        verify_extension(NOTES[1], forked, proof, KEY.public)
    foreign = sign(Checkpoint("other.example/log", 20, TREE.root()), KEY)
    with pytest.raises(CheckpointFormatError, match="not the expected"):
        verify_extension(NOTES[1], foreign, proof, KEY.public)
    with pytest.raises(CheckpointError):
        verify_extension(NOTES[1], NOTES[3], proof, SigningKey.generate(ORIGIN).public)


def test_extension_from_the_empty_log() -> None:
    empty = sign(Checkpoint(ORIGIN, 0, EMPTY_ROOT), KEY)
    assert verify_extension(empty, NOTES[0], [], KEY.public).size == 5
    with pytest.raises(ProofError, match="must be empty"):
        verify_extension(empty, NOTES[0], [TREE.root(5)], KEY.public)
    bogus = sign(Checkpoint(ORIGIN, 0, TREE.root(1)), KEY)
    with pytest.raises(ProofError, match="size 0 signs a root other than the empty tree's"):
        verify_extension(bogus, NOTES[0], [], KEY.public)
