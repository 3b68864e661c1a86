"""Model registry: versions from safe files only, aliases, and every alias move.

A file is registered when :func:`~poisonguard.provenance.modelscan.scan_model`
finds it safe and its format is safetensors or ONNX (read without running code),
or when it carries a ``sign-model`` manifest that verifies against a pinned public
key and still matches the file. Nothing is ever unpickled: a pickle that is not
signed by the pinned key is refused, whatever it holds.

Aliases (``champion``, ``candidate``, ...) point at versions. Every move is a
``monitor-alias`` ledger entry with the actor, time, reason and action (``set``,
``promote``, ``rollback``); :func:`alias_history` replays them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poisonguard.errors import IntegrityError, UsageError
from poisonguard.monitor.model import ImageClassifier, load_model
from poisonguard.monitor.store import LedgerLike, check_name, monitor_entries, using_ledger
from poisonguard.provenance.ledger import LedgerEntry

__all__ = [
    "CHAMPION",
    "SAFE_FORMATS",
    "AliasMove",
    "ModelVersion",
    "alias_history",
    "aliases",
    "get_version",
    "list_versions",
    "load_version",
    "move_alias",
    "register_model",
    "rollback",
]

CHAMPION = "champion"
SAFE_FORMATS = frozenset({"safetensors", "onnx", "skops"})
_ACTIONS = ("set", "promote", "rollback")


@dataclass(frozen=True)
class ModelVersion:
    """One registered model file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> weights = save_weights({"w": np.zeros(3, np.float32)}, folder / "m.safetensors")
    >>> v = register_model(weights, name="demo", ledger=folder / "ledger.sqlite")
    >>> v.name, v.version, v.format, v.size
    ('demo', 1, 'safetensors', 76)
    """

    name: str
    version: int
    path: str
    sha256: str
    size: int
    format: str
    signer: str | None
    actor: str
    registered_at: str
    seq: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: who, when, why, from which version to which.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> ledger = folder / "ledger.sqlite"
    >>> path = save_weights({"bias": np.ones(2, np.float32)}, folder / "b.safetensors")
    >>> _ = register_model(path, name="demo", alias="candidate", ledger=ledger)
    >>> move = move_alias("demo", "champion", 1, reason="passed the gate", ledger=ledger)
    >>> move.alias, move.from_version, move.to_version, move.reason
    ('champion', None, 1, 'passed the gate')
    """

    name: str
    alias: str
    from_version: int | None
    to_version: int
    action: str
    reason: str
    actor: str
    at: str
    seq: int
    gate_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _accept(path: Path, signature: str | Path | None,
            pubkey: str | Path | None) -> tuple[str, str | None]:
    """(format, signer key id) when the file may be registered; else an error."""
    from poisonguard.provenance.modelscan import scan_model

    scan = scan_model(path)
    if not scan.safe:
        raise IntegrityError(f"{path}: refused, not safe to load: " + "; ".join(scan.problems))
    if signature is None:
        if scan.format not in SAFE_FORMATS:
            raise IntegrityError(
                f"{path}: refused, a {scan.format} file is registered only with a sign-model "
                "manifest (--signature) that verifies against a pinned key (--pubkey)")
        return scan.format, None
    if pubkey is None:
        raise UsageError("a signature is checked only against a pinned public key (--pubkey)")
    from poisonguard.provenance.keys import load_public_key
    from poisonguard.provenance.models import read_model_manifest, verify_model_file

    kid, diffs = verify_model_file(path, read_model_manifest(signature), load_public_key(pubkey))
    if diffs:
        raise IntegrityError(f"{path}: refused, changed since it was signed: " + "; ".join(diffs))
    return scan.format, kid


def register_model(path: str | Path, *, name: str, signature: str | Path | None = None,
                   pubkey: str | Path | None = None, alias: str | None = None,
                   reason: str = "", ledger: LedgerLike = None,
                   actor: str | None = None) -> ModelVersion:
    """Register ``path`` as the next version of model ``name`` (and point ``alias`` at it).

    Examples
    --------
    >>> import pickle, tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ledger = tmp / "ledger.sqlite"
    >>> weights = save_weights({"w": np.zeros(3, np.float32)}, tmp / "m.safetensors")
    >>> v = register_model(weights, name="digits", alias="candidate", ledger=ledger)
    >>> v.version, v.format, aliases("digits", ledger=ledger)
    (1, 'safetensors', {'candidate': 1})
    >>> _ = (tmp / "m.pkl").write_bytes(pickle.dumps({"w": [0.0]}))  # never unpickled
    >>> register_model(tmp / "m.pkl", name="digits", ledger=ledger)
    Traceback (most recent call last):
    ...
    poisonguard.errors.IntegrityError: .../m.pkl: refused, a pickle file is registered only with a
    sign-model manifest (--signature) that verifies against a pinned key (--pubkey)
    """
    from poisonguard.provenance.models import model_digest

    check_name(name, "model")
    if alias is not None:
        check_name(alias, "alias")
    p = Path(path).absolute()
    fmt, signer = _accept(p, signature, pubkey)
    digest = model_digest(p)
    with using_ledger(ledger) as led:
        entry = led.append("monitor-register", actor=actor,
                           inputs=[{"path": str(p), "sha256": digest["sha256"]}],
                           outputs=[{"model": name}],
                           details={"model": name, "format": fmt, "size": digest["size"],
                                    "signer": signer, "merkle_root": digest["merkle"]["root"],
                                    "note": reason})
        version = next(v for v in list_versions(name, ledger=led) if v.seq == entry.seq)
        if alias is not None:
            move_alias(name, alias, version.version, reason=reason or "registered",
                       ledger=led, actor=actor)
    return version


def _version_of(entry: LedgerEntry, number: int) -> ModelVersion:
    d, ref = entry.details, (entry.inputs or [{}])[0]
    return ModelVersion(name=str(d["model"]), version=number, path=str(ref.get("path", "")),
                        sha256=str(ref.get("sha256", "")), size=int(d.get("size", 0)),
                        format=str(d.get("format", "")), signer=d.get("signer"),
                        actor=entry.actor, registered_at=entry.created_at, seq=entry.seq,
                        note=str(d.get("note", "")))


def list_versions(name: str | None = None, *, ledger: LedgerLike = None) -> list[ModelVersion]:
    """Every registered version (of ``name``, or of every model), oldest first.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a", "b", "a"):
    ...     _ = register_model(save_weights({"w": np.zeros(1, np.float32)}, tmp / "w.safetensors"),
    ...                        name=name, ledger=tmp / "ledger.sqlite")
    >>> [(v.name, v.version) for v in list_versions(ledger=tmp / "ledger.sqlite")]
    [('a', 1), ('b', 1), ('a', 2)]
    """
    counts: dict[str, int] = {}
    out = []
    for e in monitor_entries(ledger, "monitor-register"):
        model = str(e.details.get("model"))
        counts[model] = counts.get(model, 0) + 1
        if name is None or model == name:
            out.append(_version_of(e, counts[model]))
    return out


def alias_history(name: str | None = None, alias: str | None = None, *,
                  ledger: LedgerLike = None) -> list[AliasMove]:
    """Every alias move (of ``name`` / ``alias`` when given), oldest first.

    ``from_version`` is the alias's value just before the move, from the replay.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> led = tmp / "ledger.sqlite"
    >>> file = save_weights({"k": np.zeros(4, np.float32)}, tmp / "k.safetensors")
    >>> for _ in range(2):
    ...     _ = register_model(file, name="net", alias="champion", ledger=led)
    >>> [(m.from_version, m.to_version) for m in alias_history("net", "champion", ledger=led)]
    [(None, 1), (1, 2)]
    """
    current: dict[tuple[str, str], int] = {}
    out = []
    for e in monitor_entries(ledger, "monitor-alias"):
        d = e.details
        key = (str(d.get("model")), str(d.get("alias")))
        move = AliasMove(name=key[0], alias=key[1], from_version=current.get(key),
                         to_version=int(d["to"]), action=str(d.get("action", "set")),
                         reason=str(d.get("reason", "")), actor=e.actor, at=e.created_at,
                         seq=e.seq, gate_seq=d.get("gate_seq"))
        current[key] = move.to_version
        if (name is None or key[0] == name) and (alias is None or key[1] == alias):
            out.append(move)
    return out


def aliases(name: str, *, ledger: LedgerLike = None) -> dict[str, int]:
    """Where each alias of model ``name`` points now.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> weights = save_weights({"x": np.zeros(2, np.float32)}, tmp / "x.safetensors")
    >>> _ = register_model(weights, name="net", alias="candidate", ledger=tmp / "l.sqlite")
    >>> aliases("net", ledger=tmp / "l.sqlite")
    {'candidate': 1}
    """
    return {m.alias: m.to_version for m in alias_history(name, ledger=ledger)}


def get_version(name: str, *, version: int | None = None, alias: str | None = None,
                ledger: LedgerLike = None) -> ModelVersion:
    """A version by number, by alias, or (neither given) the latest one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> store = tmp / "ledger.sqlite"
    >>> one = save_weights({"v": np.zeros(2, np.float32)}, tmp / "v.safetensors")
    >>> first = register_model(one, name="net", alias="champion", ledger=store)
    >>> second = register_model(one, name="net", ledger=store)
    >>> get_version("net", ledger=store).version, get_version("net", alias="champion",
    ...                                                       ledger=store).version
    (2, 1)
    """
    with using_ledger(ledger) as led:
        versions = list_versions(name, ledger=led)
        if not versions:
            raise UsageError(f"no model named {name!r} is registered")
        if alias is not None:
            now = aliases(name, ledger=led)
            if alias not in now:
                raise UsageError(f"model {name!r} has no alias {alias!r} "
                                 f"(has: {', '.join(sorted(now)) or 'none'})")
            version = now[alias]
        if version is None:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
    raise UsageError(f"model {name!r} has no version {version} (1..{len(versions)})")


def load_version(v: ModelVersion) -> ImageClassifier:
    """Load a registered version after checking the file is still the one registered.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.monitor import save_model, train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> saved = save_model(model, tmp / "digits.safetensors")
    >>> version = register_model(saved, name="digits", ledger=tmp / "ledger.sqlite")
    >>> load_version(version).config.classes == digits.classes  # checked, then loaded
    True
    """
    from poisonguard.provenance.models import model_digest

    now = model_digest(v.path)["sha256"]
    if now != v.sha256:
        raise IntegrityError(f"{v.path}: changed since {v.name} v{v.version} was registered "
                             f"(sha256 {v.sha256[:16]}... -> {now[:16]}...)")
    return load_model(v.path)


def move_alias(name: str, alias: str, version: int, *, reason: str, action: str = "set",
               gate_seq: int | None = None, ledger: LedgerLike = None,
               actor: str | None = None) -> AliasMove:
    """Point ``alias`` of ``name`` at ``version`` (an appended ledger entry).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> db = tmp / "ledger.sqlite"
    >>> _ = register_model(save_weights({"u": np.zeros(1, np.float32)}, tmp / "u.safetensors"),
    ...                    name="net", ledger=db)
    >>> move_alias("net", "champion", 1, reason="manual promotion", ledger=db).to_version
    1
    >>> aliases("net", ledger=db)
    {'champion': 1}
    """
    check_name(alias, "alias")
    if action not in _ACTIONS:
        raise UsageError(f"unknown alias action {action!r}")
    if not reason.strip():
        raise UsageError("an alias move needs a reason")
    with using_ledger(ledger) as led:
        v = get_version(name, version=version, ledger=led)
        entry = led.append("monitor-alias", actor=actor,
                           inputs=[{"model": name, "version": v.version, "sha256": v.sha256}],
                           details={"model": name, "alias": alias, "to": v.version,
                                    "action": action, "reason": reason, "gate_seq": gate_seq})
        return next(m for m in alias_history(name, alias, ledger=led) if m.seq == entry.seq)


def _previous(moves: list[AliasMove]) -> int | None:
    """The value a rollback restores: replay promotions as pushes, rollbacks as pops."""
    stack: list[int] = []
    for m in moves:
        if m.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != m.to_version:
                stack.append(m.to_version)
        else:
            stack.append(m.to_version)
    return stack[-2] if len(stack) >= 2 else None


def rollback(name: str, *, reason: str, alias: str = CHAMPION, ledger: LedgerLike = None,
             actor: str | None = None) -> AliasMove:
    """Restore the alias's previous value (the one before the last promotion still standing).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from poisonguard.provenance import save_model as save_weights
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ledger = tmp / "ledger.sqlite"
    >>> for version in (1, 2, 3):
    ...     weights = {"w": np.full(3, version, np.float32)}
    ...     path = save_weights(weights, tmp / f"v{version}.safetensors")
    ...     _ = register_model(path, name="digits", ledger=ledger)
    ...     _ = move_alias("digits", "champion", version, action="promote", reason="gate passed",
    ...                    ledger=ledger)
    >>> move = rollback("digits", reason="canary alert on v3", ledger=ledger)
    >>> move.action, move.from_version, move.to_version
    ('rollback', 3, 2)
    >>> rollback("digits", reason="v2 alerts too", ledger=ledger).to_version
    1
    """
    with using_ledger(ledger) as led:
        previous = _previous(alias_history(name, alias, ledger=led))
        if previous is None:
            raise UsageError(f"model {name!r}: alias {alias!r} has no previous value to restore")
        return move_alias(name, alias, previous, reason=reason, action="rollback", ledger=led,
                          actor=actor)
