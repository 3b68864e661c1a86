"""CLI: ``poisonguard monitor train|register|golden|promote|rollback|history|canary|
scan-model|screen|alerts`` (thin wrappers over :mod:`poisonguard.monitor`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._app import app, command, out_console, sub_app
from poisonguard.cli.options import JsonOpt, LabelOpt, LedgerOpt

monitor_app = sub_app("After training: registry, gate, canaries, model scan, screening, "
                      "alerts, rollback.")
app.add_typer(monitor_app, name="monitor")

NameOpt = Annotated[str, typer.Option("--name", help="Registered model name.")]
VersionOpt = Annotated[int | None, typer.Option("--version", help="Model version "
                                                "(default: the --alias).")]
AliasOpt = Annotated[str, typer.Option("--alias", help="Alias to use when no --version.")]
GoldenOpt = Annotated[str, typer.Option("--golden", help="Registered golden set name.")]
GoldenVersionOpt = Annotated[int | None, typer.Option("--golden-version",
                                                      help="Golden set version (default: "
                                                      "latest).")]
WebhookOpt = Annotated[str | None, typer.Option(
    "--webhook", help="URL that receives each new alert as a JSON POST (default: "
    "$POISONGUARD_WEBHOOK).")]


def _say(text: str) -> None:
    out_console.print(text, markup=False, soft_wrap=True, highlight=False)


def _json(obj: Any) -> None:
    print(json.dumps(obj, default=str))


def _show(as_json: bool, obj: Any, line: str) -> None:
    """One result: ``obj`` as JSON with --json, else the line for a person."""
    if as_json:
        _json(obj)
    else:
        _say(line)


def _alerts(report: Any) -> None:
    for a in report.alerts:
        status = "new" if a.new else f"seen {a.count}x"
        hook = "; webhook: posted" if a.posted else (f"; webhook: {a.webhook_error}"
                                                     if a.webhook_error else "")
        _say(f"ALERT ({status}{hook}): {a.message}")


@command("train", on=monitor_app)
def train_cmd(
    data: Annotated[str, typer.Argument(help="Images: NPZ, image folder or builtin:digits.")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.safetensors).")],
    label: LabelOpt = "label",
    arch: Annotated[str, typer.Option("--arch", help="mlp or cnn.")] = "cnn",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed (also of the held-out rows).")] = 0,
    holdout: Annotated[float, typer.Option(help="Share of rows left out of training.")] = 0.0,
    holdout_out: Annotated[Path | None, typer.Option(
        "--holdout-out", help="Write the held-out rows here (a golden set).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a small reference image classifier and save it as safetensors."""
    from poisonguard.data import ensure_not_same
    from poisonguard.monitor.model import train_on_file

    ensure_not_same(data, out)
    model, trained, held = train_on_file(data, out, label=label, arch=arch, epochs=epochs,
                                         seed=seed, holdout=holdout, holdout_out=holdout_out)
    info = {"model": str(out), "arch": arch, "trained_rows": trained, "held_out_rows": held,
            "holdout_out": None if holdout_out is None else str(holdout_out),
            "classes": list(model.classes)}
    _show(as_json, info, f"trained a {arch} on {trained} rows -> {out}"
          + (f"; {held} held-out rows -> {holdout_out}" if holdout_out else ""))


@command("register", on=monitor_app)
def register_cmd(
    model: Annotated[Path, typer.Argument(help="Model file (safetensors, ONNX, skops, or a "
                                          "signed file).")],
    name: NameOpt,
    alias: Annotated[str | None, typer.Option("--alias", help="Point this alias at the new "
                                              "version (e.g. candidate).")] = None,
    signature: Annotated[Path | None, typer.Option("--signature", help="sign-model manifest "
                                                   "of the file.")] = None,
    pubkey: Annotated[Path | None, typer.Option("--pubkey", help="Pinned public key the "
                                                "signature must verify against.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """Register a model version from a safe format (never unpickles)."""
    from poisonguard.monitor import register_model

    v = register_model(model, name=name, alias=alias, signature=signature, pubkey=pubkey,
                       reason=reason, ledger=ledger)
    _show(as_json, {**v.to_dict(), "alias": alias},
          f"registered {v.name} v{v.version} ({v.format}, sha256 {v.sha256[:16]}...)"
          + (f" as {alias}" if alias else ""))


@command("golden", on=monitor_app)
def golden_cmd(
    data: Annotated[Path, typer.Argument(help="Clean labelled test set (NPZ, image folder, "
                                         "CSV/Parquet).")],
    name: Annotated[str, typer.Option("--name", help="Golden set name.")],
    label: LabelOpt = "label",
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Also write its "
                                                  "provenance manifest here.")] = None,
    ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """Freeze a golden set: hash it and record the next version in the ledger."""
    from poisonguard.monitor import register_golden

    g = register_golden(data, name=name, label=label, manifest_out=manifest, ledger=ledger)
    _show(as_json, g.to_dict(),
          f"golden set {g.name} v{g.version}: {g.rows} rows, root {g.root[:16]}...")


@command("promote", on=monitor_app)
def promote_cmd(
    name: NameOpt, golden: GoldenOpt, version: VersionOpt = None,
    alias: Annotated[str, typer.Option("--alias", help="Promote this alias's version when no "
                                       "--version.")] = "candidate",
    golden_version: GoldenVersionOpt = None,
    min_accuracy: Annotated[float, typer.Option(help="Absolute accuracy floor.")] = 0.9,
    min_class_accuracy: Annotated[float, typer.Option(help="Per-class floor.")] = 0.8,
    max_ece: Annotated[float, typer.Option(help="Calibration error ceiling.")] = 0.1,
    tolerance: Annotated[float, typer.Option(help="Allowed accuracy drop vs champion.")] = 0.01,
    class_tolerance: Annotated[float, typer.Option(help="Allowed per-class drop.")] = 0.05,
    reason: Annotated[str, typer.Option("--reason")] = "",
    ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """Run the gate on a candidate; make it champion if it passes. Exit 1 when refused."""
    from poisonguard.monitor import GateConfig, promote

    cfg = GateConfig(min_accuracy=min_accuracy, min_class_accuracy=min_class_accuracy,
                     max_ece=max_ece, tolerance=tolerance, class_tolerance=class_tolerance)
    verdict, move, cand = promote(name, golden=golden, version=version,
                                  alias=None if version is not None else alias,
                                  golden_version=golden_version, config=cfg, reason=reason,
                                  ledger=ledger)
    if as_json:
        _json({"model": name, "version": cand.version, **verdict.to_dict(),
               "move": None if move is None else move.to_dict()})
    else:
        c = verdict.candidate
        _say(f"{name} v{cand.version}: accuracy {c.accuracy:.3f}, ECE {c.ece:.3f}"
             + ("" if verdict.champion is None else
                f" (champion: {verdict.champion.accuracy:.3f}, ECE {verdict.champion.ece:.3f})"))
        for r in verdict.reasons:
            _say(f"  {r}")
        if move is not None:
            was = "none" if move.from_version is None else f"v{move.from_version}"
            _say(f"PROMOTED: {name} champion {was} -> v{move.to_version}")
        else:
            _say(f"REFUSED: {name} v{cand.version} stays out ({len(verdict.reasons)} reason(s))")
    if move is None:
        raise typer.Exit(1)


@command("rollback", on=monitor_app)
def rollback_cmd(
    name: NameOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    alias: AliasOpt = "champion", ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """Restore the alias's previous version (no gate: an emergency brake)."""
    from poisonguard.monitor import rollback

    move = rollback(name, reason=reason, alias=alias, ledger=ledger)
    _show(as_json, move.to_dict(),
          f"ROLLED BACK: {name} {alias} v{move.from_version} -> v{move.to_version}")


@command("history", on=monitor_app)
def history_cmd(name: NameOpt, ledger: LedgerOpt = None, as_json: JsonOpt = False) -> None:
    """Versions, where each alias points, and every alias move (who, when, why)."""
    from poisonguard.monitor import alias_history, aliases, list_versions
    from poisonguard.monitor.store import using_ledger

    with using_ledger(ledger) as led:
        versions = list_versions(name, ledger=led)
        moves = alias_history(name, ledger=led)
        now = aliases(name, ledger=led)
    if as_json:
        _json({"model": name, "versions": [v.to_dict() for v in versions], "aliases": now,
               "moves": [m.to_dict() for m in moves]})
        return
    for v in versions:
        tags = [a for a, n in sorted(now.items()) if n == v.version]
        _say(f"v{v.version}  {v.registered_at[:19]}  {v.actor}  {v.format}  "
             f"{v.sha256[:12]}  {Path(v.path).name}" + (f"  [{', '.join(tags)}]" if tags else ""))
    for m in moves:
        _say(f"{m.at[:19]}  {m.actor}  {m.action:<8} {m.alias}: "
             f"{'-' if m.from_version is None else f'v{m.from_version}'} -> v{m.to_version}"
             f"  ({m.reason})")


@command("canary", on=monitor_app)
def canary_cmd(
    name: NameOpt, golden: GoldenOpt, version: VersionOpt = None, alias: AliasOpt = "champion",
    golden_version: GoldenVersionOpt = None,
    findings: Annotated[list[Path] | None, typer.Option(
        "--findings", help="Scan findings whose suspected triggers to test (repeatable).")] = None,
    truth: Annotated[list[Path] | None, typer.Option(
        "--truth", help="Attack truth files whose triggers to test (repeatable).")] = None,
    no_library: Annotated[bool, typer.Option("--no-library", help="Skip the attack library's "
                                             "triggers.")] = False,
    threshold: Annotated[float, typer.Option(help="Attack success rate that fires a "
                                             "canary.")] = 0.5,
    webhook: WebhookOpt = None, ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """Stamp triggers on golden inputs; alert when predictions collapse. Exit 1 on alarm."""
    from poisonguard.monitor import canary_check

    report = canary_check(name, golden=golden, version=version, alias=alias,
                          golden_version=golden_version, findings=findings or (),
                          truths=truth or (), library=not no_library, threshold=threshold,
                          webhook=webhook, ledger=ledger)
    if as_json:
        _json(report.to_dict())
    else:
        for r in sorted(report.result, key=lambda r: -r.asr)[:5]:
            _say(f"{'FIRED' if r.fired else 'quiet'}  {r.trigger:<28} -> class {r.target}: "
                 f"{r.asr:.1%} of {r.n}")
        _alerts(report)
        fired = sum(r.fired for r in report.result)
        _say(f"{name} v{report.model.version}: {fired} of {len(report.result)} canaries fired"
             if fired else f"{name} v{report.model.version}: no canary fired "
             f"({len(report.result)} triggers)")
    if report.alarm:
        raise typer.Exit(1)


@command("scan-model", on=monitor_app)
def scan_model_cmd(
    name: NameOpt, golden: GoldenOpt, version: VersionOpt = None, alias: AliasOpt = "champion",
    golden_version: GoldenVersionOpt = None,
    steps: Annotated[int, typer.Option(help="Optimisation steps (all classes at once).")] = 300,
    threshold: Annotated[float, typer.Option(help="Anomaly index that flags a class.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when "
                                               "present).")] = None,
    webhook: WebhookOpt = None, ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """Neural-Cleanse-style backdoor scan of a model. Exit 1 when a class is flagged."""
    from poisonguard.monitor import scan_model_check

    report = scan_model_check(name, golden=golden, version=version, alias=alias,
                              golden_version=golden_version, steps=steps, threshold=threshold,
                              seed=seed, device=device, webhook=webhook, ledger=ledger)
    res = report.result
    if as_json:
        _json(report.to_dict())
    else:
        for c in sorted(res.classes, key=lambda c: -c.anomaly):
            _say(f"class {c.name}: mask L1 {c.l1:6.2f}  anomaly index {c.anomaly:5.2f}"
                 + ("" if c.reached else "  (never reached the target rate)"))
        _alerts(report)
        names = ", ".join(res.classes[i].name for i in res.flagged)
        _say(f"BACKDOOR suspected in {name} v{report.model.version}: class {names}"
             if res.flagged else f"{name} v{report.model.version}: no class stands out "
             f"(threshold {res.threshold:g}; {res.seconds:.1f} s)")
    if report.alarm:
        raise typer.Exit(1)


@command("screen", on=monitor_app)
def screen_cmd(
    data: Annotated[Path, typer.Argument(help="Batch of inputs (NPZ with X and y, image "
                                         "folder).")],
    name: NameOpt, golden: GoldenOpt, version: VersionOpt = None, alias: AliasOpt = "champion",
    golden_version: GoldenVersionOpt = None,
    label: LabelOpt = "label",
    target_frr: Annotated[float, typer.Option(help="Clean inputs STRIP may reject.")] = 0.05,
    alpha: Annotated[float, typer.Option(help="Level of the rejection and drift "
                                         "alarms.")] = 0.001,
    webhook: WebhookOpt = None, ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """STRIP-screen a batch, test prediction drift vs the golden set. Exit 1 on alarm."""
    from poisonguard.monitor import screen_check

    report = screen_check(name, data, golden=golden, label=label, version=version, alias=alias,
                          golden_version=golden_version, target_frr=target_frr, alpha=alpha,
                          webhook=webhook, ledger=ledger)
    out = report.result
    if as_json:
        _json(report.to_dict())
    else:
        k, n = int(out.strip.rejected.sum()), len(out.strip.rejected)
        rows = ", ".join(str(i) for i in list(map(int, out.strip.rejected.nonzero()[0]))[:20])
        _say(f"STRIP rejected {k} of {n} inputs ({k / n:.1%}; clean target {target_frr:.0%})"
             + (f": rows {rows}{' ...' if k > 20 else ''}" if k else ""))
        _say(f"prediction drift: {'DRIFT' if out.drift.drifted else 'none'} (classes p="
             f"{out.drift.class_p:.2g}, confidence p={out.drift.confidence_p:.2g})")
        _alerts(report)
    if report.alarm:
        raise typer.Exit(1)


@command("alerts", on=monitor_app)
def alerts_cmd(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    ledger: LedgerOpt = None, as_json: JsonOpt = False,
) -> None:
    """List stored alerts, most recent first."""
    from poisonguard.monitor import list_alerts

    found = list_alerts(kind=kind, ledger=ledger)
    if as_json:
        _json([a.to_dict() for a in found])
        return
    for a in found:
        _say(f"{a.last_seen[:19]}  {a.severity:<8} {a.kind:<13} x{a.count}  {a.message}")
    if not found:
        _say("no alerts")
