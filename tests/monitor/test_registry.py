"""Registry: safe formats only, versions, aliases, rollback, and the ledger trail."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from poisonguard.errors import IntegrityError, UsageError
from poisonguard.monitor import (
    alias_history,
    aliases,
    get_version,
    list_versions,
    load_version,
    move_alias,
    register_model,
    rollback,
)
from poisonguard.provenance import Ledger, sign_model
from poisonguard.provenance.keys import generate_keypair, load_private_key
from tests.monitor.conftest import Digits


def test_versions_count_up_and_aliases_point(digits: Digits) -> None:
    v1 = register_model(digits.clean_path, name="digits", alias="candidate", reason="first")
    v2 = register_model(digits.badnets_path, name="digits")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.format == "safetensors" and v1.signer is None
    assert [v.version for v in list_versions("digits")] == [1, 2]
    assert aliases("digits") == {"candidate": 1}
    assert get_version("digits").version == 2
    assert get_version("digits", alias="candidate").sha256 == v1.sha256
    kinds = [e.kind for e in Ledger().entries()]
    assert kinds == ["monitor-register", "monitor-alias", "monitor-register"]


def test_unsigned_pickle_is_refused_and_never_recorded(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(IntegrityError, match="sign-model manifest"):
        register_model(path, name="digits")
    assert list_versions() == []


def test_signed_file_needs_the_pinned_key(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    priv, pub = generate_keypair(tmp_path / "keys")
    _, other_pub = generate_keypair(tmp_path / "other")
    manifest = tmp_path / "model.sig.json"
    import json

    manifest.write_text(json.dumps(sign_model(path, load_private_key(priv))))
    with pytest.raises(UsageError, match="pinned public key"):
        register_model(path, name="m", signature=manifest)
    with pytest.raises(IntegrityError):
        register_model(path, name="m", signature=manifest, pubkey=other_pub)
    v = register_model(path, name="m", signature=manifest, pubkey=pub)
    assert v.format == "pickle" and v.signer
    path.write_bytes(pickle.dumps({"weights": [9.0, 2.0]}))
    with pytest.raises(IntegrityError, match="changed since it was signed"):
        register_model(path, name="m", signature=manifest, pubkey=pub)


def test_a_file_changed_after_registration_is_not_loaded(tmp_path: Path, digits: Digits) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(digits.clean_path.read_bytes())
    v = register_model(path, name="digits")
    path.write_bytes(digits.badnets_path.read_bytes())
    with pytest.raises(IntegrityError, match="changed since digits v1 was registered"):
        load_version(v)


def test_rollback_restores_the_previous_champion_and_history_has_both_moves(
        digits: Digits) -> None:
    for _ in range(3):
        register_model(digits.clean_path, name="digits")
    move_alias("digits", "champion", 1, reason="initial")
    move_alias("digits", "champion", 2, reason="better", action="promote")
    move_alias("digits", "champion", 3, reason="even better", action="promote")
    back = rollback("digits", reason="canary fired on v3")
    assert (back.from_version, back.to_version) == (3, 2)
    assert rollback("digits", reason="v2 too").to_version == 1
    with pytest.raises(UsageError, match="no previous value"):
        rollback("digits", reason="nothing left")
    moves = alias_history("digits", "champion")
    assert [(m.action, m.from_version, m.to_version) for m in moves] == [
        ("set", None, 1), ("promote", 1, 2), ("promote", 2, 3), ("rollback", 3, 2),
        ("rollback", 2, 1)]
    assert moves[3].reason == "canary fired on v3" and moves[3].actor
    assert aliases("digits")["champion"] == 1
    assert Ledger().verify() == []


def test_bad_names_and_missing_versions_are_usage_errors(digits: Digits) -> None:
    with pytest.raises(UsageError, match="bad model name"):
        register_model(digits.clean_path, name="../x")
    register_model(digits.clean_path, name="digits")
    with pytest.raises(UsageError, match="no version 7"):
        get_version("digits", version=7)
    with pytest.raises(UsageError, match="needs a reason"):
        move_alias("digits", "champion", 1, reason=" ")
