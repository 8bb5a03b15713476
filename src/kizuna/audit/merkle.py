"""RFC 6962 / RFC 9162 Merkle trees over SHA-256: hashes, proofs and their verifiers (ADR 0017).

Leaves and nodes are hashed with the RFC's domain separation (rule L1): a leaf is
H(0x00 || data), an inner node H(0x01 || left || right), the empty tree's root H(""). The
module-level `root`, `inclusion_proof` and `consistency_proof` are the RFC 9162 §2.1.1-2.1.4
definitions written out over a list of leaf hashes; `Tree` gives the same answers for an
append-only log, caching every complete subtree so that a root or a proof at any size costs
O(log n) hashes. The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, after
checks that name what is wrong (rule L4); they raise `ProofError`, never return False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
"""Bytes in a SHA-256 hash: every leaf hash, node hash, proof hash and root."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the tree of no leaves: SHA-256 of the empty string (RFC 9162 §2.1.1)."""


class ProofError(ValueError):
    """A proof, or the claim it is checked against, that does not hold; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf whose content is `data`: SHA-256(0x00 || data) (rule L1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node over two child hashes: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# --- The RFC's definitions, over a list of leaf hashes ------------------------------------


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1 for the tree whose leaves hash to `leaf_hashes`."""
    _check_hashes(leaf_hashes, "leaf hash")
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf `index`, lowest hash first."""
    _check_hashes(leaf_hashes, "leaf hash")
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaf_hashes)} leaves")
    return _path(leaf_hashes, index, 0, len(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 from the tree's first `size1` leaves to all of them.

    Requires 0 < size1 <= n; the proof for size1 == n is empty. No proof starts from the empty
    tree: every tree extends it (rule L4).
    """
    _check_hashes(leaf_hashes, "leaf hash")
    if not 0 < size1 <= len(leaf_hashes):
        raise ValueError(
            f"a consistency proof needs 0 < size1 <= {len(leaf_hashes)} (the tree's size), "
            f"not size1={size1}"
        )
    return _subproof(leaf_hashes, size1, 0, len(leaf_hashes), True)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def _path(leaves: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = _split(hi - lo)
    if m < lo + k:
        return [*_path(leaves, m, lo, lo + k), _mth(leaves, lo + k, hi)]
    return [*_path(leaves, m, lo + k, hi), _mth(leaves, lo, lo + k)]


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    if m == hi:
        return [] if whole else [_mth(leaves, lo, hi)]
    k = _split(hi - lo)
    if m <= lo + k:
        return [*_subproof(leaves, m, lo, lo + k, whole), _mth(leaves, lo + k, hi)]
    return [*_subproof(leaves, m, lo + k, hi, False), _mth(leaves, lo, lo + k)]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 9162 splits n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hashes(hashes: Iterable[bytes], what: str) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ValueError(f"{what} {i} is {len(h)} bytes, not {HASH_SIZE}")


# --- Verifiers: RFC 9162 §2.1.3.2 and §2.1.4.2 ---------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `proof` shows the leaf hashing to `leaf_hash` at `index` in the tree of
    `size` leaves whose root is `root` (RFC 9162 §2.1.3.2, rule L4); raise ProofError if not.

    Before the RFC's steps: the index must lie in the tree, every hash be 32 bytes, and the
    proof hold exactly as many hashes as the tree's shape asks for, so that each failure
    names its cause (a 0-byte leaf "matching" a 0-byte root is refused, as RFC 6962 logs do).
    """
    if index < 0 or size < 0:
        raise ProofError(f"negative leaf index or tree size: index {index}, size {size}")
    if index >= size:
        raise ProofError(f"leaf index {index} is not inside a tree of size {size}")
    _need_hash(leaf_hash, "the leaf hash")
    _need_hash(root, "the expected root")
    _need_proof_hashes(proof)
    inner = (index ^ (size - 1)).bit_length()
    want = inner + (index >> inner).bit_count()
    if len(proof) != want:
        raise ProofError(
            f"the inclusion proof has {len(proof)} hashes; leaf {index} of a tree of size "
            f"{size} needs exactly {want}"
        )
    computed = _inclusion_root(leaf_hash, index, size, proof)
    if computed != root:
        raise ProofError(
            f"the inclusion proof for leaf {index} of a tree of size {size} leads to root "
            f"{computed.hex()}, not the expected {root.hex()}"
        )


def _inclusion_root(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Steps 2-5 of RFC 9162 §2.1.3.2, as written there."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the path to the root")
    return r


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size2` leaves with root `root2` extends the tree of `size1`
    leaves with root `root1` (RFC 9162 §2.1.4.2, rule L4); raise ProofError if not.

    Equal sizes need an empty proof and byte-equal roots. A proof from the empty tree is
    refused (it proves nothing: every tree extends the empty tree), as is size2 < size1.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative tree size: size1 {size1}, size2 {size2}")
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) is smaller than size1 ({size1}): a log never shrinks")
    if size1 == 0:
        raise ProofError(
            "a consistency proof from the empty tree (size1 = 0) proves nothing and is refused"
        )
    if size1 == size2:
        _same_size(size1, proof, root1, root2)
        return
    _need_hash(root1, "root1")
    _need_hash(root2, "root2")
    _need_proof_hashes(proof)
    want = _consistency_proof_size(size1, size2)
    if len(proof) != want:
        raise ProofError(
            f"the consistency proof has {len(proof)} hashes; from size {size1} to size "
            f"{size2} it needs exactly {want}"
        )
    fr, sr = _consistency_roots(size1, size2, proof, root1)
    if fr != root1:
        raise ProofError(
            f"the consistency proof does not lead to root1 of size {size1}: it gives "
            f"{fr.hex()}, not {root1.hex()}"
        )
    if sr != root2:
        raise ProofError(
            f"the consistency proof does not lead to root2 of size {size2}: it gives "
            f"{sr.hex()}, not {root2.hex()}"
        )


def _same_size(size: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    if proof:
        raise ProofError(
            f"both trees have size {size}, so the consistency proof must be empty; "
            f"it has {len(proof)} hashes"
        )
    if root1 != root2:
        raise ProofError(
            f"two different roots for one tree size {size}: {root1.hex()} and {root2.hex()}"
        )


def _consistency_proof_size(size1: int, size2: int) -> int:
    """How many hashes a proof from size1 to size2 holds (0 < size1 < size2)."""
    index = size1 - 1
    inner = (index ^ (size2 - 1)).bit_length()
    border = (index >> inner).bit_count()
    shift = (size1 & -size1).bit_length() - 1
    seed_given = 0 if size1 == 1 << shift else 1
    return seed_given + inner - shift + border


def _consistency_roots(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """Steps 1-5 of RFC 9162 §2.1.4.2, as written there: (fr, sr)."""
    path = list(proof)
    if (size1 & (size1 - 1)) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the path to the root")
    return fr, sr


def _need_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not a {HASH_SIZE}-byte SHA-256 hash")


def _need_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is {len(h)} bytes, not {HASH_SIZE}")


# --- An append-only tree ---------------------------------------------------------------


class Tree:
    """An append-only Merkle tree of leaf hashes, as a log held in a database grows.

    Level h keeps, packed in one bytearray, the hash of every complete subtree of 2**h leaves
    that starts at a multiple of 2**h; once complete such a subtree never changes, so the
    root at any earlier size is still at hand. Appending costs amortised two hashes; a root,
    an inclusion proof or a consistency proof at any size costs O(log n) (O(log² n) for
    proofs). A million leaves take about 64 MB.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        leaves = list(leaf_hashes)
        _check_hashes(leaves, "leaf hash")
        self._levels: list[bytearray] = [bytearray(b"".join(leaves))]
        while len(self._levels[-1]) >= 2 * HASH_SIZE:
            self._levels.append(_pair_up(self._levels[-1]))

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash at the end; its index is returned."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf_hash)}")
        levels = self._levels
        index = j = len(levels[0]) // HASH_SIZE
        levels[0] += leaf_hash
        level = 0
        while j & 1:
            start = (j - 1) * HASH_SIZE
            pair = levels[level][start : start + 2 * HASH_SIZE]
            if level + 1 == len(levels):
                levels.append(bytearray())
            levels[level + 1] += hashlib.sha256(_NODE_PREFIX + pair).digest()
            level, j = level + 1, j >> 1
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in turn."""
        for h in leaf_hashes:
            self.append(h)

    def leaf(self, index: int) -> bytes:
        """The hash of leaf `index`."""
        self._check_index(index, self.size)
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first `size` leaves (default: all of them)."""
        size = self._size_or_all(size)
        return EMPTY_ROOT if size == 0 else self._range(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf `index` in the tree of the first `size` leaves."""
        size = self._size_or_all(size)
        self._check_index(index, size)
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo += k
        proof.reverse()
        return proof

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The proof that the first `size2` leaves extend the first `size1` (0 < size1 <= size2)."""
        size2 = self._size_or_all(size2)
        if not 0 < size1 <= size2:
            raise ValueError(f"a consistency proof needs 0 < size1 <= size2, not {size1}, {size2}")
        proof: list[bytes] = []
        lo, hi, whole = 0, size2, True
        while size1 != hi:
            k = _split(hi - lo)
            if size1 <= lo + k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo, whole = lo + k, False
        if not whole:
            proof.append(self._range(lo, hi))
        proof.reverse()
        return proof

    def _size_or_all(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is outside 0..{self.size}, the tree's sizes so far")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")

    def _node(self, level: int, j: int) -> bytes:
        return bytes(self._levels[level][j * HASH_SIZE : (j + 1) * HASH_SIZE])

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves lo..hi-1, where lo is a multiple of the largest power of two in
        hi - lo (true of every range the RFC's recursion visits): the complete subtrees that
        make up the range, largest first, folded from the right."""
        pieces: list[bytes] = []
        start, n = lo, hi - lo
        while n:
            level = n.bit_length() - 1
            pieces.append(self._node(level, start >> level))
            start += 1 << level
            n -= 1 << level
        acc = pieces.pop()
        while pieces:
            acc = node_hash(pieces.pop(), acc)
        return acc


def _pair_up(level: bytearray) -> bytearray:
    """The next level up: the hash of each complete pair of nodes."""
    data = bytes(level)
    sha256 = hashlib.sha256
    out = bytearray()
    for i in range(0, len(data) // (2 * HASH_SIZE) * 2 * HASH_SIZE, 2 * HASH_SIZE):
        out += sha256(_NODE_PREFIX + data[i : i + 2 * HASH_SIZE]).digest()
    return out
