"""CLI commands: keys, snapshot, verify, verify-proof, ledger, verify-model, sign-model.

Parsing and printing only: the library owns the behaviour (signature policy in
``provenance.trust``, proofs in ``provenance.proofs``). Every value printed for a
human goes through ``printable`` (control characters escaped).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._app import (
    app,
    command,
    err_console,
    out_console,
    progress_bar,
    sub_app,
)
from poisonguard.cli.engine import AddressOpt, EngineName, EngineOpt, engine_for
from poisonguard.cli.options import (
    IdOpt,
    JsonOpt,
    LedgerOpt,
    NoLedgerOpt,
    ProgressMode,
    ProgressOpt,
)
from poisonguard.data import atomic_write_text, ensure_not_same
from poisonguard.provenance.text import printable

keys_app = sub_app("Make signing and encryption keys.")
ledger_app = sub_app("Show, verify, checkpoint and trace the hash-chained ledger.")
app.add_typer(keys_app, name="keys")
app.add_typer(ledger_app, name="ledger")

LabelOpt = Annotated[str, typer.Option("--label", help="Label column (recorded in the schema).")]
PubOpt = Annotated[Path | None, typer.Option("--pubkey", help="The signer's public key (PEM): "
                                             "only this signer is accepted.")]
TrustOpt = Annotated[bool, typer.Option(
    "--trust-embedded-key", help="Accept any signer (the key embedded in the file): proves "
    "integrity, not origin.")]
UnsignedOpt = Annotated[bool, typer.Option("--allow-unsigned", help="Accept unsigned files.")]
EncOpt = Annotated[Path | None, typer.Option(
    "--encryption-key", help="AES-256 key file for stored snapshots "
    "(default: $POISONGUARD_SNAPSHOT_KEY).")]
MaxBytesOpt = Annotated[int | None, typer.Option("--max-bytes", help="Refuse inputs larger "
                                                 "than this many bytes (default 64 GiB).")]
MaxRowsOpt = Annotated[int | None, typer.Option("--max-rows", help="Refuse inputs with more "
                                                "rows (default 100,000,000).")]


def _say(*objects: Any) -> None:
    """Print; strings are escaped line by line (values were escaped when formatted)."""
    safe = ["\n".join(printable(line) for line in o.split("\n")) if isinstance(o, str) else o
            for o in objects]
    out_console.print(*safe, markup=False, soft_wrap=True, highlight=False)


def _print_json(obj: Any) -> None:
    out_console.print_json(json.dumps(obj, default=str))


def _policy(pubkey: Path | None, trust: bool, allow_unsigned: bool = False) -> Any:
    from poisonguard.provenance.trust import SignaturePolicy

    return SignaturePolicy.from_options(pubkey, trust_embedded_key=trust,
                                        allow_unsigned=allow_unsigned)


def _limits(max_bytes: int | None, max_rows: int | None) -> Any:
    from poisonguard.provenance.typed import InputLimits

    base = InputLimits()
    return InputLimits(max_bytes=max_bytes or base.max_bytes, max_rows=max_rows or base.max_rows)


@command("generate", on=keys_app)
def keys_generate(
    out: Annotated[Path, typer.Option("--out", help="Directory for poisonguard.key/.pub.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing pair.")] = False,
) -> None:
    """Make an Ed25519 key pair (the private key file is 0600 from its first byte)."""
    from poisonguard.provenance.keys import generate_keypair, key_id, load_public_key

    priv, pub = generate_keypair(out, force=force)
    _say(f"private key: {priv} (keep it secret)\npublic key:  {pub}\n"
         f"key id:      {key_id(load_public_key(pub))}")


@command("generate-data-key", on=keys_app)
def keys_generate_data_key(
    out: Annotated[Path, typer.Option("--out", help="File for the AES-256 key.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
) -> None:
    """Make a random AES-256 key for encrypting stored snapshots (0600 from the first byte)."""
    from poisonguard.provenance.crypto_at_rest import generate_data_key

    _say(f"encryption key written to {generate_data_key(out, force=force)}")


@command("snapshot")
def snapshot_cmd(
    data: Annotated[Path, typer.Argument(
        help="CSV, Parquet, Parquet folder, NPZ, JSONL or image folder.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the manifest.")],
    source: Annotated[str, typer.Option("--source", help="Where the data came from.")] = "",
    key: Annotated[Path | None, typer.Option("--key", help="Ed25519 private key.")] = None,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    encryption_key: EncOpt = None,
    intoto: Annotated[Path | None, typer.Option(
        "--intoto", help="Also write an in-toto statement in a DSSE envelope.")] = None,
    ledger: LedgerOpt = None,
    no_ledger: NoLedgerOpt = False,
    max_bytes: MaxBytesOpt = None,
    max_rows: MaxRowsOpt = None,
    as_json: JsonOpt = False,
    engine: EngineOpt = EngineName.local,
    address: AddressOpt = None,
    progress_mode: ProgressOpt = ProgressMode.auto,
) -> None:
    """Hash every typed cell of every row into a Merkle tree; write a signed manifest."""
    from poisonguard.provenance.crypto_at_rest import load_data_key
    from poisonguard.provenance.keys import load_private_key
    from poisonguard.provenance.snapshot import snapshot

    ensure_not_same(data, out)
    signer = load_private_key(key) if key is not None else None
    data_key = load_data_key(encryption_key)
    with engine_for(engine, address) as runner, \
            progress_bar(not as_json, progress_mode.value) as progress:
        manifest, entry = snapshot(data, out=out, source=source, key=signer,
                                   data_key=data_key, intoto_out=intoto, ledger=ledger,
                                   record=not no_ledger, label=label, id_column=id_column,
                                   limits=_limits(max_bytes, max_rows), engine=runner,
                                   progress=progress)
    info = {"manifest": str(out), "rows": manifest.rows, "root": manifest.root,
            "signed": manifest.signature is not None, "encrypted": data_key is not None,
            "ledger_entry": entry.seq if entry else None}
    if as_json:
        _print_json(info)
        return
    _say(f"snapshot of {manifest.rows} rows -> {out}\nmerkle root {manifest.root}")
    if signer is None:
        err_console.print("warning: the manifest is not signed (pass --key)")
    if entry is not None:
        _say(f"ledger entry {entry.seq}" + (" (head checkpointed)" if signer else ""))


@command("verify")
def verify_cmd(
    data: Annotated[Path, typer.Argument(help="The data to check.")],
    manifest: Annotated[Path, typer.Option("--manifest", help="Manifest from snapshot.")],
    pubkey: PubOpt = None,
    trust_embedded_key: TrustOpt = False,
    allow_unsigned: UnsignedOpt = False,
    key: Annotated[Path | None, typer.Option("--key", help="The signer's private key: also "
                                             "name the changed columns.")] = None,
    label: LabelOpt = "label",
    id_column: IdOpt = None,
    encryption_key: EncOpt = None,
    row: Annotated[int | None, typer.Option("--row", help="Print the inclusion proof of "
                                            "this row of the manifest.")] = None,
    proof_out: Annotated[Path | None, typer.Option("--proof-out", help="Write it here.")] = None,
    max_show: Annotated[int, typer.Option("--max-show", help="Changes to list.")] = 50,
    max_bytes: MaxBytesOpt = None,
    max_rows: MaxRowsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the hashes; name every added, removed, modified, moved row. Exit 1 if changed."""
    from poisonguard.provenance.crypto_at_rest import load_data_key
    from poisonguard.provenance.keys import load_private_key
    from poisonguard.provenance.manifest import read_manifest
    from poisonguard.provenance.proofs import prove_row
    from poisonguard.provenance.verify import check_manifest, verify_file

    del label, id_column  # recorded at snapshot time; accepted for symmetry
    policy = _policy(pubkey, trust_embedded_key, allow_unsigned)
    m = read_manifest(manifest, data_key=load_data_key(encryption_key))
    status = check_manifest(m, policy)
    proof = prove_row(m, row).to_dict() if row is not None else None
    if proof is not None and proof_out is not None:
        atomic_write_text(proof_out, json.dumps(proof, indent=2) + "\n")
    signer = load_private_key(key) if key is not None else None
    result = verify_file(data, m, policy=policy, key=signer, status=status,
                         limits=_limits(max_bytes, max_rows))
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
    trust_embedded_key: TrustOpt = False,
    allow_unsigned: UnsignedOpt = False,
    encryption_key: EncOpt = None,
) -> None:
    """Check an inclusion proof against a root. Exit 1 if it does not lead there."""
    from poisonguard.provenance.crypto_at_rest import load_data_key
    from poisonguard.provenance.manifest import read_manifest
    from poisonguard.provenance.proofs import check_proof, read_proof

    p = read_proof(proof)
    m = None if manifest is None else read_manifest(manifest,
                                                    data_key=load_data_key(encryption_key))
    policy = _policy(pubkey, trust_embedded_key, allow_unsigned)
    outcome = check_proof(p, root=root, manifest=m, policy=policy)
    if outcome.signature is not None:
        _say(f"signature: {outcome.signature}")
    _say(("OK: " if outcome.ok else "FAIL: ") + outcome.message)
    if not outcome.ok:
        raise typer.Exit(1)


def _open_ledger(ledger: str | None) -> Any:
    from poisonguard.provenance.ledger import Ledger

    return Ledger(ledger, create=False)


@command("show", on=ledger_app)
def ledger_show(ledger: LedgerOpt = None, limit: Annotated[int, typer.Option(
        "--limit", help="Show the last N entries (0: all).")] = 0, as_json: JsonOpt = False,
) -> None:
    """List the ledger's entries."""
    from rich.table import Table

    led = _open_ledger(ledger)
    entries = led.entries()[-limit:] if limit else led.entries()
    led.close()
    if as_json:
        _print_json([e.to_dict() for e in entries])
        return
    table = Table("seq", "time", "actor", "kind", "inputs", "outputs", "hash",
                  title=printable(led.display))

    def names(refs: list[Any]) -> str:
        return ", ".join(printable(Path(str(r.get("path", r.get("source", "?")))).name)
                         for r in refs if isinstance(r, dict))

    for e in entries:
        table.add_row(str(e.seq), printable(e.created_at[:19]), printable(e.actor),
                      printable(e.kind), names(e.inputs), names(e.outputs), e.entry_hash[:12])
    _say(table)


@command("verify", on=ledger_app)
def ledger_verify(
    ledger: LedgerOpt = None,
    head: Annotated[str | None, typer.Option(
        "--head", help="A head hash recorded earlier: fail if it is gone.")] = None,
    pubkey: PubOpt = None,
    trust_embedded_key: TrustOpt = False,
    checkpoint: Annotated[list[Path] | None, typer.Option(
        "--checkpoint", help="A checkpoint file from 'ledger checkpoint --out' "
        "(repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the hash chain and the signed checkpoints; name every broken entry."""
    from poisonguard.provenance.checkpoint import read_checkpoint

    extra = [read_checkpoint(c) for c in checkpoint or []]
    policy = _policy(pubkey, trust_embedded_key)
    led = _open_ledger(ledger)
    entries = led.entries()
    problems = led.verify(expected_head=head, policy=policy, extra=extra)
    checked = led.checked_checkpoints(policy, extra)
    led.close()
    last = entries[-1].entry_hash if entries else None
    if as_json:
        _print_json({"ok": not problems, "entries": len(entries), "head": last,
                     "checkpoints_checked": checked,
                     "problems": [{"seq": p.seq, "message": p.message} for p in problems]})
    elif problems:
        _say(f"BROKEN: {len(problems)} problem(s) in {printable(led.display)}")
        for p in problems:
            _say(f"  {printable(p)}")
    else:
        _say(f"OK: {len(entries)} entries, chain intact, head {last}")
        _say(f"signed checkpoints checked: {checked} ({policy.describe()})")
    if problems:
        raise typer.Exit(1)


@command("checkpoint", on=ledger_app)
def ledger_checkpoint(
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key that signs.")],
    ledger: LedgerOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the checkpoint here "
                                             "(keep it away from the ledger).")] = None,
) -> None:
    """Sign the ledger's head (size and hash) and keep it in the ledger."""
    from poisonguard.provenance.keys import load_private_key

    led = _open_ledger(ledger)
    cp = led.checkpoint(load_private_key(key))
    led.close()
    if out is not None:
        atomic_write_text(out, json.dumps(cp.to_dict(), indent=2) + "\n")
    _say(f"checkpoint: {cp.size} entries, head {cp.head}"
         + (f" -> {out}" if out is not None else ""))


@command("lineage", on=ledger_app)
def ledger_lineage(
    data: Annotated[Path, typer.Argument(help="A data file made by the pipeline.")],
    label: LabelOpt = "label", id_column: IdOpt = None, ledger: LedgerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk back from a file, by the roots of its rows, to its sources."""
    from poisonguard.datasets import open_dataset
    from poisonguard.provenance.lineage import dataset_root, lineage
    from poisonguard.provenance.snapshot import build_manifest

    root = dataset_root(open_dataset(data, label=label, id_column=id_column))
    typed_root = build_manifest(data, label=label).root
    node = lineage(root=root, data_root=typed_root, path=data, ledger=_open_ledger(ledger))
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
    no_ledger: NoLedgerOpt = False,
) -> None:
    """Hash and sign a model file (refuses to sign a file verify-model refuses)."""
    from poisonguard.provenance.keys import load_private_key
    from poisonguard.provenance.ledger import record_event
    from poisonguard.provenance.models import sign_model

    ensure_not_same(model, out)
    m = sign_model(model, load_private_key(key), source=source)
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
    trust_embedded_key: TrustOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Refuse files that can run code when loaded; check safetensors/ONNX/skops; signature.

    Exit 0 safe (and signature good), 1 refused or changed, 2 bad input or signature.
    """
    from poisonguard.provenance.models import read_model_manifest, verify_model_file
    from poisonguard.provenance.modelscan import scan_model

    policy = _policy(pubkey, trust_embedded_key)
    scan = scan_model(model)
    result: dict[str, Any] = scan.to_dict()
    if signature is not None:
        kid, diffs = verify_model_file(model, read_model_manifest(signature), policy=policy)
        result.update(signer=kid, signature=f"good, key {kid}; accepted: {policy.describe()}",
                      changed=diffs)
    ok = scan.safe and not result.get("changed")
    if as_json:
        _print_json({**result, "ok": ok})
    else:
        for line in scan.problems:
            _say(f"  {printable(line)}")
        for line in result.get("changed", []):
            _say(f"  changed since signing: {printable(line)}")
        if "signature" in result:
            _say(f"signature: {result['signature']}")
        _say(f"{'OK' if ok else 'REFUSED'}: {printable(model)} ({scan.format})")
    if not ok:
        raise typer.Exit(1)
