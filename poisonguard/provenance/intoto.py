"""An in-toto Statement (v1) of a snapshot, signed in a DSSE envelope.

The statement's subject is the data file (its SHA-256, plus the Merkle root of its
rows under ``pgmerkle-sha256``); the predicate is the manifest without its per-row
arrays. DSSE signs ``PAE(payloadType, payload)`` =
``"DSSEv1" SP len(type) SP type SP len(body) SP body`` with the same Ed25519 key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from poisonguard.errors import IntegrityError
from poisonguard.provenance.canonical import canonical_json
from poisonguard.provenance.keys import key_id

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "dsse_envelope", "open_envelope", "pae", "statement"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://poisonguard.dev/snapshot/v1"
_PER_ROW = {"row_hashes", "ids", "cells", "signature"}


def pae(payload_type: str, body: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def statement(manifest: dict[str, Any]) -> dict[str, Any]:
    data = manifest.get("data", {})
    digest = {"pgmerkle-sha256": manifest["merkle"]["root"]}
    if data.get("sha256"):
        digest["sha256"] = data["sha256"]
    name = Path(data["path"]).name if data.get("path") else manifest.get("source", "dataset")
    return {"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": digest}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {k: v for k, v in manifest.items() if k not in _PER_ROW}}


def dsse_envelope(stmt: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    body = canonical_json(stmt)
    sig = key.sign(pae(PAYLOAD_TYPE, body))
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(body).decode("ascii"),
            "signatures": [{"keyid": key_id(key.public_key()),
                            "sig": base64.b64encode(sig).decode("ascii")}]}


def open_envelope(envelope: dict[str, Any], trusted: Ed25519PublicKey) -> dict[str, Any]:
    """The statement inside ``envelope`` if ``trusted`` signed it; else IntegrityError."""
    try:
        body = base64.b64decode(envelope["payload"], validate=True)
        for s in envelope["signatures"]:
            try:
                trusted.verify(base64.b64decode(s["sig"]), pae(envelope["payloadType"], body))
            except InvalidSignature:
                continue
            result: dict[str, Any] = json.loads(body)
            return result
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"malformed DSSE envelope ({exc})") from None
    raise IntegrityError("no signature in the DSSE envelope verifies with the trusted key")
