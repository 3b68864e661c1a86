"""Snapshots: a signed manifest of every typed cell of a data file (format version 2).

File layout::

    b"PGMANIFEST2\\n"  uint64 LE header length  header (canonical JSON)  body

The header holds the format, schema (every column's name and logical type), row
count, Merkle root, data file digest, source, actor, time, a description of the
body with its SHA-256, and an Ed25519 ``signature`` over the canonical JSON of every
other header field. The body is binary: the row hashes (32 bytes per row, the Merkle
leaves) then, for signed snapshots, the cell fingerprints encrypted with AES-256-GCM
under :func:`cell_key` (only the signer's private key opens them). The whole file may
in turn be encrypted at rest (:mod:`.crypto_at_rest`).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from poisonguard.data import atomic_write_bytes
from poisonguard.errors import IntegrityError
from poisonguard.provenance.canonical import canonical_json
from poisonguard.provenance.crypto_at_rest import decrypt, encrypt
from poisonguard.provenance.keys import signature_block

__all__ = [
    "FORMAT",
    "MAGIC",
    "Manifest",
    "cell_key",
    "current_actor",
    "manifest_body",
    "now_iso",
    "open_cells",
    "read_manifest",
    "seal_cells",
    "sign_manifest",
    "write_manifest",
]

FORMAT = "poisonguard-manifest"
MAGIC = b"PGMANIFEST2\n"
_REQUIRED = {"format": str, "version": int, "rows": int, "schema": dict, "merkle": dict,
             "body": dict, "created_at": str, "actor": str, "source": str}


def current_actor() -> str:
    """The OS user name (what the ledger and manifests record as the actor)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Manifest:
    """A manifest in memory: the signed ``header``, the N x 32 ``row_hashes``, and the
    encrypted cell fingerprints (``cells``, nonce + ciphertext) or None.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance import build_manifest
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n2,b\\n3,c\\n")
    >>> m = build_manifest(p)
    >>> m.rows, len(m.root), m.signature is None
    (3, 64, True)
    """

    header: dict[str, Any]
    row_hashes: np.ndarray
    cells: bytes | None = None

    @property
    def rows(self) -> int:
        return int(self.header["rows"])

    @property
    def root(self) -> str:
        return str(self.header["merkle"]["root"])

    @property
    def signature(self) -> dict[str, Any] | None:
        sig = self.header.get("signature")
        return sig if isinstance(sig, dict) else None

    def body_bytes(self) -> bytes:
        return self.row_hashes.tobytes() + (self.cells or b"")


def manifest_body(header: dict[str, Any]) -> bytes:
    """The bytes a manifest's signature covers: canonical JSON without ``signature``."""
    return canonical_json({k: v for k, v in header.items() if k != "signature"})


def cell_key(key: Ed25519PrivateKey) -> bytes:
    """The AES-256 key of the cell fingerprints, derived from the signing key (HKDF)."""
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"poisonguard-cell-fingerprints-v2").derive(seed)


def seal_cells(cells: np.ndarray, key: Ed25519PrivateKey, root: str) -> bytes:
    """Encrypt an N x C uint16 fingerprint array (bound to the Merkle ``root``)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(cell_key(key)).encrypt(nonce, cells.astype("<u2").tobytes(),
                                                 root.encode("ascii"))


def open_cells(manifest: Manifest, key: Ed25519PrivateKey) -> np.ndarray | None:
    """The fingerprints, if ``key`` is the signer's; None when there are none."""
    info = manifest.header["body"].get("cells")
    if manifest.cells is None or not isinstance(info, dict):
        return None
    try:
        plain = AESGCM(cell_key(key)).decrypt(manifest.cells[:12], manifest.cells[12:],
                                              manifest.root.encode("ascii"))
    except InvalidTag:
        raise IntegrityError("--key is not the key that signed the manifest (its cell "
                             "fingerprints do not open)") from None
    shape = tuple(int(s) for s in info["shape"])
    return np.frombuffer(plain, dtype="<u2").reshape(shape)


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> Manifest:
    """A copy of ``manifest`` whose header carries an Ed25519 signature by ``key``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance import build_manifest
    >>> from poisonguard.provenance.keys import Ed25519PrivateKey
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("x,label\\n1,a\\n2,b\\n")
    >>> signed = sign_manifest(build_manifest(p), Ed25519PrivateKey.generate())
    >>> signed.signature["algorithm"]
    'ed25519'
    """
    header = {k: v for k, v in manifest.header.items() if k != "signature"}
    header["signature"] = signature_block(key, manifest_body(header))
    return Manifest(header, manifest.row_hashes, manifest.cells)


def write_manifest(manifest: Manifest, out: str | Path, *, data_key: bytes | None = None
                   ) -> None:
    """Write atomically; the whole file encrypted with AES-GCM when ``data_key`` is given.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance import build_manifest
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.csv").write_text("x,label\\n1,a\\n2,b\\n")
    >>> m = build_manifest(d / "t.csv")
    >>> write_manifest(m, d / "t.manifest")
    >>> read_manifest(d / "t.manifest").root == m.root
    True
    """
    head = canonical_json(manifest.header)
    data = MAGIC + struct.pack("<Q", len(head)) + head + manifest.body_bytes()
    atomic_write_bytes(out, encrypt(data, data_key) if data_key is not None else data)


def read_manifest(path: str | Path, *, data_key: bytes | None = None) -> Manifest:
    """Read and structurally check a manifest; :class:`IntegrityError` if it is damaged.

    Checks the layout, the header fields and that the body matches the SHA-256 the
    header records (the signature and the root are checked by ``verify``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.provenance import build_manifest
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.csv").write_text("x,label\\n1,a\\n2,b\\n")
    >>> write_manifest(build_manifest(d / "t.csv"), d / "t.manifest")
    >>> read_manifest(d / "t.manifest").rows
    2
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"{p}: cannot read the manifest ({exc.strerror})") from None
    raw = decrypt(raw, data_key, where=str(p))
    if raw.lstrip()[:1] == b"{" and b'"poisonguard-manifest"' in raw[:4096]:
        raise IntegrityError(f"{p}: a version 1 manifest (it hashed the ML encoding, not the "
                             "file's cells, and cannot prove them): take a new snapshot")
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 8:
        raise IntegrityError(f"{p}: not a poisonguard manifest")
    (n,) = struct.unpack("<Q", raw[len(MAGIC):len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if n > len(raw) - start:
        raise IntegrityError(f"{p}: the manifest is truncated")
    try:
        header = json.loads(raw[start:start + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{p}: the manifest header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise IntegrityError(f"{p}: not a poisonguard manifest")
    for name, kind in _REQUIRED.items():
        if not isinstance(header.get(name), kind):
            raise IntegrityError(f"{p}: the manifest's '{name}' is missing or malformed")
    if header["version"] != 2:
        raise IntegrityError(f"{p}: unsupported manifest version {header['version']}")
    body = raw[start + n:]
    info = header["body"]
    if hashlib.sha256(body).hexdigest() != info.get("sha256"):
        raise IntegrityError(f"{p}: the manifest's body does not match its header (the row "
                             "hashes or fingerprints were altered or truncated)")
    rows = header["rows"]
    if rows < 0 or len(body) < 32 * rows or info.get("row_hash_bytes") != 32 * rows:
        raise IntegrityError(f"{p}: the manifest lists fewer row hashes than its {rows} rows")
    hashes = np.frombuffer(body, dtype=np.uint8, count=32 * rows).reshape(rows, 32)
    cells = body[32 * rows:] or None
    return Manifest(header, hashes, cells)
