"""CLI commands: keys, snapshot, verify, verify-proof, ledger, verify-model, sign-model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._app import app, command, err_console, out_console
from poisonguard.data import atomic_write_text, ensure_not_same, load_dataset
from poisonguard.errors import UsageError

keys_app = typer.Typer(help="Make signing and encryption keys.", no_args_is_help=True)
ledger_app = typer.Typer(help="Show, verify and trace the hash-chained ledger.",
                         no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(ledger_app, name="ledger")

LedgerOpt = Annotated[str | None, typer.Option(
    "--ledger", help="Ledger file or SQLAlchemy URL (default: $POISONGUARD_LEDGER or "
    ".poisonguard/ledger.sqlite).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LabelOpt = Annotated[str, typer.Option("--label", help="Label column of CSV/Parquet/JSONL.")]
IdOpt = Annotated[str | None, typer.Option("--id-column", help="Column holding row ids.")]
PubOpt = Annotated[Path | None, typer.Option("--pubkey", help="Trusted public key (PEM).")]
EncOpt = Annotated[Path | None, typer.Option(
    "--encryption-key", help="AES-256 key file for stored snapshots "
    "(default: $POISONGUARD_SNAPSHOT_KEY).")]


def _say(*objects: Any) -> None:
    out_console.print(*objects, markup=False, soft_wrap=True, highlight=False)


def _print_json(obj: Any) -> None:
    out_console.print_json(json.dumps(obj, default=str))


@command("generate", on=keys_app)
def keys_generate(
    out: Annotated[Path, typer.Option("--out", help="Directory for poisonguard.key/.pub.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing pair.")] = False,
) -> None:
    """Make an Ed25519 key pair (the private key file gets mode 0600)."""
    from poisonguard.provenance.keys import generate_keypair, key_id, load_public_key

    priv, pub = generate_keypair(out, force=force)
    _say(f"private key: {priv} (keep it secret)\npublic key:  {pub}\n"
                      f"key id:      {key_id(load_public_key(pub))}")


@command("generate-data-key", on=keys_app)
def keys_generate_data_key(
    out: Annotated[Path, typer.Option("--out", help="File for the AES-256 key.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
) -> None:
    """Make a random AES-256 key for encrypting stored snapshots (mode 0600)."""
    from poisonguard.provenance.crypto_at_rest import generate_data_key

    _say(f"encryption key written to {generate_data_key(out, force=force)}")


@command("snapshot")
def snapshot_cmd(
    data: Annotated[Path, typer.Argument(help="CSV, Parquet, NPZ, JSONL or image folder.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the manifest.")],
    source: Annotated[str, typer.Option("--source", help="Where the data came from.")] = "",
    key: Annotated[Path | None, typer.Option("--key", help="Ed25519 private key.")] = None,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    encryption_key: EncOpt = None,
    intoto: Annotated[Path | None, typer.Option(
        "--intoto", help="Also write an in-toto statement in a DSSE envelope.")] = None,
    ledger: LedgerOpt = None,
    no_ledger: Annotated[bool, typer.Option("--no-ledger", help="Do not record.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Hash every row into a Merkle tree and write a signed manifest."""
    from poisonguard.provenance.crypto_at_rest import load_data_key
    from poisonguard.provenance.keys import load_private_key
    from poisonguard.provenance.snapshot import snapshot

    ensure_not_same(data, out)
    signer = load_private_key(key) if key is not None else None
    data_key = load_data_key(encryption_key)
    dataset = load_dataset(data, label=label, id_column=id_column)
    manifest, entry = snapshot(dataset, out=out, path=data, source=source, key=signer,
                               data_key=data_key, intoto_out=intoto, ledger=ledger,
                               record=not no_ledger)
    info = {"manifest": str(out), "rows": manifest["rows"], "root": manifest["merkle"]["root"],
            "signed": "signature" in manifest, "encrypted": data_key is not None,
            "ledger_entry": entry.seq if entry else None}
    if as_json:
        _print_json(info)
        return
    _say(f"snapshot of {manifest['rows']} rows -> {out}\n"
                      f"merkle root {info['root']}")
    if signer is None:
        err_console.print("warning: the manifest is not signed (pass --key)")
    if entry is not None:
        _say(f"ledger entry {entry.seq}")


@command("verify")
def verify_cmd(
    data: Annotated[Path, typer.Argument(help="The data to check.")],
    manifest: Annotated[Path, typer.Option("--manifest", help="Manifest from snapshot.")],
    pubkey: PubOpt = None,
    allow_unsigned: Annotated[bool, typer.Option("--allow-unsigned")] = False,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    encryption_key: EncOpt = None,
    row: Annotated[int | None, typer.Option("--row", help="Print the inclusion proof of "
                                            "this row of the manifest.")] = None,
    proof_out: Annotated[Path | None, typer.Option("--proof-out", help="Write it here.")] = None,
    max_show: Annotated[int, typer.Option("--max-show", help="Changes to list.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the hashes; name every added, removed and modified row. Exit 1 if changed."""
    from poisonguard.provenance.crypto_at_rest import load_data_key
    from poisonguard.provenance.keys import load_public_key
    from poisonguard.provenance.manifest import read_manifest
    from poisonguard.provenance.verify import check_manifest, verify_dataset

    trusted = load_public_key(pubkey) if pubkey is not None else None
    m = read_manifest(manifest, data_key=load_data_key(encryption_key))
    checked = check_manifest(m, trusted=trusted, allow_unsigned=allow_unsigned)
    proof = None
    if row is not None:
        tree = checked[1]
        proof = tree.proof(row, bytes.fromhex(m["row_hashes"][row]) if 0 <= row < tree.size
                           else b"").to_dict()
        if proof_out is not None:
            atomic_write_text(proof_out, json.dumps(proof, indent=2) + "\n")
    dataset = load_dataset(data, label=label, id_column=id_column)
    result = verify_dataset(dataset, m, path=str(data), checked=checked)
    if as_json:
        _print_json({**result.to_dict(), "proof": proof})
    else:
        for line in result.lines(max_show=max_show):
            _say(line)
        if proof is not None:
            _say(f"inclusion proof of row {row} ({len(proof['path'])} hashes):")
            _print_json(proof)
    if not result.identical:
        raise typer.Exit(1)


@command("verify-proof")
def verify_proof_cmd(
    proof: Annotated[Path, typer.Argument(help="Proof JSON from verify --row.")],
    root: Annotated[str | None, typer.Option("--root", help="Expected Merkle root.")] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Take the root from "
                                                  "this (signed) manifest.")] = None,
    pubkey: PubOpt = None,
    allow_unsigned: Annotated[bool, typer.Option("--allow-unsigned")] = False,
    encryption_key: EncOpt = None,
) -> None:
    """Check an inclusion proof against a root. Exit 1 if it does not lead there."""
    from poisonguard.provenance.crypto_at_rest import load_data_key
    from poisonguard.provenance.keys import load_public_key, verify_signature_block
    from poisonguard.provenance.manifest import manifest_body, read_manifest
    from poisonguard.provenance.merkle import InclusionProof, verify_inclusion

    try:
        p = InclusionProof.from_dict(json.loads(proof.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{proof}: cannot read the proof ({exc})") from None
    if manifest is not None:
        m = read_manifest(manifest, data_key=load_data_key(encryption_key))
        trusted = load_public_key(pubkey) if pubkey is not None else None
        if "signature" in m:
            verify_signature_block(m["signature"], manifest_body(m), trusted)
        elif trusted is not None or not allow_unsigned:
            raise UsageError(f"{manifest}: the manifest is not signed (--allow-unsigned)")
        root = m["merkle"]["root"]
    if root is None:
        raise UsageError("give --root or --manifest")
    if not verify_inclusion(p, root):
        _say(f"FAIL: row {p.leaf_index} ({p.leaf_data}) is not in the tree {root}")
        raise typer.Exit(1)
    _say(f"OK: row {p.leaf_index} ({p.leaf_data}) is in the tree {root} "
                      f"of {p.tree_size} rows")


@command("show", on=ledger_app)
def ledger_show(ledger: LedgerOpt = None, limit: Annotated[int, typer.Option(
        "--limit", help="Show the last N entries (0: all).")] = 0, as_json: JsonOpt = False,
) -> None:
    """List the ledger's entries."""
    from rich.table import Table

    from poisonguard.provenance.ledger import Ledger

    led = Ledger(ledger)
    entries = led.entries()[-limit:] if limit else led.entries()
    led.close()
    if as_json:
        _print_json([e.to_dict() for e in entries])
        return
    table = Table("seq", "time", "actor", "kind", "inputs", "outputs", "hash", title=led.display)
    for e in entries:
        def names(refs: list[Any]) -> str:
            return ", ".join(Path(str(r.get("path", r.get("source", "?")))).name
                             for r in refs if isinstance(r, dict))
        table.add_row(str(e.seq), e.created_at[:19], e.actor, e.kind, names(e.inputs),
                      names(e.outputs), e.entry_hash[:12])
    _say(table)


@command("verify", on=ledger_app)
def ledger_verify(ledger: LedgerOpt = None, head: Annotated[str | None, typer.Option(
        "--head", help="A head hash recorded earlier: fail if it is gone.")] = None,
        as_json: JsonOpt = False) -> None:
    """Check the hash chain; name every edited, deleted, inserted or reordered entry."""
    from poisonguard.provenance.ledger import Ledger

    led = Ledger(ledger)
    entries = led.entries()
    problems = led.verify(expected_head=head)
    led.close()
    last = entries[-1].entry_hash if entries else None
    if as_json:
        _print_json({"ok": not problems, "entries": len(entries), "head": last,
                     "problems": [{"seq": p.seq, "message": p.message} for p in problems]})
    elif problems:
        _say(f"BROKEN: {len(problems)} problem(s) in {led.display}")
        for p in problems:
            _say(f"  {p}")
    else:
        _say(f"OK: {len(entries)} entries, chain intact, head {last}")
    if problems:
        raise typer.Exit(1)


@command("lineage", on=ledger_app)
def ledger_lineage(
    data: Annotated[Path, typer.Argument(help="A data file made by the pipeline.")],
    label: LabelOpt = "label", id_column: IdOpt = None, ledger: LedgerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk back from a file, by the Merkle root of its rows, to its sources."""
    from poisonguard.provenance.lineage import dataset_root, lineage

    root = dataset_root(load_dataset(data, label=label, id_column=id_column))
    node = lineage(root=root, path=data, ledger=ledger)
    if as_json:
        _print_json(node.to_dict())
        return

    for line in node.lines():
        _say(line)


@command("sign-model")
def sign_model_cmd(
    model: Annotated[Path, typer.Argument(help="Model file.")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed manifest.")],
    source: Annotated[str, typer.Option("--source")] = "",
    ledger: LedgerOpt = None,
    no_ledger: Annotated[bool, typer.Option("--no-ledger")] = False,
) -> None:
    """Hash and sign a model file (refuses to sign a pickle that can run code)."""
    from poisonguard.provenance.keys import load_private_key
    from poisonguard.provenance.ledger import record_event
    from poisonguard.provenance.models import sign_model

    ensure_not_same(model, out)
    m = sign_model(model, load_private_key(key), source=source)
    if not m["scan"]["safe"]:
        raise UsageError(f"{model}: refusing to sign an unsafe model (run verify-model)")
    atomic_write_text(out, json.dumps(m, indent=2) + "\n")
    if not no_ledger:
        record_event("sign-model", inputs=[{"path": str(model.absolute()), "sha256": m["sha256"]}],
                     outputs=[{"path": str(out.absolute()), "kind": "model-manifest"}],
                     details={"key_id": m["signature"]["key_id"], "root": m["merkle"]["root"]},
                     ledger=ledger)
    _say(f"signed {model} (sha256 {m['sha256']}) -> {out}")


@command("verify-model")
def verify_model_cmd(
    model: Annotated[Path, typer.Argument(help="Model file.")],
    signature: Annotated[Path | None, typer.Option("--signature", help="Manifest from "
                                                   "sign-model.")] = None,
    pubkey: PubOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Refuse pickles that can run code; check safetensors/ONNX; check a signature.

    Exit 0 safe (and signature good), 1 refused or changed, 2 bad input or signature.
    """
    from poisonguard.provenance.keys import load_public_key
    from poisonguard.provenance.models import read_model_manifest, verify_model_file
    from poisonguard.provenance.modelscan import scan_model

    scan = scan_model(model)
    result: dict[str, Any] = scan.to_dict()
    if signature is not None:
        trusted = load_public_key(pubkey) if pubkey is not None else None
        kid, diffs = verify_model_file(model, read_model_manifest(signature), trusted)
        result.update(signer=kid, changed=diffs)
    ok = scan.safe and not result.get("changed")
    if as_json:
        _print_json({**result, "ok": ok})
    else:
        for line in scan.problems:
            _say(f"  {line}")
        for line in result.get("changed", []):
            _say(f"  changed since signing: {line}")
        verdict = "OK" if ok else "REFUSED"
        _say(f"{verdict}: {model} ({scan.format})"
                          + (f", signed by key {result['signer']}" if "signer" in result else ""))
    if not ok:
        raise typer.Exit(1)
