"""Kizuna's tamper-evident audit log (ADR 0017): records, Merkle tree, signed checkpoints.

Pure: no files, network or clock. The store appends each record's leaf hash to a `Tree`,
signs `Checkpoint`s with a `SigningKey`, and hands out proofs; `verify_log`,
`verify_record` and `verify_extension` check what it hands out.
"""

from kizuna.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointFormatError,
    CheckpointSignatureError,
    SigningKey,
    VerifierKey,
    open_note,
    open_signed_note,
    sign,
    sign_note,
)
from kizuna.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    ProofError,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from kizuna.audit.record import AuditRecord, canonical_json, check_json
from kizuna.audit.verify import (
    LogReport,
    Problem,
    ProblemKind,
    verify_extension,
    verify_log,
    verify_record,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AuditRecord",
    "Checkpoint",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointSignatureError",
    "LogReport",
    "Problem",
    "ProblemKind",
    "ProofError",
    "SigningKey",
    "Tree",
    "VerifierKey",
    "canonical_json",
    "check_json",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_note",
    "open_signed_note",
    "root",
    "sign",
    "sign_note",
    "verify_consistency",
    "verify_extension",
    "verify_inclusion",
    "verify_log",
    "verify_record",
]
