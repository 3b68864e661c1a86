"""The public API of poisonguard.provenance, and the small key helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

import poisonguard.provenance as prov
from poisonguard.errors import IntegrityError, UsageError
from poisonguard.provenance.crypto_at_rest import decrypt, encrypt, load_data_key


def test_exported_names_exist() -> None:
    assert sorted(prov.__all__) == prov.__all__
    for name in prov.__all__:
        assert getattr(prov, name) is not None


def test_data_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("too short")
    with pytest.raises(UsageError, match="32 bytes"):
        load_data_key(bad)
    assert load_data_key(None) is None
    monkeypatch.setenv("POISONGUARD_SNAPSHOT_KEY", "ab" * 32)
    key = load_data_key(None)
    assert key == bytes.fromhex("ab" * 32)
    blob = encrypt(b"manifest", key)
    assert decrypt(blob, key) == b"manifest" and decrypt(b"plain", None) == b"plain"
    with pytest.raises(IntegrityError, match="truncated"):
        decrypt(blob[:20], key)
    with pytest.raises(UsageError, match="encrypted"):
        decrypt(blob, None)


def test_private_key_checks(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("not a key")
    with pytest.raises(UsageError, match="not an unencrypted PEM private key"):
        prov.load_private_key(tmp_path / "k")
    with pytest.raises(UsageError, match="cannot read"):
        prov.load_private_key(tmp_path / "missing")
    priv, pub = prov.generate_keypair(tmp_path / "d")
    assert prov.load_private_key(tmp_path / "d").public_key() == prov.load_public_key(pub)
