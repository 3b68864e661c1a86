"""Issue 10 item 3: secrets 0600 from the first byte, one signature policy, proofs bound
to the signed manifest, ledger reads that never create, no lost appends, checkpoints."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from poisonguard.provenance import crypto_at_rest
from poisonguard.provenance import keys as keys_module
from poisonguard.provenance.chain import GENESIS, LedgerEntry
from poisonguard.provenance.ledger import Ledger
from tests.security.conftest import run_cli


@pytest.mark.parametrize("make", ["keypair", "data_key"])
def test_secrets_are_never_readable_by_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              make: str) -> None:
    """An attacker who opens the file whenever its mode lets others read gets nothing."""
    stolen: list[object] = []
    real_chmod = os.chmod

    def chmod(path: object, mode: int, *a: object, **k: object) -> None:
        real_chmod(path, mode, *a, **k)  # type: ignore[arg-type]
        if mode & 0o044 and Path(str(path)).is_file():
            stolen.append(open(str(path), "rb"))  # noqa: SIM115 - read after the write
    monkeypatch.setattr(os, "chmod", chmod)
    old_umask = os.umask(0o022)
    try:
        if make == "keypair":
            priv, _ = keys_module.generate_keypair(tmp_path / "k")
        else:
            priv = crypto_at_rest.generate_data_key(tmp_path / "data.key")
    finally:
        os.umask(old_umask)
    secret = priv.read_bytes()
    leaked = [fh.read() for fh in stolen]  # type: ignore[attr-defined]
    assert secret not in leaked and stat.S_IMODE(priv.stat().st_mode) == 0o600


def _wine(tmp_path: Path) -> Path:
    from poisonguard.data import save_dataset
    from poisonguard.datasets import builtin_dataset

    save_dataset(builtin_dataset("wine"), tmp_path / "w.csv")
    return tmp_path / "w.csv"


def test_verify_proof_needs_a_signer_and_the_manifest_tree_size(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    data, m, proof = _wine(tmp_path), tmp_path / "m.pgm", tmp_path / "p.json"
    assert run_cli("snapshot", data, "--out", m, "--key", keys[0])[0] == 0
    assert run_cli("verify", data, "--manifest", m, "--pubkey", keys[1], "--row", "0",
                   "--proof-out", proof)[0] == 0
    code, text = run_cli("verify-proof", proof, "--manifest", m)
    assert code == 2 and "--pubkey" in text
    assert run_cli("verify-proof", proof, "--manifest", m, "--pubkey", keys[1])[0] == 0
    p = json.loads(proof.read_text())
    p["tree_size"] = 200  # still leads to the root (row 0, same path length), wrong size
    proof.write_text(json.dumps(p))
    assert run_cli("verify-proof", proof, "--root", p["root"])[0] == 0  # the root alone
    code, text = run_cli("verify-proof", proof, "--manifest", m, "--pubkey", keys[1])
    assert code == 1 and "tree of 200 rows" in text


def test_verify_without_pinned_key_is_refused(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    data, m = _wine(tmp_path), tmp_path / "m.pgm"
    assert run_cli("snapshot", data, "--out", m, "--key", keys[0])[0] == 0
    code, text = run_cli("verify", data, "--manifest", m)
    assert code == 2 and "--trust-embedded-key" in text
    code, text = run_cli("verify", data, "--manifest", m, "--trust-embedded-key")
    assert code == 0 and "not pinned" in text


def test_ledger_reads_never_create_and_refuse_garbage(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ledger.sqlite"
    for cmd in (["ledger", "verify"], ["ledger", "show"]):
        code, text = run_cli(*cmd, "--ledger", missing)
        assert code == 2 and "no ledger" in text and len(text.strip().splitlines()) == 1
    assert not missing.exists() and not missing.parent.exists()
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(4096))
    code, text = run_cli("ledger", "verify", "--ledger", garbage)
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1


_WRITER = """
import sys
from poisonguard.provenance.ledger import Ledger
led = Ledger(sys.argv[1])
for i in range(int(sys.argv[3])):
    led.append("test", details={"writer": int(sys.argv[2]), "i": i})
"""


@pytest.mark.slow  # about 1-4 minutes on a loaded 2-core machine
def test_no_append_is_lost_under_contention(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite"
    Ledger(path).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(w), "200"],
                              env=env, stderr=subprocess.PIPE, text=True) for w in range(8)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    led = Ledger(path, create=False)
    entries = led.entries()
    assert len(entries) == 1600 and not led.verify()
    seen = {(e.details["writer"], e.details["i"]) for e in entries}
    assert seen == {(w, i) for w in range(8) for i in range(200)}


def _rewrite(path: Path, keep: int) -> None:
    """Delete the tail after ``keep`` entries, then recompute every hash (a full rewrite)."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM poisonguard_ledger WHERE seq > ?", (keep,))
        db.execute("UPDATE poisonguard_ledger SET actor = 'mallory'")
    led = Ledger(path, create=False)
    prev = GENESIS
    fixed = []
    for e in led.entries():
        draft = LedgerEntry(e.seq, e.kind, e.actor, e.created_at, e.inputs, e.outputs,
                            e.details, prev, "")
        prev = draft.computed_hash()
        fixed.append((prev, draft.prev_hash, e.seq))
    with sqlite3.connect(path) as db:
        db.executemany("UPDATE poisonguard_ledger SET entry_hash = ?, prev_hash = ? WHERE seq = ?",
                       fixed)


@pytest.mark.parametrize("attack", ["truncate", "rewrite"])
def test_signed_checkpoints_catch_truncation_and_rewrites(tmp_path: Path, keys: tuple[Path, Path],
                                                           attack: str) -> None:
    path = tmp_path / "l.sqlite"
    led = Ledger(path)
    for i in range(5):
        led.append("scan", details={"i": i})
    led.close()
    code, text = run_cli("ledger", "checkpoint", "--key", keys[0], "--ledger", path,
                         "--out", tmp_path / "cp.json")
    assert code == 0 and "5 entries" in text
    assert run_cli("ledger", "verify", "--ledger", path, "--pubkey", keys[1])[0] == 0
    if attack == "truncate":
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM poisonguard_ledger WHERE seq > 3")
    else:
        _rewrite(path, keep=5)
    assert Ledger(path, create=False).verify() == []  # the chain alone looks intact
    code, text = run_cli("ledger", "verify", "--ledger", path, "--pubkey", keys[1])
    assert code == 1 and ("gone" in text or "rewritten" in text)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM poisonguard_checkpoints")  # the attacker hides them too
    code, text = run_cli("ledger", "verify", "--ledger", path, "--pubkey", keys[1],
                         "--checkpoint", tmp_path / "cp.json")
    assert code == 1 and "BROKEN" in text


def test_snapshot_with_a_key_checkpoints_the_ledger(tmp_path: Path,
                                                   keys: tuple[Path, Path]) -> None:
    pd.DataFrame({"x": [1, 2], "label": [0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    assert run_cli("snapshot", tmp_path / "t.csv", "--out", tmp_path / "m.pgm", "--key",
                   keys[0])[0] == 0
    led = Ledger(create=False)
    assert [c.size for c in led.checkpoints()] == [1]
