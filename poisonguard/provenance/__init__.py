"""Provenance and integrity: signed manifests of every typed cell, a hash-chained
ledger with signed checkpoints, lineage, and safe model files.

See docs/provenance.md for the canonical encoding, the Merkle construction, the
ledger schema and the threat model.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it (imported on first use, PEP 562, so that
#: the command line's ``--help`` does not pay for cryptography, pyarrow and SQLAlchemy)
_WHERE = {
    "Checkpoint": "poisonguard.provenance.checkpoint",
    "InclusionProof": "poisonguard.provenance.merkle",
    "InputLimits": "poisonguard.provenance.typed",
    "Ledger": "poisonguard.provenance.ledger",
    "LedgerEntry": "poisonguard.provenance.ledger",
    "LedgerError": "poisonguard.provenance.ledger",
    "LedgerLockedError": "poisonguard.provenance.ledger",
    "LedgerProblem": "poisonguard.provenance.ledger",
    "LineageNode": "poisonguard.provenance.lineage",
    "Manifest": "poisonguard.provenance.manifest",
    "MerkleTree": "poisonguard.provenance.merkle",
    "ModelLimits": "poisonguard.provenance.modelscan",
    "ModelRefusedError": "poisonguard.provenance.modelscan",
    "ModelScan": "poisonguard.provenance.modelscan",
    "ProofCheck": "poisonguard.provenance.proofs",
    "RowChange": "poisonguard.provenance.verify",
    "SignaturePolicy": "poisonguard.provenance.trust",
    "VerifyResult": "poisonguard.provenance.verify",
    "build_manifest": "poisonguard.provenance.snapshot",
    "check_manifest": "poisonguard.provenance.verify",
    "check_proof": "poisonguard.provenance.proofs",
    "data_ref": "poisonguard.provenance.lineage",
    "dataset_root": "poisonguard.provenance.lineage",
    "generate_data_key": "poisonguard.provenance.crypto_at_rest",
    "generate_keypair": "poisonguard.provenance.keys",
    "lineage": "poisonguard.provenance.lineage",
    "load_data_key": "poisonguard.provenance.crypto_at_rest",
    "load_model": "poisonguard.provenance.modelio",
    "load_private_key": "poisonguard.provenance.keys",
    "load_public_key": "poisonguard.provenance.keys",
    "open_typed": "poisonguard.provenance.typed",
    "prove_row": "poisonguard.provenance.proofs",
    "read_checkpoint": "poisonguard.provenance.checkpoint",
    "read_manifest": "poisonguard.provenance.manifest",
    "read_proof": "poisonguard.provenance.proofs",
    "record_derivation": "poisonguard.provenance.lineage",
    "record_event": "poisonguard.provenance.ledger",
    "save_model": "poisonguard.provenance.modelio",
    "scan_model": "poisonguard.provenance.modelscan",
    "sign_manifest": "poisonguard.provenance.manifest",
    "sign_model": "poisonguard.provenance.models",
    "snapshot": "poisonguard.provenance.snapshot",
    "verify_file": "poisonguard.provenance.verify",
    "verify_inclusion": "poisonguard.provenance.merkle",
    "verify_model_file": "poisonguard.provenance.models",
    "write_manifest": "poisonguard.provenance.manifest",
}

if TYPE_CHECKING:
    from poisonguard.provenance.checkpoint import Checkpoint, read_checkpoint
    from poisonguard.provenance.crypto_at_rest import generate_data_key, load_data_key
    from poisonguard.provenance.keys import generate_keypair, load_private_key, load_public_key
    from poisonguard.provenance.ledger import (
        Ledger,
        LedgerEntry,
        LedgerError,
        LedgerLockedError,
        LedgerProblem,
        record_event,
    )
    from poisonguard.provenance.lineage import (
        LineageNode,
        data_ref,
        dataset_root,
        lineage,
        record_derivation,
    )
    from poisonguard.provenance.manifest import (
        Manifest,
        read_manifest,
        sign_manifest,
        write_manifest,
    )
    from poisonguard.provenance.merkle import InclusionProof, MerkleTree, verify_inclusion
    from poisonguard.provenance.modelio import load_model, save_model
    from poisonguard.provenance.models import sign_model, verify_model_file
    from poisonguard.provenance.modelscan import (
        ModelLimits,
        ModelRefusedError,
        ModelScan,
        scan_model,
    )
    from poisonguard.provenance.proofs import ProofCheck, check_proof, prove_row, read_proof
    from poisonguard.provenance.snapshot import build_manifest, snapshot
    from poisonguard.provenance.trust import SignaturePolicy
    from poisonguard.provenance.typed import InputLimits, open_typed
    from poisonguard.provenance.verify import RowChange, VerifyResult, check_manifest, verify_file


__all__ = [
    "Checkpoint",
    "InclusionProof",
    "InputLimits",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerLockedError",
    "LedgerProblem",
    "LineageNode",
    "Manifest",
    "MerkleTree",
    "ModelLimits",
    "ModelRefusedError",
    "ModelScan",
    "ProofCheck",
    "RowChange",
    "SignaturePolicy",
    "VerifyResult",
    "build_manifest",
    "check_manifest",
    "check_proof",
    "data_ref",
    "dataset_root",
    "generate_data_key",
    "generate_keypair",
    "lineage",
    "load_data_key",
    "load_model",
    "load_private_key",
    "load_public_key",
    "open_typed",
    "prove_row",
    "read_checkpoint",
    "read_manifest",
    "read_proof",
    "record_derivation",
    "record_event",
    "save_model",
    "scan_model",
    "sign_manifest",
    "sign_model",
    "snapshot",
    "verify_file",
    "verify_inclusion",
    "verify_model_file",
    "write_manifest",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'poisonguard.provenance' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*__all__, *(n for n in globals() if n.startswith("_"))})


class _Package(types.ModuleType):
    """Importing a submodule named like a public function (``snapshot``, ``lineage``) must not
    replace the function with the module on the package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
