"""Ed25519 signing keys: generate, load, sign, verify.

Private keys are PKCS#8 PEM files written with mode 0600; public keys are
SubjectPublicKeyInfo PEM. A key id is the first 32 hex digits of SHA-256 of the
raw 32-byte public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from poisonguard.data import atomic_path
from poisonguard.errors import IntegrityError, UsageError

__all__ = [
    "PRIVATE_NAME",
    "PUBLIC_NAME",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "public_key_from_b64",
    "public_key_to_b64",
    "sign",
    "signature_block",
    "verify_signature_block",
    "write_secret",
]

PRIVATE_NAME = "poisonguard.key"
PUBLIC_NAME = "poisonguard.pub"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:32]


def public_key_to_b64(public: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw(public)).decode("ascii")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError:
        raise IntegrityError("the embedded public key is not an Ed25519 key") from None


def write_secret(path: str | Path, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` readable by its owner only, from the first byte.

    The bytes go to a new temporary file beside ``path`` created with
    ``O_CREAT | O_EXCL`` and mode 0600 (never wider, whatever the umask), then renamed
    over ``path``. Without ``force`` an existing ``path`` is refused.

    Examples
    --------
    >>> import tempfile, pathlib, stat
    >>> p = write_secret(pathlib.Path(tempfile.mkdtemp()) / "s", b"x")
    >>> oct(stat.S_IMODE(p.stat().st_mode))
    '0o600'
    """
    p = Path(path)
    if not force and p.exists():
        raise UsageError(f"{p}: already exists (pass --force to replace it)")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not force and p.exists():
            raise UsageError(f"{p}: already exists (pass --force to replace it)")
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def generate_keypair(out_dir: str | Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write a new key pair to ``out_dir``; returns (private, public) paths.

    The private key file is created with mode 0600 from its first byte.

    Examples
    --------
    >>> import tempfile
    >>> priv, pub = generate_keypair(tempfile.mkdtemp())
    >>> priv.name, pub.name
    ('poisonguard.key', 'poisonguard.pub')
    """
    d = Path(out_dir)
    priv_path, pub_path = d / PRIVATE_NAME, d / PUBLIC_NAME
    if not force and (priv_path.exists() or pub_path.exists()):
        raise UsageError(f"{d}: a key pair already exists (pass --force to replace it)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret(priv_path, pem, force=force)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with atomic_path(pub_path) as tmp:
        tmp.write_bytes(pub)
        os.chmod(tmp, 0o644)
    return priv_path, pub_path


def _read(path: str | Path, what: str) -> bytes:
    p = Path(path)
    if p.is_dir():
        p = p / (PRIVATE_NAME if what == "private" else PUBLIC_NAME)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise UsageError(f"{p}: cannot read the {what} key ({exc.strerror})") from None


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (or a directory holding poisonguard.key).

    Examples
    --------
    >>> import tempfile
    >>> priv, pub = generate_keypair(tempfile.mkdtemp())
    >>> type(load_private_key(priv)).__name__
    'Ed25519PrivateKey'
    """
    data = _read(path, "private")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise UsageError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (or a directory holding poisonguard.pub).

    Examples
    --------
    >>> import tempfile
    >>> priv, pub = generate_keypair(tempfile.mkdtemp())
    >>> type(load_public_key(pub)).__name__
    'Ed25519PublicKey'
    """
    data = _read(path, "public")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise UsageError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path}: not an Ed25519 public key")
    return key


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def signature_block(key: Ed25519PrivateKey, message: bytes) -> dict[str, Any]:
    """The ``signature`` object stored beside a signed body."""
    public = key.public_key()
    return {
        "algorithm": "ed25519",
        "key_id": key_id(public),
        "public_key": public_key_to_b64(public),
        "value": base64.b64encode(key.sign(message)).decode("ascii"),
    }


def verify_signature_block(
    block: Any, message: bytes, trusted: Ed25519PublicKey | None = None
) -> str:
    """Check ``block`` over ``message``; with ``trusted``, the signer must be that key.

    Returns the signer's key id; raises :class:`IntegrityError` otherwise.
    """
    if not isinstance(block, dict) or block.get("algorithm") != "ed25519":
        raise IntegrityError("the signature block is missing or not ed25519")
    embedded = public_key_from_b64(str(block.get("public_key", "")))
    if trusted is not None and _raw(trusted) != _raw(embedded):
        raise IntegrityError(
            f"signed by key {key_id(embedded)}, not by the trusted key {key_id(trusted)}"
        )
    try:
        sig = base64.b64decode(str(block.get("value", "")), validate=True)
        embedded.verify(sig, message)
    except (InvalidSignature, ValueError):
        raise IntegrityError("bad signature: the signed content was changed or the "
                             "signature was tampered with") from None
    return key_id(embedded)
