"""Checking an audit log: the whole log against its checkpoints, one record against a
checkpoint, and a new checkpoint against one an auditor saved (ADR 0017, rules L3, L7-L8).

`verify_log` is what `kizuna audit verify` runs over a log's records and signed checkpoints:
it lists every problem it finds (rule L7) instead of stopping at the first. `verify_record`
and `verify_extension` are an auditor's checks with proofs the log hands out; they raise
ProofError or CheckpointError on the first thing that does not hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kizuna.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointSignatureError,
    VerifierKey,
    open_note,
)
from kizuna.audit.merkle import EMPTY_ROOT, ProofError, Tree, verify_consistency, verify_inclusion
from kizuna.audit.record import AuditRecord

Verifiers = VerifierKey | Collection[VerifierKey]
"""The key a log's checkpoints must be signed by, or several (a log that rotated its key)."""


class ProblemKind(StrEnum):
    """What `verify_log` found wrong; each names what an attacker (or a bug) would have done."""

    SEQ_GAP = "seq-gap"
    """A seq number is missing: a record was deleted."""
    SEQ_DUPLICATE = "seq-duplicate"
    """A seq number appears again: a record was inserted, or copied."""
    SEQ_ORDER = "seq-order"
    """A record comes after one with a larger seq: records were reordered."""
    CHECKPOINT_FORMAT = "checkpoint-format"
    """A checkpoint is not a well-formed signed checkpoint."""
    CHECKPOINT_SIGNATURE = "checkpoint-signature"
    """A checkpoint is not signed by a trusted key, or its signature fails: forged or altered."""
    CHECKPOINT_ORIGIN = "checkpoint-origin"
    """A checkpoint names another log."""
    CHECKPOINT_ORDER = "checkpoint-order"
    """A checkpoint is smaller than one issued before it: the log went back."""
    CHECKPOINT_FORK = "checkpoint-fork"
    """Two checkpoints cannot both describe one append-only log (one size, two roots)."""
    CHECKPOINT_BEYOND_LOG = "checkpoint-beyond-log"
    """A checkpoint covers more records than the log holds: records were cut off its end."""
    ROOT_MISMATCH = "root-mismatch"
    """The records give another root than a checkpoint signed: a record it covers changed."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing found wrong, where: a record's seq, or a checkpoint (its position in the
    list given to `verify_log` and, when it could be read, its size)."""

    kind: ProblemKind
    message: str
    seq: int | None = None
    checkpoint_index: int | None = None
    checkpoint_size: int | None = None


@dataclass(frozen=True, slots=True)
class LogReport:
    """What `verify_log` checked and found. No problems: every record below `latest_size`
    is as the log signed it (rule L7); records from `latest_size` on are not yet covered by
    a checkpoint (`unsealed`), which is not a problem by itself."""

    records_checked: int
    checkpoints_checked: int
    checkpoints_verified: int
    tree_root: bytes
    """The root over all the records checked."""
    latest_size: int
    """The largest size of a checkpoint whose signature and root both verified (0: none)."""
    latest_root: bytes
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def unsealed(self) -> int:
        """Records after the latest verified checkpoint."""
        return self.records_checked - self.latest_size


def verify_log(
    records: Iterable[AuditRecord],
    checkpoints: Sequence[str],
    verifier: Verifiers,
    *,
    origin: str | None = None,
) -> LogReport:
    """Check a whole log (rules L3, L7): records in the order stored, checkpoints (signed
    notes) in the order issued.

    Checks that seq numbers run 0..n-1 without gap, duplicate or reordering; rebuilds the
    tree from the records in the order given; checks every checkpoint's signature, its
    origin (`origin`, or else the first readable checkpoint's), that the records give its
    root at its size, and that successive checkpoints never shrink nor fork. Goes on past
    every problem it can.
    """
    tree = Tree()
    seqs = _SeqCheck()
    for record in records:
        seqs.see(record.seq)
        tree.append(record.leaf_hash())
    problems = seqs.problems()
    opened = _open_all(checkpoints, verifier, origin, problems)
    matched = _check_roots(tree, opened, problems)
    _check_succession(tree, opened, matched, problems)
    latest = max(matched, key=lambda i: opened[i].size, default=None)
    latest_size = 0 if latest is None else opened[latest].size
    return LogReport(
        records_checked=tree.size,
        checkpoints_checked=len(checkpoints),
        checkpoints_verified=len(matched),
        tree_root=tree.root(),
        latest_size=latest_size,
        latest_root=EMPTY_ROOT if latest is None else opened[latest].root,
        problems=tuple(problems),
    )


class _SeqCheck:
    """Seq numbers as they stream past: 0..prefix-1 seen once each, in order, and the others."""

    __slots__ = ("_found", "_others", "_prefix", "_prev")

    def __init__(self) -> None:
        self._prefix = 0
        self._others: set[int] = set()
        self._prev = -1
        self._found: list[Problem] = []

    def see(self, seq: int) -> None:
        if seq < self._prefix or seq in self._others:
            self._found.append(
                Problem(ProblemKind.SEQ_DUPLICATE, f"seq {seq} appears more than once", seq=seq)
            )
        else:
            if seq < self._prev:
                self._found.append(
                    Problem(
                        ProblemKind.SEQ_ORDER,
                        f"seq {seq} comes after seq {self._prev}: records are out of order",
                        seq=seq,
                    )
                )
            if seq == self._prefix and not self._others:
                self._prefix += 1
            else:
                self._others.add(seq)
        self._prev = seq

    def problems(self) -> list[Problem]:
        """What was found, and then every run of missing seq numbers."""
        gaps: list[Problem] = []
        expected = self._prefix
        for seq in sorted(self._others):
            if seq > expected:
                gaps.append(_gap(expected, seq - 1))
            expected = max(expected, seq + 1)
        return self._found + gaps


def _gap(first: int, last: int) -> Problem:
    if first == last:
        message = f"seq {first} is missing: a record was deleted"
    else:
        message = f"seq {first}..{last} are missing: {last - first + 1} records were deleted"
    return Problem(ProblemKind.SEQ_GAP, message, seq=first)


def _open_all(
    notes: Sequence[str], verifier: Verifiers, origin: str | None, problems: list[Problem]
) -> dict[int, Checkpoint]:
    """The checkpoints that are well formed, trusted and of the log, by position."""
    opened: dict[int, Checkpoint] = {}
    for index, note in enumerate(notes):
        try:
            checkpoint = open_note(note, verifier)
        except CheckpointError as error:
            kind = (
                ProblemKind.CHECKPOINT_SIGNATURE
                if isinstance(error, CheckpointSignatureError)
                else ProblemKind.CHECKPOINT_FORMAT
            )
            problems.append(Problem(kind, f"checkpoint {index}: {error}", checkpoint_index=index))
            continue
        origin = checkpoint.origin if origin is None else origin
        if checkpoint.origin != origin:
            problems.append(
                Problem(
                    ProblemKind.CHECKPOINT_ORIGIN,
                    f"checkpoint {index} is of log {checkpoint.origin!r}, not {origin!r}",
                    checkpoint_index=index,
                    checkpoint_size=checkpoint.size,
                )
            )
            continue
        opened[index] = checkpoint
    return opened


def _check_roots(tree: Tree, opened: dict[int, Checkpoint], problems: list[Problem]) -> list[int]:
    """The positions of the checkpoints whose root the records give; problems for the rest."""
    matched = [i for i, c in opened.items() if c.size <= tree.size and tree.root(c.size) == c.root]
    good = set(matched)
    good_sizes = sorted({opened[i].size for i in matched})
    for index, checkpoint in opened.items():
        if checkpoint.size > tree.size:
            problems.append(_beyond(index, checkpoint, tree.size))
        elif index not in good:
            problems.append(_mismatch(index, checkpoint, tree, good_sizes))
    return matched


def _beyond(index: int, checkpoint: Checkpoint, records: int) -> Problem:
    return Problem(
        ProblemKind.CHECKPOINT_BEYOND_LOG,
        f"checkpoint {index} covers {checkpoint.size} records but the log holds {records}: "
        f"seq {records}..{checkpoint.size - 1} were cut off its end",
        checkpoint_index=index,
        checkpoint_size=checkpoint.size,
    )


def _mismatch(index: int, checkpoint: Checkpoint, tree: Tree, good_sizes: list[int]) -> Problem:
    below = max((s for s in good_sizes if s < checkpoint.size), default=0)
    return Problem(
        ProblemKind.ROOT_MISMATCH,
        f"checkpoint {index} (size {checkpoint.size}) signed root {checkpoint.root.hex()}, "
        f"but the records give {tree.root(checkpoint.size).hex()}: a record with seq in "
        f"{below}..{checkpoint.size - 1} was changed, added or removed since it was signed",
        checkpoint_index=index,
        checkpoint_size=checkpoint.size,
    )


def _check_succession(
    tree: Tree, opened: dict[int, Checkpoint], matched: list[int], problems: list[Problem]
) -> None:
    """Each checkpoint against the one issued before it: never smaller, never another root
    at one size, and (when the records give both roots) a consistency proof that holds."""
    good = set(matched)
    order = sorted(opened)
    for before, after in itertools.pairwise(order):
        a, b = opened[before], opened[after]
        if b.size < a.size:
            problems.append(
                _succession(
                    ProblemKind.CHECKPOINT_ORDER,
                    after,
                    b,
                    f"checkpoint {after} (size {b.size}) is smaller than checkpoint {before} "
                    f"(size {a.size}) issued before it: the log went back",
                )
            )
        elif b.size == a.size and b.root != a.root:
            problems.append(
                _succession(
                    ProblemKind.CHECKPOINT_FORK,
                    after,
                    b,
                    f"checkpoints {before} and {after} sign two different roots for size {a.size}",
                )
            )
        elif before in good and after in good and 0 < a.size < b.size:
            proof = tree.consistency_proof(a.size, b.size)
            try:
                verify_consistency(a.size, b.size, proof, a.root, b.root)
            except ProofError as error:
                problems.append(
                    _succession(
                        ProblemKind.CHECKPOINT_FORK,
                        after,
                        b,
                        f"checkpoint {after} does not extend checkpoint {before}: {error}",
                    )
                )


def _succession(kind: ProblemKind, index: int, checkpoint: Checkpoint, message: str) -> Problem:
    return Problem(kind, message, checkpoint_index=index, checkpoint_size=checkpoint.size)


def verify_record(
    record: AuditRecord,
    index: int,
    proof: Sequence[bytes],
    checkpoint_note: str,
    verifier: Verifiers,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Check that `record` is leaf `index` of the log a trusted checkpoint signed, by the
    inclusion proof the log gave (rules L3, L8); the checkpoint is returned.

    Raises CheckpointError for a checkpoint that is malformed, untrusted or of another
    origin, and ProofError when the record's seq is not `index` or the proof fails.
    """
    checkpoint = open_note(checkpoint_note, verifier, origin=origin)
    if record.seq != index:
        raise ProofError(
            f"the record's seq is {record.seq} but the proof is for leaf {index}; "
            "a record's seq is its position in the log"
        )
    try:
        verify_inclusion(record.leaf_hash(), index, checkpoint.size, proof, checkpoint.root)
    except ProofError as error:
        raise ProofError(
            f"record {index} is not proven in the checkpoint of size {checkpoint.size}: {error}"
        ) from error
    return checkpoint


def verify_extension(
    old_note: str,
    new_note: str,
    proof: Sequence[bytes],
    verifier: Verifiers,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Check that the log of a new checkpoint extends the one an auditor saved, by the
    consistency proof the log gave (rule L8); the new checkpoint is returned, to be saved.

    Raises CheckpointError for a checkpoint that is malformed, untrusted or of another log,
    and ProofError when the new one is smaller, forks, or the proof fails. From a saved
    checkpoint of size 0 no proof is needed (every log extends the empty one).
    """
    old = open_note(old_note, verifier, origin=origin)
    new = open_note(new_note, verifier, origin=old.origin)
    for checkpoint in (old, new):
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            raise ProofError("a checkpoint of size 0 signs a root other than the empty tree's")
    if new.size < old.size:
        raise ProofError(
            f"the new checkpoint (size {new.size}) is smaller than the saved one "
            f"(size {old.size}): the log went back"
        )
    if old.size == 0:
        if proof:
            raise ProofError("from a checkpoint of size 0 the consistency proof must be empty")
        return new
    try:
        verify_consistency(old.size, new.size, proof, old.root, new.root)
    except ProofError as error:
        raise ProofError(
            f"the checkpoint of size {new.size} does not extend the saved one of size "
            f"{old.size}: {error}"
        ) from error
    return new
