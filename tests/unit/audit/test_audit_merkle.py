"""The Merkle tree: hashes, `Tree` against the RFC's definitions, and verifiers' messages."""

from __future__ import annotations

import hashlib
import time

import pytest

from kizuna.audit import (
    EMPTY_ROOT,
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

LEAVES = [leaf_hash(i.to_bytes(2, "big")) for i in range(40)]


def test_hashes_use_rfc_6962_domain_separation() -> None:
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert (
        node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == root([]) == Tree().root()


def test_roots_follow_the_rfc_split() -> None:
    a, b, c = LEAVES[:3]
    assert root([a]) == a
    assert root([a, b]) == node_hash(a, b)
    assert root([a, b, c]) == node_hash(node_hash(a, b), c)


def test_tree_answers_as_the_definitions_at_every_size() -> None:
    tree = Tree()
    for n, h in enumerate(LEAVES, start=1):
        assert tree.append(h) == n - 1
        assert tree.size == len(tree) == n
    built = Tree(LEAVES)
    for size in range(1, len(LEAVES) + 1):
        leaves = LEAVES[:size]
        assert tree.root(size) == built.root(size) == root(leaves)
        for index in range(size):
            assert tree.inclusion_proof(index, size) == inclusion_proof(leaves, index)
        for size1 in range(1, size + 1):
            assert tree.consistency_proof(size1, size) == consistency_proof(leaves, size1)
    assert tree.root(0) == EMPTY_ROOT
    assert tree.leaf(7) == LEAVES[7]


def test_tree_defaults_to_its_whole_size() -> None:
    tree = Tree(LEAVES[:11])
    assert tree.root() == root(LEAVES[:11])
    assert tree.inclusion_proof(3) == inclusion_proof(LEAVES[:11], 3)
    assert tree.consistency_proof(4) == consistency_proof(LEAVES[:11], 4)
    assert tree.consistency_proof(11) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.root(6), "outside 0..5"),
        (lambda t: t.inclusion_proof(5), "outside a tree of 5"),
        (lambda t: t.inclusion_proof(-1, 3), "outside a tree of 3"),
        (lambda t: t.consistency_proof(0, 3), "0 < size1 <= size2"),
        (lambda t: t.consistency_proof(4, 3), "0 < size1 <= size2"),
        (lambda t: t.append(b"short"), "32 bytes"),
    ],
)
def test_tree_refuses_what_it_cannot_answer(call: object, message: str) -> None:
    tree = Tree(LEAVES[:5])
    with pytest.raises(ValueError, match=message):
        call(tree)  # type: ignore[operator]


def test_definitions_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="leaf hash 1 is 3 bytes"):
        root([LEAVES[0], b"abc"])
    with pytest.raises(ValueError, match="outside a tree of 2"):
        inclusion_proof(LEAVES[:2], 2)
    with pytest.raises(ValueError, match="0 < size1 <= 2"):
        consistency_proof(LEAVES[:2], 0)
    with pytest.raises(ValueError, match="leaf hash 0 is 1 bytes, not 32"):
        Tree([b"x"])


def _proof_error(call: object) -> str:
    with pytest.raises(ProofError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value)


def test_inclusion_failures_name_their_cause() -> None:
    tree = Tree(LEAVES[:6])
    proof, r = tree.inclusion_proof(2), tree.root()
    verify_inclusion(LEAVES[2], 2, 6, proof, r)
    assert "not inside a tree of size 6" in _proof_error(
        lambda: verify_inclusion(LEAVES[2], 6, 6, proof, r)
    )
    assert "negative" in _proof_error(lambda: verify_inclusion(LEAVES[2], -1, 6, proof, r))
    assert "leaf hash is 0 bytes" in _proof_error(lambda: verify_inclusion(b"", 2, 6, proof, r))
    assert "expected root is 31 bytes" in _proof_error(
        lambda: verify_inclusion(LEAVES[2], 2, 6, proof, r[:31])
    )
    assert "proof hash 1 is 33 bytes" in _proof_error(
        lambda: verify_inclusion(LEAVES[2], 2, 6, [proof[0], proof[1] + b"x", proof[2]], r)
    )
    assert "has 2 hashes" in _proof_error(lambda: verify_inclusion(LEAVES[2], 2, 6, proof[:2], r))
    message = _proof_error(lambda: verify_inclusion(LEAVES[3], 2, 6, proof, r))
    assert f"not the expected {r.hex()}" in message


def test_consistency_failures_name_their_cause() -> None:
    tree = Tree(LEAVES[:7])
    proof, r3, r7 = tree.consistency_proof(3, 7), tree.root(3), tree.root(7)
    verify_consistency(3, 7, proof, r3, r7)
    verify_consistency(7, 7, [], r7, r7)
    assert "never shrinks" in _proof_error(lambda: verify_consistency(7, 3, proof, r7, r3))
    assert "empty tree" in _proof_error(lambda: verify_consistency(0, 7, [], EMPTY_ROOT, r7))
    assert "must be empty" in _proof_error(lambda: verify_consistency(7, 7, proof, r7, r7))
    assert "two different roots for one tree size 7" in _proof_error(
        lambda: verify_consistency(7, 7, [], r7, r3)
    )
    assert "needs exactly" in _proof_error(lambda: verify_consistency(3, 7, proof[1:], r3, r7))
    assert "does not lead to root1" in _proof_error(
        lambda: verify_consistency(3, 7, proof, tree.root(2), r7)
    )
    assert "does not lead to root2" in _proof_error(
        lambda: verify_consistency(3, 7, proof, r3, tree.root(6))
    )


def test_a_million_leaves_take_seconds() -> None:
    """The log's database may hold a million records: build, roots and proofs stay fast."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1_000_000)]
    start = time.perf_counter()
    tree = Tree(leaves)
    for size in range(1, 1_000_000, 9_973):
        tree.root(size)
    index, size1 = 654_321, 123_457
    verify_inclusion(leaves[index], index, tree.size, tree.inclusion_proof(index), tree.root())
    proof = tree.consistency_proof(size1)
    verify_consistency(size1, tree.size, proof, tree.root(size1), tree.root())
    assert time.perf_counter() - start < 20
