"""The 196 public RFC 6962 proof vectors of transparency-dev/merkle (ADR 0017, rule L4).

They sit in `shared/vectors/rfc6962/` beside the repository checkout (SOURCE.md there says
where they come from): 12 proofs must verify and 184 must be refused with a ProofError.
Happy paths whose tree is the RFC 6962 reference tree of 8 leaves must also be the very
proofs our generators make.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from kizuna.audit import (
    ProofError,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[3] / ".." / "shared" / "vectors" / "rfc6962"
MISSING = f"RFC 6962 vectors not found at {VECTORS} (the `shared` folder beside the checkout)"

FILES = sorted(VECTORS.rglob("*.json")) if VECTORS.is_dir() else []
CASES = [pytest.param(f, id=f.relative_to(VECTORS).as_posix()) for f in FILES] or [
    pytest.param(None, id="vectors-missing", marks=pytest.mark.skip(reason=MISSING))
]

REFERENCE_DATA = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
"""The 8 leaves of the RFC 6962 reference tree (certificate-transparency's test data)."""
REFERENCE = Tree(leaf_hash(d) for d in REFERENCE_DATA)


def _load(path: Path | None) -> dict[str, Any]:
    assert path is not None
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(p) for p in case["proof"] or []]


def _check(case: dict[str, Any]) -> None:
    if "leafIdx" in case:
        verify_inclusion(
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            _proof(case),
            _b64(case["root"]),
        )
    else:
        verify_consistency(
            case["size1"], case["size2"], _proof(case), _b64(case["root1"]), _b64(case["root2"])
        )


@pytest.mark.parametrize("path", CASES)
def test_vector(path: Path | None) -> None:
    case = _load(path)
    if case["wantErr"]:
        with pytest.raises(ProofError) as raised:
            _check(case)
        assert str(raised.value), "a refusal says why"
    else:
        _check(case)


@pytest.mark.skipif(not FILES, reason=MISSING)
def test_all_196_vectors_are_there() -> None:
    cases = [_load(f) for f in FILES]
    assert len(cases) == 196
    assert sum(not c["wantErr"] for c in cases) == 12


def _reference_sizes() -> dict[bytes, int]:
    return {REFERENCE.root(n): n for n in range(1, REFERENCE.size + 1)}


@pytest.mark.skipif(not FILES, reason=MISSING)
def test_happy_paths_over_the_reference_tree_are_our_proofs() -> None:
    sizes = _reference_sizes()
    leaves = [REFERENCE.leaf(i) for i in range(REFERENCE.size)]
    compared = 0
    for case in (_load(f) for f in FILES):
        if case["wantErr"] or not case["proof"]:
            continue
        if "leafIdx" in case and sizes.get(_b64(case["root"])) == case["treeSize"]:
            index, size = case["leafIdx"], case["treeSize"]
            assert inclusion_proof(leaves[:size], index) == _proof(case)
            assert REFERENCE.inclusion_proof(index, size) == _proof(case)
            compared += 1
        elif "size1" in case and sizes.get(_b64(case["root2"])) == case["size2"]:
            size1, size2 = case["size1"], case["size2"]
            assert consistency_proof(leaves[:size2], size1) == _proof(case)
            assert REFERENCE.consistency_proof(size1, size2) == _proof(case)
            compared += 1
    assert compared == 8, f"{compared} happy paths are over the reference tree, not 8"


def test_reference_roots() -> None:
    """RFC 6962 reference roots of the first 1..8 leaves (certificate-transparency data)."""
    assert [REFERENCE.root(n).hex()[:16] for n in range(1, 9)] == [
        "6e340b9cffb37a98",
        "fac54203e7cc696c",
        "aeb6bcfe274b70a1",
        "d37ee418976dd957",
        "4e3bbb1f7b478dcf",
        "76e67dadbcdf1e10",
        "ddb89be403809e32",
        "5dc9da79a70659a9",
    ]
