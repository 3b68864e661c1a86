"""Fixtures: real digits with a planted 2x2 corner patch, scanned by small stub detectors.

The stub detectors live here (not in the registry) so that the report tests do not
depend on which real detectors exist yet. They are honest, data-driven scorers:
one looks at the corner pixels, one at nearest-centroid disagreement.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.detect import Detector, DetectorResult
from poisonguard.detect.thresholds import robust_z, scores_from_z
from poisonguard.findings import Findings, Reason, RowFinding
from poisonguard.represent import Representation
from poisonguard.scan import scan_dataset

POISONED = np.arange(0, 400, 10)  # 40 rows get the patch and label 0
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"


class CornerStub(Detector):
    """Rows whose top-left 2x2 corner is bright: ink there is rare in digits."""

    name: ClassVar[str] = "trigger"

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        assert dataset.images is not None
        corner = dataset.images[:, 0:2, 0:2, 0].reshape(len(dataset), -1).mean(axis=1)
        scores = scores_from_z(corner, 8.0, width=1.5)
        flags = scores >= 0.5
        h, w, c = dataset.images.shape[1:]
        feats = [(r * w + col) * c for r in (0, 1) for col in (0, 1)]
        rows = int(flags.sum())
        return DetectorResult(
            detector=self.name, scores=scores, flags=flags,
            reasons={int(i): "bright 2x2 patch at the image corner" for i in np.flatnonzero(flags)},
            hypotheses=(f"backdoor -> class 0: {rows} rows share a 2x2 patch at row 0, column 0",),
            meta={"triggers": [{"class": 0, "features": feats, "values": [16.0] * 4,
                                "rows": rows, "looks_other": rows,
                                "pixels": [[f // (w * c), (f // c) % w, f % c] for f in feats]}]},
        )


class CentroidStub(Detector):
    """Rows nearer another class's centroid than their own (a label-noise look-alike)."""

    name: ClassVar[str] = "label"

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        x = dataset.matrix().astype(np.float64)
        cents = np.stack([x[dataset.labels == c].mean(axis=0) for c in range(dataset.n_classes)])
        d = ((x[:, None, :] - cents[None]) ** 2).sum(axis=2)
        own = d[np.arange(len(x)), dataset.labels]
        margin = own - d.min(axis=1)
        scores = scores_from_z(robust_z(margin), 4.0)
        flags = scores >= 0.5
        best = d.argmin(axis=1)
        return DetectorResult(
            detector=self.name, scores=scores, flags=flags,
            reasons={int(i): "nearer another class's centroid" for i in np.flatnonzero(flags)},
            suggested_labels={int(i): int(best[i]) for i in np.flatnonzero(flags)},
        )


def poisoned_digits() -> Dataset:
    ds = builtin_dataset("digits")
    assert ds.images is not None
    images = ds.images.copy()
    labels = ds.labels.copy()
    images[POISONED, 0:2, 0:2, 0] = 16.0
    labels[POISONED] = 0
    return ds.replace(images=images, labels=labels, source="builtin:digits-poisoned")


def _identity_representation(ds: Dataset) -> Representation:
    x = ds.matrix().astype(np.float32)
    proba = np.full((len(ds), ds.n_classes), 1.0 / ds.n_classes)
    return Representation(features=x, embedding=x, proba=proba, model="identity")


@pytest.fixture(scope="session")
def digits_scan() -> tuple[Findings, Dataset]:
    ds = poisoned_digits()
    findings, _, _ = scan_dataset(ds, detectors=[CornerStub(), CentroidStub()],
                                  representation=_identity_representation(ds))
    return findings, ds


@pytest.fixture(scope="session")
def tabular_scan() -> tuple[Findings, Dataset]:
    ds = builtin_dataset("wine")
    assert ds.features is not None
    x = ds.features.copy()
    x[:6, 9] = x[:, 9].max() * 4  # six rows with an absurd colour intensity
    ds = ds.replace(features=x)

    class ColumnStub(CentroidStub):
        name: ClassVar[str] = "outlier"

        def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
            z = np.abs(robust_z(dataset.matrix()[:, 9]))
            scores = scores_from_z(z, 5.0)
            return DetectorResult(detector=self.name, scores=scores, flags=scores >= 0.5)

    findings, _, _ = scan_dataset(ds, detectors=[ColumnStub()],
                                  representation=_identity_representation(ds))
    return findings, ds


def _synthetic_findings(n: int, *, flag_rate: float = 0.02, seed: int = 0) -> Findings:
    """Findings for ``n`` rows built directly (no scan), three detectors."""
    rng = np.random.default_rng(seed)
    dets = ("label", "knn", "outlier")
    s = rng.beta(1, 12, size=(len(dets), n))
    hot = rng.random(n) < flag_rate
    s[rng.integers(0, len(dets), n)[hot], np.flatnonzero(hot)] = rng.uniform(0.5, 1, hot.sum())
    fused = s.max(axis=0).tolist()
    top = [dets[k] for k in s.argmax(axis=0).tolist()]
    cols = s.T.tolist()
    flags = hot.tolist()
    rows = tuple(
        RowFinding(i, f"{i:016x}", fused[i], flags[i], "drop" if flags[i] else "keep", None,
                   (Reason(top[i], fused[i], "synthetic"),) if flags[i] else (),
                   dict(zip(dets, cols[i], strict=True)))
        for i in range(n))
    return Findings(dataset={"path": f"synthetic-{n}", "rows": n, "modality": "tabular",
                             "sha256": "0" * 64, "classes": ["0", "1"]},
                    detectors=dets, rows=rows,
                    summary={"rows": n, "flagged": int(hot.sum()),
                             "by_class": {"0": int(hot.sum())}, "suspected_attacks": []})


@pytest.fixture(scope="session")
def synthetic_findings() -> Callable[..., Findings]:
    """A factory: ``synthetic_findings(n, flag_rate=0.02)``."""
    return _synthetic_findings


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
