"""AES-256-GCM encryption of stored snapshots (manifests and signatures).

File format: ``b"PGENC1\\n"`` (7 bytes), a 12-byte random nonce, then the AES-GCM
ciphertext with its 16-byte tag; the magic is the associated data. The key is 32
bytes given as 64 hex digits or base64, read from a file or from the environment
variable ``POISONGUARD_SNAPSHOT_KEY``. Keys are never printed or logged.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from poisonguard.errors import IntegrityError, UsageError

__all__ = [
    "KEY_ENV",
    "MAGIC",
    "decrypt",
    "encrypt",
    "generate_data_key",
    "is_encrypted",
    "load_data_key",
]

MAGIC = b"PGENC1\n"
KEY_ENV = "POISONGUARD_SNAPSHOT_KEY"


def _parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != 32:
        raise UsageError(f"{where}: the encryption key must be 32 bytes (64 hex digits or base64)")
    return key


def load_data_key(path: str | Path | None = None) -> bytes | None:
    """The key from ``path``, else from ``$POISONGUARD_SNAPSHOT_KEY``, else None.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = generate_data_key(pathlib.Path(tempfile.mkdtemp()) / "k")
    >>> len(load_data_key(p))
    32
    """
    if path is not None:
        try:
            return _parse_key(Path(path).read_text(encoding="ascii"), str(path))
        except (OSError, UnicodeDecodeError):
            raise UsageError(f"{path}: cannot read the encryption key") from None
    env = os.environ.get(KEY_ENV)
    return _parse_key(env, f"${KEY_ENV}") if env else None


def generate_data_key(path: str | Path, *, force: bool = False) -> Path:
    """Write a new random 256-bit key (hex) to ``path``, mode 0600 from the first byte.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = generate_data_key(pathlib.Path(tempfile.mkdtemp()) / "k")
    >>> len(load_data_key(p))
    32
    """
    from poisonguard.provenance.keys import write_secret

    key = AESGCM.generate_key(bit_length=256).hex() + "\n"
    return write_secret(path, key.encode("ascii"), force=force)


def is_encrypted(data: bytes) -> bool:
    return data.startswith(MAGIC)


def encrypt(data: bytes, key: bytes) -> bytes:
    nonce = os.urandom(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, data, MAGIC)


def decrypt(data: bytes, key: bytes | None, *, where: str = "snapshot") -> bytes:
    if not is_encrypted(data):
        return data
    if key is None:
        raise UsageError(f"{where} is encrypted: give --encryption-key or set ${KEY_ENV}")
    body = data[len(MAGIC):]
    if len(body) < 12 + 16:
        raise IntegrityError(f"{where}: the encrypted file is truncated")
    try:
        return AESGCM(key).decrypt(body[:12], body[12:], MAGIC)
    except InvalidTag:
        raise IntegrityError(
            f"{where}: cannot decrypt (wrong key, or the file was altered)"
        ) from None
