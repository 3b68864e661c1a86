"""The Merkle tree against a direct transcription of RFC 6962's recursive definition."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poisonguard.errors import IntegrityError, UsageError
from poisonguard.provenance.merkle import (
    InclusionProof,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_inclusion,
)


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1: MTH(D[n]) with k the largest power of two smaller than n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1: PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return _path(m, leaves[:k]) + [_mth(leaves[k:])]
    return _path(m - k, leaves[k:]) + [_mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


@pytest.mark.parametrize("n", list(range(0, 34)) + [100, 1000])
def test_root_and_paths_match_rfc6962(n: int) -> None:
    leaves = _leaves(n)
    tree = MerkleTree(leaves)
    assert tree.root == _mth(leaves).hex()
    for m in (range(n) if n < 100 else [0, 1, 63, 64, n // 2, n - 2, n - 1]):
        assert tree.audit_path(m) == _path(m, leaves)
        proof = tree.proof(m, leaves[m])
        assert verify_inclusion(proof)
        assert len(proof.path) <= max(1, (n - 1).bit_length())


def test_rfc6962_known_answer() -> None:
    # The empty tree and a single empty leaf, from RFC 6962 / CT test vectors.
    assert MerkleTree([]).root == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert MerkleTree([b""]).root == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_tampered_proofs_fail(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    tree = MerkleTree(leaves)
    m = data.draw(st.integers(0, n - 1))
    proof = tree.proof(m, leaves[m])
    assert verify_inclusion(proof)
    other = leaves[(m + 1) % n] if n > 1 else b"x" * 32
    assert not verify_inclusion(InclusionProof(m, n, other.hex(), proof.root, proof.path))
    assert not verify_inclusion(proof, root="00" * 32)
    if proof.path:
        i = data.draw(st.integers(0, len(proof.path) - 1))
        bad = list(proof.path)
        bad[i] = ("ff" if bad[i][:2] != "ff" else "00") + bad[i][2:]
        assert not verify_inclusion(InclusionProof(m, n, proof.leaf_data, proof.root, tuple(bad)))
        assert not verify_inclusion(InclusionProof(m, n, proof.leaf_data, proof.root,
                                                   proof.path[:-1]))
    if n > 1:
        assert not verify_inclusion(InclusionProof((m + 1) % n, n, proof.leaf_data, proof.root,
                                                   proof.path))


def test_proof_round_trips_and_rejects_bad_input() -> None:
    leaves = _leaves(10)
    proof = MerkleTree(leaves).proof(3, leaves[3])
    assert InclusionProof.from_dict(proof.to_dict()) == proof
    with pytest.raises(IntegrityError):
        InclusionProof.from_dict({"format": "something else"})
    with pytest.raises(UsageError):
        MerkleTree(leaves).audit_path(10)
