"""Hash and sign model artifacts like datasets: a Merkle tree over 1 MiB chunks.

A model manifest records the file's size, SHA-256, the Merkle root over its
chunks, the format verdict of :func:`~poisonguard.provenance.modelscan.scan_model`,
the actor and the time, and an Ed25519 signature over the rest (canonical JSON).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from poisonguard.errors import DataError, IntegrityError
from poisonguard.provenance.canonical import canonical_json
from poisonguard.provenance.keys import key_id, public_key_from_b64, signature_block
from poisonguard.provenance.manifest import current_actor, now_iso
from poisonguard.provenance.merkle import MerkleTree
from poisonguard.provenance.modelscan import ModelRefusedError, scan_model
from poisonguard.provenance.trust import SignaturePolicy

__all__ = ["MODEL_FORMAT", "model_digest", "read_model_manifest", "sign_model", "verify_model_file"]

MODEL_FORMAT = "poisonguard-model-manifest"
CHUNK = 1 << 20


def model_digest(path: str | Path) -> dict[str, Any]:
    """Size, SHA-256 and the Merkle root over 1 MiB chunks of ``path``."""
    p = Path(path)
    whole = hashlib.sha256()
    chunks = []
    try:
        with p.open("rb") as fh:
            while block := fh.read(CHUNK):
                whole.update(block)
                chunks.append(hashlib.sha256(block).digest())
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror})", path=str(p)) from None
    tree = MerkleTree(chunks)
    return {"size": p.stat().st_size, "sha256": whole.hexdigest(),
            "merkle": {"algorithm": "sha256-rfc6962", "chunk_size": CHUNK,
                       "leaves": "sha256 of each chunk", "size": tree.size, "root": tree.root}}


def sign_model(path: str | Path, key: Ed25519PrivateKey, *, source: str = "") -> dict[str, Any]:
    """A signed manifest for the model file at ``path``; refuses a file ``scan_model`` refuses.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance.keys import Ed25519PrivateKey
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
    >>> _ = p.write_bytes(b'\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x00{}')
    >>> sign_model(p, Ed25519PrivateKey.generate())["scan"]
    {'format': 'safetensors', 'safe': True}
    """
    scan = scan_model(path)
    if not scan.safe:
        raise ModelRefusedError(f"{path}: refusing to sign an unsafe model: "
                                + "; ".join(scan.problems[:3]))
    body = {"format": MODEL_FORMAT, "version": 1, "file": Path(path).name, "source": source,
            "created_at": now_iso(), "actor": current_actor(), **model_digest(path),
            "scan": {"format": scan.format, "safe": scan.safe}}
    return {**body, "signature": signature_block(key, canonical_json(body))}


def read_model_manifest(path: str | Path) -> dict[str, Any]:
    try:
        obj = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise IntegrityError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IntegrityError(f"{path}: the model manifest is truncated or not JSON") from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise IntegrityError(f"{path}: not a poisonguard model manifest")
    return obj


def verify_model_file(path: str | Path, manifest: dict[str, Any],
                      trusted: Ed25519PublicKey | None = None, *,
                      policy: SignaturePolicy | None = None) -> tuple[str, list[str]]:
    """(signer key id, differences) of ``path`` against a :func:`sign_model` manifest.

    The signer is accepted by ``policy`` (default: exactly the ``trusted`` key; see
    :class:`~poisonguard.provenance.trust.SignaturePolicy`). Raises
    :class:`IntegrityError` on a bad or foreign signature.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance.keys import Ed25519PrivateKey
    >>> key = Ed25519PrivateKey.generate()
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
    >>> _ = p.write_bytes(b'\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x00{}')
    >>> verify_model_file(p, sign_model(p, key), key.public_key())[1]
    []
    """
    policy = policy or SignaturePolicy(pinned=trusted)
    body = {k: v for k, v in manifest.items() if k != "signature"}
    policy.check(manifest.get("signature"), canonical_json(body), what="the model manifest")
    kid = key_id(public_key_from_b64(str(manifest["signature"].get("public_key", ""))))
    now = model_digest(path)
    diffs = []
    if now["size"] != manifest.get("size"):
        diffs.append(f"size {manifest.get('size')} -> {now['size']}")
    if now["sha256"] != manifest.get("sha256"):
        diffs.append(f"sha256 {str(manifest.get('sha256'))[:16]}... -> {now['sha256'][:16]}...")
    return kid, diffs
