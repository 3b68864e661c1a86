"""snapshot / verify end to end, through the command line, on real data files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.data import Dataset, save_dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.provenance.keys import generate_keypair
from poisonguard.provenance.ledger import Ledger
from poisonguard.provenance.manifest import MAGIC, read_manifest
from poisonguard.provenance.snapshot import build_manifest
from poisonguard.provenance.verify import match_rows

runner = CliRunner()


def _run(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def _snap(data: Path, keys: tuple[Path, Path], out: Path, *extra: str) -> Path:
    code, text = _run("snapshot", data, "--out", out, "--key", keys[0], "--source", "vendor",
                      *extra)
    assert code == 0, text
    return out


def _verify(data: Path, manifest: Path, keys: tuple[Path, Path], *extra: str) -> tuple[int, str]:
    return _run("verify", data, "--manifest", manifest, "--pubkey", keys[1], "--key", keys[0],
                *extra)


def _edit_csv(path: Path, out: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    lines = path.read_text().splitlines()
    edit(lines)
    out.write_text("\n".join(lines) + "\n")
    return out


def test_same_typed_values_hash_the_same_from_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.read_csv(_wine(tmp_path))
    frame.to_parquet(tmp_path / "w.parquet", index=False)
    frame.to_csv(tmp_path / "w2.csv", index=False)
    roots = {build_manifest(tmp_path / f).root for f in ("w.csv", "w.parquet", "w2.csv")}
    assert len(roots) == 1


def _wine(tmp_path: Path) -> Path:
    save_dataset(builtin_dataset("wine"), tmp_path / "w.csv")
    return tmp_path / "w.csv"


def test_identical_data_verifies(tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path]) -> None:
    m = _snap(wine_csv, keys, tmp_path / "m.pgm")
    code, text = _verify(wine_csv, m, keys)
    assert code == 0 and "OK: 178 rows identical" in text and "(pinned by --pubkey)" in text
    parquet = tmp_path / "w.parquet"
    pd.read_csv(wine_csv).to_parquet(parquet, index=False)
    code, text = _verify(parquet, m, keys)
    assert code == 0 and "file's bytes differ" in text


def test_one_changed_byte_names_the_row_and_column(
    tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path]
) -> None:
    m = _snap(wine_csv, keys, tmp_path / "m.pgm")
    header = wine_csv.read_text().splitlines()[0].split(",")
    col = header.index("color_intensity")

    def edit(lines: list[str]) -> None:
        cells = lines[41].split(",")  # data row 40
        last = cells[col][-1]
        cells[col] = cells[col][:-1] + ("7" if last != "7" else "3")
        lines[41] = ",".join(cells)

    changed = _edit_csv(wine_csv, tmp_path / "changed.csv", edit)
    diff = sum(a != b for a, b in zip(wine_csv.read_bytes(), changed.read_bytes(), strict=True))
    assert diff == 1
    code, text = _verify(changed, m, keys)
    assert code == 1
    assert "0 added, 0 removed, 1 modified" in text
    assert "row 40 modified: columns color_intensity" in text


def test_insert_delete_and_relabel_are_reported_as_such(
    tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path]
) -> None:
    m = _snap(wine_csv, keys, tmp_path / "m.pgm")

    def edit(lines: list[str]) -> None:
        lines.insert(11, lines[11].replace(",", ",1", 1))  # new row at index 10
        del lines[101]  # old row 99
        cells = lines[151].split(",")  # row 150 (one insert, one delete before it)
        cells[-1] = "0" if cells[-1] != "0" else "1"
        lines[151] = ",".join(cells)

    code, text = _verify(_edit_csv(wine_csv, tmp_path / "c.csv", edit), m, keys, "--json")
    assert code == 1
    report = json.loads(text)
    assert (report["added"], report["removed"], report["modified"]) == (1, 1, 1)
    kinds = {(c["kind"], c["index"], c["old_index"]): c["columns"] for c in report["changes"]}
    assert kinds == {("added", 10, None): [], ("removed", None, 99): [],
                     ("modified", 150, 150): ["label"]}


def test_reordered_rows_are_named(
    tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path]
) -> None:
    m = _snap(wine_csv, keys, tmp_path / "m.pgm")

    def edit(lines: list[str]) -> None:
        lines[5], lines[6] = lines[6], lines[5]

    code, text = _verify(_edit_csv(wine_csv, tmp_path / "c.csv", edit), m, keys)
    assert code == 1 and "1 moved" in text and "0 modified" in text
    assert "row 4 -> 5 moved" in text or "row 5 -> 4 moved" in text


def _h(*keys: str) -> np.ndarray:
    out = np.zeros((len(keys), 32), dtype=np.uint8)
    for i, k in enumerate(keys):
        out[i, :len(k)] = np.frombuffer(k.encode(), dtype=np.uint8)
    return out


def test_match_rows_pairs_by_position() -> None:
    equal, modified, removed, added, moved = match_rows(_h("a", "b", "c", "d", "e"),
                                                        _h("a", "X", "b", "c", "D", "e"))
    assert modified == [(3, 4)] and added == [1] and removed == [] and moved == []
    assert int((equal >= 0).sum()) == 4
    _, modified, removed, added, _ = match_rows(_h("a", "a", "b"), _h("a", "b"))
    assert (modified, removed, added) == ([], [1], [])
    *_, moved = match_rows(_h("a", "b", "c", "d"), _h("d", "a", "b", "c"))
    assert moved == [(3, 0)]


@pytest.mark.parametrize("damage", ["truncate", "edit_row", "edit_signature", "unsigned",
                                    "version1"])
def test_damaged_manifests_exit_2(tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path],
                                  damage: str) -> None:
    m = _snap(wine_csv, keys, tmp_path / "m.pgm")
    raw = m.read_bytes()
    n = int.from_bytes(raw[len(MAGIC):len(MAGIC) + 8], "little")
    start = len(MAGIC) + 8
    header = json.loads(raw[start:start + n])
    body = raw[start + n:]

    def write(h: dict, b: bytes) -> None:  # type: ignore[type-arg]
        text = json.dumps(h, sort_keys=True, separators=(",", ":")).encode()
        m.write_bytes(MAGIC + len(text).to_bytes(8, "little") + text + b)

    if damage == "truncate":
        m.write_bytes(raw[: len(raw) // 2])
        expect = "does not match its header"
    elif damage == "edit_row":
        import hashlib

        b = bytearray(body)
        b[7 * 32] ^= 1
        header["body"]["sha256"] = hashlib.sha256(bytes(b)).hexdigest()
        write(header, bytes(b))
        expect = "bad signature"
    elif damage == "edit_signature":
        sig = header["signature"]["value"]
        header["signature"]["value"] = ("A" if sig[0] != "A" else "B") + sig[1:]
        write(header, body)
        expect = "bad signature"
    elif damage == "unsigned":
        del header["signature"]
        write(header, body)
        expect = "not signed"
    else:
        m.write_text(json.dumps({"format": "poisonguard-manifest", "version": 1}))
        expect = "version 1"
    code, text = _verify(wine_csv, m, keys)
    assert code == 2 and expect in text and "Traceback" not in text


def test_wrong_key_is_refused(tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path]) -> None:
    m = _snap(wine_csv, keys, tmp_path / "m.pgm")
    other = generate_keypair(tmp_path / "other")
    code, text = _verify(wine_csv, m, other)
    assert code == 2 and "not by the trusted key" in text
    code, text = _run("verify", wine_csv, "--manifest", m, "--pubkey", keys[0])  # a private key
    assert code == 2 and "not a PEM public key" in text


def test_unsigned_manifest_needs_allow_unsigned_and_is_checked_internally(
    tmp_path: Path, wine_csv: Path
) -> None:
    m = tmp_path / "m.pgm"
    code, text = _run("snapshot", wine_csv, "--out", m)
    assert code == 0 and "not signed" in text
    assert _run("verify", wine_csv, "--manifest", m)[0] == 2
    assert _run("verify", wine_csv, "--manifest", m, "--allow-unsigned")[0] == 0
    manifest = read_manifest(m)
    hashes = manifest.row_hashes.copy()
    hashes[3] = 0
    from poisonguard.provenance.manifest import Manifest, write_manifest

    edited = Manifest(manifest.header, hashes, None)
    import hashlib

    edited.header["body"]["sha256"] = hashlib.sha256(edited.body_bytes()).hexdigest()
    write_manifest(edited, m)
    code, text = _run("verify", wine_csv, "--manifest", m, "--allow-unsigned")
    assert code == 2 and "Merkle root does not match" in text


def test_encrypted_snapshot(tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "data.key"
    code, _ = _run("keys", "generate-data-key", "--out", key_file)
    assert code == 0 and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    secret = key_file.read_text().strip()
    m = _snap(wine_csv, keys, tmp_path / "m.enc", "--encryption-key", str(key_file))
    assert m.read_bytes().startswith(b"PGENC1\n") and b"merkle" not in m.read_bytes()
    code, text = _verify(wine_csv, m, keys)
    assert code == 2 and "encrypted" in text
    wrong = tmp_path / "wrong.key"
    wrong.write_text("11" * 32)
    code, text = _verify(wine_csv, m, keys, "--encryption-key", str(wrong))
    assert code == 2 and "cannot decrypt" in text and secret not in text
    monkeypatch.setenv("POISONGUARD_SNAPSHOT_KEY", secret)
    code, text = _verify(wine_csv, m, keys)
    assert code == 0 and secret not in text


def test_inclusion_proof_round_trip(
    tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path]
) -> None:
    m = _snap(wine_csv, keys, tmp_path / "m.pgm")
    proof = tmp_path / "p.json"
    code, text = _verify(wine_csv, m, keys, "--row", "17", "--proof-out", str(proof))
    assert code == 0 and "inclusion proof of row 17 (8 hashes)" in text
    p = json.loads(proof.read_text())
    hashes = read_manifest(m).row_hashes
    assert p["leaf_data"] == hashes[17].tobytes().hex() and len(p["path"]) == 8
    assert _run("verify-proof", proof, "--manifest", m, "--pubkey", keys[1])[0] == 0
    p["leaf_data"] = hashes[18].tobytes().hex()
    proof.write_text(json.dumps(p))
    code, text = _run("verify-proof", proof, "--root", read_manifest(m).root)
    assert code == 1 and "FAIL" in text
    assert _run("verify", wine_csv, "--manifest", m, "--pubkey", keys[1], "--row", "500")[0] == 2


def test_snapshot_records_a_ledger_entry_and_intoto(
    tmp_path: Path, wine_csv: Path, keys: tuple[Path, Path]
) -> None:
    from poisonguard.provenance.intoto import open_envelope
    from poisonguard.provenance.keys import load_public_key

    led_path = tmp_path / "l.sqlite"
    m = _snap(wine_csv, keys, tmp_path / "m.pgm", "--ledger", str(led_path),
              "--intoto", str(tmp_path / "m.dsse.json"))
    (entry,) = Ledger(led_path).entries()
    root = read_manifest(m).root
    assert entry.kind == "snapshot" and entry.inputs[0]["root"] == root
    assert entry.outputs[0]["path"] == str(m.absolute())
    env = json.loads((tmp_path / "m.dsse.json").read_text())
    stmt = open_envelope(env, load_public_key(keys[1]))
    assert stmt["subject"][0]["digest"]["pgmerkle-sha256"] == root
    assert stmt["predicateType"].endswith("/snapshot/v1") and "row_hashes" not in stmt["predicate"]


def test_keys_generate_is_private_and_refuses_overwrite(tmp_path: Path) -> None:
    code, text = _run("keys", "generate", "--out", tmp_path / "k")
    assert code == 0 and "key id" in text
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "poisonguard.key").st_mode) == 0o600
    code, text = _run("keys", "generate", "--out", tmp_path / "k")
    assert code == 2 and "already exists" in text


def _image_folder(root: Path, n: int = 12) -> Path:
    from PIL import Image

    digits = builtin_dataset("digits")
    assert digits.images is not None
    for i in range(n):
        d = root / digits.classes[digits.labels[i]]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i, :, :, 0] * 15).astype(np.uint8)).save(d / f"{i}.png")
    return root


def test_image_folder_names_the_changed_image_and_file(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    from PIL import Image

    folder = _image_folder(tmp_path / "imgs")
    m = _snap(folder, keys, tmp_path / "m.pgm")
    assert read_manifest(m).rows == 12
    assert _verify(folder, m, keys)[0] == 0
    target = sorted(folder.glob("*/*.png"))[4]
    arr = np.asarray(Image.open(target)).copy()
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(target)
    code, text = _verify(folder, m, keys, "--json")
    report = json.loads(text)
    assert code == 1 and report["modified"] == 1
    change = report["changes"][0]
    assert change["columns"] == ["sha256"] and change["id"] == str(target.relative_to(folder))


def test_text_and_id_columns(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    texts = tuple(f"review number {i}" for i in range(30))
    ds = Dataset(labels=np.arange(30) % 2, classes=("neg", "pos"), texts=texts)
    path = tmp_path / "t.jsonl"
    save_dataset(ds, path)
    m = _snap(path, keys, tmp_path / "m.pgm")
    lines = path.read_text().splitlines()
    lines[12] = lines[12].replace("review number 12", "review number 12!")
    path.write_text("\n".join(lines) + "\n")
    code, text = _verify(path, m, keys)
    assert code == 1 and "row 12 modified: columns text" in text

    table = tmp_path / "ids.csv"
    table.write_text("uid,a,b,label\n" + "".join(f"r{i},{i},{i * 2},{i % 3}\n" for i in range(20)))
    m2 = _snap(table, keys, tmp_path / "m2.pgm", "--id-column", "uid")
    rows = table.read_text().splitlines()
    rows[6] = "r5,5,99,2"  # row 5 keeps its id, changes column b
    rows.insert(2, "r100,1,1,1")
    table.write_text("\n".join(rows) + "\n")
    code, text = _verify(table, m2, keys)
    assert code == 1 and "row 6 (was row 5) modified (id r5): columns b" in text
    assert "row 1 added (id r100)" in text
