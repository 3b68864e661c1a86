"""The one signature policy of every command that checks a signature.

``verify``, ``verify-proof``, ``verify-model --signature``, ``ledger verify`` and
:func:`~poisonguard.provenance.modelio.load_model` all decide alike: a signature is
accepted when it verifies with the **pinned** public key (``--pubkey``), or, only when
the caller says so explicitly (``--trust-embedded-key``), with the key embedded in the
signed file (which proves integrity, not who signed: anyone can re-sign). A missing
signature is accepted only with ``--allow-unsigned`` and no pinned key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from poisonguard.errors import IntegrityError, UsageError
from poisonguard.provenance.keys import key_id as _key_id
from poisonguard.provenance.keys import load_public_key, public_key_from_b64, verify_signature_block

__all__ = ["SignaturePolicy"]


@dataclass(frozen=True)
class SignaturePolicy:
    """Which signers to accept.

    Parameters
    ----------
    pinned : Ed25519PublicKey or None
        The only key accepted (``--pubkey``).
    trust_embedded : bool
        Accept the key embedded in the signed file (``--trust-embedded-key``).
    allow_unsigned : bool
        Accept an unsigned file (``--allow-unsigned``); never with a pinned key.

    Examples
    --------
    >>> SignaturePolicy(trust_embedded=True).describe()
    'any signer (embedded key trusted by --trust-embedded-key; not pinned)'
    """

    pinned: Ed25519PublicKey | None = None
    trust_embedded: bool = False
    allow_unsigned: bool = False

    @classmethod
    def from_options(cls, pubkey: str | os.PathLike[str] | None = None, *,
                     trust_embedded_key: bool = False,
                     allow_unsigned: bool = False) -> SignaturePolicy:
        """The policy of the command-line options (loads the pinned key)."""
        if pubkey is not None and trust_embedded_key:
            raise UsageError("give --pubkey or --trust-embedded-key, not both")
        pinned = load_public_key(Path(pubkey)) if pubkey is not None else None
        return cls(pinned=pinned, trust_embedded=trust_embedded_key,
                   allow_unsigned=allow_unsigned)

    @property
    def configured(self) -> bool:
        """Whether any signer is accepted (a pinned key or trusted embedded keys)."""
        return self.pinned is not None or self.trust_embedded

    def describe(self) -> str:
        if self.pinned is not None:
            return f"key {_key_id(self.pinned)} (pinned)"
        if self.trust_embedded:
            return "any signer (embedded key trusted by --trust-embedded-key; not pinned)"
        return "no signer configured"

    def check(self, block: Any, body: bytes, *, what: str = "the file") -> str:
        """Check ``block`` over ``body``; return the status line, or raise.

        Raises :class:`IntegrityError` for a missing, bad or foreign signature and
        :class:`UsageError` when no signer is pinned and embedded keys are not trusted.
        """
        if block is None:
            if self.allow_unsigned and self.pinned is None:
                return "unsigned (accepted by --allow-unsigned)"
            raise IntegrityError(f"{what} is not signed (pass --allow-unsigned to accept)")
        if self.pinned is not None:
            kid = verify_signature_block(block, body, self.pinned)
            return f"good, key {kid} (pinned by --pubkey)"
        if not self.trust_embedded:
            embedded = "unknown"
            if isinstance(block, dict):
                try:
                    embedded = _key_id(public_key_from_b64(str(block.get("public_key", ""))))
                except IntegrityError:
                    pass
            raise UsageError(f"{what} is signed by key {embedded}: pin the signer with "
                             "--pubkey KEY, or pass --trust-embedded-key to accept any signer")
        kid = verify_signature_block(block, body, None)
        return (f"good, key {kid} (not pinned: --trust-embedded-key accepts any signer, "
                "so this proves integrity, not origin)")
