"""Merkle proofs on random trees (ADR 0017, rules L1 and L4): every proof made verifies,
and changing any byte of leaf, proof or root, or the index, makes it fail; `Tree` agrees
with the RFC's definitions at every size."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.audit.merkle import (
    ProofError,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


@st.composite
def trees(draw: st.DrawFn, min_size: int = 1, max_size: int = 70) -> list[bytes]:
    """Leaf hashes of distinct records, so no two subtrees hash alike."""
    data = draw(st.lists(st.binary(max_size=12), min_size=min_size, max_size=max_size, unique=True))
    return [leaf_hash(d) for d in data]


def _flip(value: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(value)
    changed[position % len(changed)] ^= 1 << bit
    return bytes(changed)


def _fails(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except ProofError:
        return True
    return False


@settings(max_examples=200, deadline=None)
@given(trees(), st.data())
def test_inclusion_proofs_verify_and_any_change_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, r = inclusion_proof(leaves, index), root(leaves)
    verify_inclusion(leaves[index], index, size, proof, r)

    position, bit = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(0, 7))
    changed_leaf = _flip(leaves[index], position, bit)
    assert _fails(lambda: verify_inclusion(changed_leaf, index, size, proof, r))
    changed_root = _flip(r, position, bit)
    assert _fails(lambda: verify_inclusion(leaves[index], index, size, proof, changed_root))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="proof hash")
        changed = [*proof[:k], _flip(proof[k], position, bit), *proof[k + 1 :]]
        assert _fails(lambda: verify_inclusion(leaves[index], index, size, changed, r))
    other = data.draw(st.integers(-1, size).filter(lambda i: i != index), label="other index")
    assert _fails(lambda: verify_inclusion(leaves[index], other, size, proof, r))


@settings(max_examples=200, deadline=None)
@given(trees(), st.data())
def test_consistency_proofs_verify_and_any_change_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size2 = len(leaves)
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = consistency_proof(leaves, size1)
    root1, root2 = root(leaves[:size1]), root(leaves)
    verify_consistency(size1, size2, proof, root1, root2)

    position, bit = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(0, 7))
    assert _fails(
        lambda: verify_consistency(size1, size2, proof, _flip(root1, position, bit), root2)
    )
    assert _fails(
        lambda: verify_consistency(size1, size2, proof, root1, _flip(root2, position, bit))
    )
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="proof hash")
        changed = [*proof[:k], _flip(proof[k], position, bit), *proof[k + 1 :]]
        assert _fails(lambda: verify_consistency(size1, size2, changed, root1, root2))


@settings(max_examples=150, deadline=None)
@given(trees(min_size=0))
def test_tree_root_at_every_size_is_the_root_of_that_prefix(leaves: list[bytes]) -> None:
    grown = Tree()
    for h in leaves:
        grown.append(h)
        assert grown.root() == root(leaves[: grown.size])
    built = Tree(leaves)
    for k in range(len(leaves) + 1):
        assert built.root(k) == grown.root(k) == root(leaves[:k])


@settings(max_examples=150, deadline=None)
@given(trees(), st.data())
def test_tree_proofs_at_earlier_sizes_are_the_rfc_proofs(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = Tree(leaves)
    size2 = data.draw(st.integers(1, len(leaves)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    index = data.draw(st.integers(0, size2 - 1), label="index")
    assert tree.inclusion_proof(index, size2) == inclusion_proof(leaves[:size2], index)
    assert tree.consistency_proof(size1, size2) == consistency_proof(leaves[:size2], size1)
    verify_consistency(
        size1, size2, tree.consistency_proof(size1, size2), tree.root(size1), tree.root(size2)
    )
