"""Provenance and integrity: signed per-row manifests, a hash-chained ledger, lineage,
and safe model files.

See docs/provenance.md for the canonical encoding, the Merkle construction and the
ledger schema.
"""

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
    build_manifest,
    read_manifest,
    sign_manifest,
    write_manifest,
)
from poisonguard.provenance.merkle import InclusionProof, MerkleTree, verify_inclusion
from poisonguard.provenance.models import sign_model, verify_model_file
from poisonguard.provenance.modelscan import ModelScan, scan_model
from poisonguard.provenance.snapshot import snapshot
from poisonguard.provenance.verify import RowChange, VerifyResult, verify_dataset

__all__ = [
    "InclusionProof",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerLockedError",
    "LedgerProblem",
    "LineageNode",
    "MerkleTree",
    "ModelScan",
    "RowChange",
    "VerifyResult",
    "build_manifest",
    "data_ref",
    "dataset_root",
    "generate_data_key",
    "generate_keypair",
    "lineage",
    "load_data_key",
    "load_private_key",
    "load_public_key",
    "read_manifest",
    "record_derivation",
    "record_event",
    "scan_model",
    "sign_manifest",
    "sign_model",
    "snapshot",
    "verify_dataset",
    "verify_inclusion",
    "verify_model_file",
    "write_manifest",
]
