"""Golden sets: frozen, hashed, versioned clean test sets, and evaluation on them.

Registering a golden set records in the ledger (``monitor-golden``) the file's
SHA-256 and the Merkle root of its rows (the provenance manifest's root; the full
manifest is written too when asked). Loading it again recomputes both and refuses
a set that changed. :func:`evaluate` gives accuracy, per-class accuracy and the
expected calibration error (ECE, equal-width confidence bins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import Dataset
from poisonguard.datasets import open_dataset
from poisonguard.errors import IntegrityError, UsageError
from poisonguard.monitor.model import ImageClassifier
from poisonguard.monitor.store import LedgerLike, check_name, monitor_entries, using_ledger

__all__ = ["Evaluation", "GoldenSet", "evaluate", "expected_calibration_error", "get_golden",
           "list_golden", "load_golden", "register_golden"]


@dataclass(frozen=True)
class GoldenSet:
    """One registered version of a golden set.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> save_dataset(builtin_dataset("digits").subset(range(100)), tmp / "golden.npz")
    >>> golden = register_golden(tmp / "golden.npz", name="digits-golden",
    ...                          ledger=tmp / "ledger.sqlite")
    >>> golden.name, golden.version, golden.rows, len(golden.classes)
    ('digits-golden', 1, 100, 10)
    """

    name: str
    version: int
    path: str
    label: str
    sha256: str
    root: str
    rows: int
    classes: tuple[str, ...]
    actor: str
    registered_at: str
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "classes": list(self.classes)}


@dataclass(frozen=True)
class Evaluation:
    """A model's numbers on a golden set.

    Examples
    --------
    >>> from poisonguard.monitor import evaluate, train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> ev = evaluate(model, digits.subset(range(200, 300)))
    >>> ev.n, sorted(ev.per_class) == list(digits.classes), bool(0 <= ev.ece <= 1)
    (100, True, True)
    """

    n: int
    accuracy: float
    ece: float
    per_class: dict[str, float]
    class_counts: dict[str, int]
    predicted_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def register_golden(path: str | Path, *, name: str, label: str = "label",
                    manifest_out: str | Path | None = None, ledger: LedgerLike = None,
                    actor: str | None = None) -> GoldenSet:
    """Hash ``path`` and record it as the next version of golden set ``name``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.provenance import read_manifest
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ledger = tmp / "ledger.sqlite"
    >>> save_dataset(builtin_dataset("digits").subset(range(100)), tmp / "golden.npz")
    >>> g = register_golden(tmp / "golden.npz", name="digits-golden",
    ...                     manifest_out=tmp / "golden.manifest", ledger=ledger)
    >>> g.version, g.rows, len(g.sha256), g.root == read_manifest(tmp / "golden.manifest").root
    (1, 100, 64, True)
    >>> register_golden(tmp / "golden.npz", name="digits-golden", ledger=ledger).version
    2
    """
    from poisonguard.provenance import build_manifest, write_manifest
    from poisonguard.provenance.canonical import file_sha256

    check_name(name, "golden set")
    p = Path(path).absolute()
    ds = open_dataset(p, label=label)
    manifest = build_manifest(p, source=f"golden:{name}", actor=actor, label=label)
    if manifest_out is not None:
        write_manifest(manifest, manifest_out)
    root = manifest.root
    with using_ledger(ledger) as led:
        entry = led.append("monitor-golden", actor=actor,
                           inputs=[{"path": str(p), "root": root, "sha256": file_sha256(p)}],
                           outputs=[{"golden": name}],
                           details={"golden": name, "label": label, "rows": len(ds),
                                    "classes": list(ds.classes),
                                    "manifest": None if manifest_out is None
                                    else str(Path(manifest_out).absolute())})
        return next(g for g in list_golden(name, ledger=led) if g.seq == entry.seq)


def list_golden(name: str | None = None, *, ledger: LedgerLike = None) -> list[GoldenSet]:
    """Every registered golden-set version (of ``name``), oldest first.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> save_dataset(builtin_dataset("digits").subset(range(100)), tmp / "golden.npz")
    >>> for _ in range(2):
    ...     _ = register_golden(tmp / "golden.npz", name="g", ledger=tmp / "ledger.sqlite")
    >>> [(g.name, g.version) for g in list_golden(ledger=tmp / "ledger.sqlite")]
    [('g', 1), ('g', 2)]
    """
    counts: dict[str, int] = {}
    out = []
    for e in monitor_entries(ledger, "monitor-golden"):
        d, ref = e.details, (e.inputs or [{}])[0]
        gname = str(d.get("golden"))
        counts[gname] = counts.get(gname, 0) + 1
        if name is None or gname == name:
            out.append(GoldenSet(name=gname, version=counts[gname], path=str(ref.get("path")),
                                 label=str(d.get("label", "label")),
                                 sha256=str(ref.get("sha256")), root=str(ref.get("root")),
                                 rows=int(d.get("rows", 0)),
                                 classes=tuple(str(c) for c in d.get("classes", [])),
                                 actor=e.actor, registered_at=e.created_at, seq=e.seq))
    return out


def get_golden(name: str, *, version: int | None = None, ledger: LedgerLike = None) -> GoldenSet:
    """A golden set by name and version (default: the latest).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> save_dataset(builtin_dataset("digits").subset(range(100)), tmp / "golden.npz")
    >>> _ = register_golden(tmp / "golden.npz", name="g", ledger=tmp / "l.sqlite")
    >>> get_golden("g", ledger=tmp / "l.sqlite").rows
    100
    """
    found = list_golden(name, ledger=ledger)
    if not found:
        raise UsageError(f"no golden set named {name!r} is registered")
    if version is None:
        return found[-1]
    for g in found:
        if g.version == version:
            return g
    raise UsageError(f"golden set {name!r} has no version {version} (1..{len(found)})")


def load_golden(golden: GoldenSet) -> Dataset:
    """The golden set's data, after checking that file and rows are the registered ones.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.data import save_dataset
    >>> from poisonguard.datasets import builtin_dataset
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> save_dataset(builtin_dataset("digits").subset(range(100)), tmp / "golden.npz")
    >>> g = register_golden(tmp / "golden.npz", name="g", ledger=tmp / "ledger.sqlite")
    >>> len(load_golden(g))
    100
    >>> _ = (tmp / "golden.npz").write_bytes(b"changed")
    >>> load_golden(g)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    poisonguard.errors.IntegrityError: ...
    """
    from poisonguard.provenance import build_manifest
    from poisonguard.provenance.canonical import file_sha256

    where = f"golden set {golden.name} v{golden.version} ({golden.path})"
    try:
        digest = file_sha256(golden.path)
    except OSError as exc:
        raise IntegrityError(f"{where}: cannot read ({exc.strerror})") from None
    if digest != golden.sha256:
        raise IntegrityError(f"{where}: the file changed since it was registered")
    if build_manifest(golden.path, label=golden.label).root != golden.root:
        raise IntegrityError(f"{where}: its rows changed since it was registered")
    return open_dataset(golden.path, label=golden.label)


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width bins.

    Examples
    --------
    >>> proba, labels = np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1])
    >>> round(float(expected_calibration_error(proba, labels)), 2)
    0.15
    """
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == labels
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in np.unique(which):
        sel = which == b
        total += sel.sum() * abs(float(correct[sel].mean()) - float(conf[sel].mean()))
    return total / max(len(labels), 1)


def evaluate(model: ImageClassifier, dataset: Dataset) -> Evaluation:
    """Accuracy, per-class accuracy and ECE of ``model`` on ``dataset`` (a golden set).

    Examples
    --------
    >>> from poisonguard.monitor import train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> result = evaluate(model, digits.subset(range(1000, 1100)))
    >>> result.n, result.accuracy > 0.5, sum(result.class_counts.values())
    (100, True, 100)
    """
    if dataset.images is None:
        raise UsageError("the monitor evaluates image models on image golden sets")
    if tuple(dataset.classes) != tuple(model.classes):
        raise UsageError(f"the golden set's classes {list(dataset.classes)} are not the "
                         f"model's {list(model.classes)}")
    proba = model.predict_proba(dataset.images)
    y = np.asarray(dataset.labels)
    pred = proba.argmax(axis=1)
    per_class, counts, predicted = {}, {}, {}
    for k, cls in enumerate(model.classes):
        sel = y == k
        counts[cls] = int(sel.sum())
        predicted[cls] = int((pred == k).sum())
        if sel.any():
            per_class[cls] = float((pred[sel] == k).mean())
    return Evaluation(n=len(y), accuracy=float((pred == y).mean()) if len(y) else 0.0,
                      ece=expected_calibration_error(proba, y), per_class=per_class,
                      class_counts=counts, predicted_counts=predicted)
