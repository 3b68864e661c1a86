"""Inclusion proofs of one row in a signed snapshot: make them, check them.

:func:`prove_row` builds the RFC 6962 audit path of a row from a manifest's row
hashes. :func:`check_proof` accepts a proof only when it leads to the expected root;
with a manifest, that root is the manifest's, the manifest's signature must satisfy
the :class:`~poisonguard.provenance.trust.SignaturePolicy`, and the proof's
``tree_size`` and ``root`` must equal the manifest's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from poisonguard.errors import UsageError
from poisonguard.provenance.manifest import Manifest
from poisonguard.provenance.merkle import InclusionProof, root_and_path, verify_inclusion
from poisonguard.provenance.trust import SignaturePolicy
from poisonguard.provenance.verify import check_manifest

__all__ = ["ProofCheck", "check_proof", "prove_row", "read_proof"]


def prove_row(manifest: Manifest, row: int) -> InclusionProof:
    """The inclusion proof of ``row`` (0-based) of ``manifest``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance.snapshot import build_manifest
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n2,b\\n3,c\\n")
    >>> proof = prove_row(build_manifest(p), 1)
    >>> proof.tree_size, len(proof.path), verify_inclusion(proof)
    (3, 2, True)
    """
    if not 0 <= row < manifest.rows:
        raise UsageError(f"row {row} is out of range (the manifest has {manifest.rows} rows)")
    root, path = root_and_path(manifest.row_hashes, row)
    return InclusionProof(leaf_index=row, tree_size=manifest.rows,
                          leaf_data=manifest.row_hashes[row].tobytes().hex(), root=root,
                          path=tuple(p.hex() for p in path))


def read_proof(path: str | os.PathLike[str]) -> InclusionProof:
    """A proof written by ``verify --row N --proof-out FILE``.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from poisonguard.provenance import MerkleTree
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "proof.json"
    >>> _ = p.write_text(json.dumps(MerkleTree([b"a", b"b"]).proof(0, b"a").to_dict()))
    >>> read_proof(p).tree_size
    2
    """
    try:
        return InclusionProof.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the proof ({exc})") from None


@dataclass(frozen=True)
class ProofCheck:
    """The outcome: ``ok`` and one line that says why (values escaped by the caller).

    Examples
    --------
    >>> ProofCheck(ok=True, root="ab", signature=None, message="row 1 is included").ok
    True
    """

    ok: bool
    root: str
    signature: str | None
    message: str


def check_proof(proof: InclusionProof, *, root: str | None = None,
                manifest: Manifest | None = None,
                policy: SignaturePolicy | None = None) -> ProofCheck:
    """Does ``proof`` lead to ``root``, or to the root of the signed ``manifest``?

    Examples
    --------
    >>> p = InclusionProof(0, 1, "00" * 32, "x", ())
    >>> check_proof(p, root="x").ok
    False
    """
    status = None
    if manifest is not None:
        if root is not None:
            raise UsageError("give --root or --manifest, not both")
        status = check_manifest(manifest, policy or SignaturePolicy())
        root = manifest.root
        if proof.tree_size != manifest.rows:
            return ProofCheck(False, root, status, f"the proof is for a tree of "
                              f"{proof.tree_size} rows; the signed manifest has {manifest.rows}")
    if root is None:
        raise UsageError("give --root or --manifest")
    if proof.root.lower() != root.lower():
        return ProofCheck(False, root, status, "the proof names another root")
    if not verify_inclusion(proof, root):
        return ProofCheck(False, root, status, f"row {proof.leaf_index} is not in the tree")
    return ProofCheck(True, root, status, f"row {proof.leaf_index} ({proof.leaf_data}) is in "
                      f"the tree {root} of {proof.tree_size} rows")
