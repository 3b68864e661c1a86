"""Provenance and integrity: signed manifests of every typed cell, a hash-chained
ledger with signed checkpoints, lineage, and safe model files.

See docs/provenance.md for the canonical encoding, the Merkle construction, the
ledger schema and the threat model.
"""

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
from poisonguard.provenance.manifest import Manifest, read_manifest, sign_manifest, write_manifest
from poisonguard.provenance.merkle import InclusionProof, MerkleTree, verify_inclusion
from poisonguard.provenance.modelio import load_model, save_model
from poisonguard.provenance.models import sign_model, verify_model_file
from poisonguard.provenance.modelscan import ModelLimits, ModelRefusedError, ModelScan, scan_model
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
