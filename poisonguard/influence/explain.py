"""Which training rows drive a prediction: the library behind ``poisonguard influence``.

:func:`explain` scores every training row's influence on each query's predicted
class with one of three methods and keeps, per query, the rows that most raise and
most lower it:

- ``"if"``: influence functions of a softmax regression on the standardised
  features (:mod:`poisonguard.influence.logistic`); exact enough to be a reference
  on convex models, and cheap up to tens of thousands of rows;
- ``"knn-shapley"``: exact k-NN Shapley values in the same space
  (:mod:`poisonguard.influence.knn_shapley`); model-agnostic;
- ``"tracin"``: TracIn over the checkpoints of a torch model
  (:mod:`poisonguard.influence.tracin`), trained here unless a model folder is given.

Scores are "how much this row raises the log-likelihood (or k-NN utility, or TracIn
similarity) of the query's predicted class": positive rows pull the query towards
the class the model gives it, negative rows push it away.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.data import Dataset, atomic_write_text, check_output_path
from poisonguard.errors import DataError, UsageError
from poisonguard.findings import Findings, RowFinding

__all__ = ["METHODS", "Influencer", "InfluenceResult", "QueryExplanation", "explain",
           "query_rows", "run_influence", "standardise"]

METHODS = ("if", "knn-shapley", "tracin")
#: Largest softmax-regression parameter count solved directly (a Cholesky of P x P).
EXACT_MAX_PARAMETERS = 3000


@dataclass(frozen=True)
class Influencer:
    """One training row's influence on one query (``finding``: its scan outcome).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = explain(builtin_dataset("wine"), [0], method="knn-shapley", top=2)
    >>> strongest = result.explanations[0].raising[0]  # a query that is a training row
    >>> strongest.row, strongest.label, round(strongest.score, 3)  # raises itself most
    (0, '0', 0.017)
    """

    row: int
    id: str
    label: str
    score: float
    finding: str | None = None


@dataclass(frozen=True)
class QueryExplanation:
    """A query, the class the model gives it, and its strongest influencers.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> first = explain(wine, [0], method="knn-shapley", top=2).explanations[0]
    >>> first.query, first.predicted, [r.row for r in first.lowering]
    ('row 0', '0', [109, 98])
    """

    query: str
    predicted: str
    label: str | None
    raising: tuple[Influencer, ...]
    lowering: tuple[Influencer, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class InfluenceResult:
    """Per query explanations plus the full Q x N score matrix (``scores``).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> answer = explain(builtin_dataset("wine"), [0, 5], method="knn-shapley", top=2)
    >>> answer.method, answer.scores.shape, answer.predicted.tolist()
    ('knn-shapley', (2, 178), [0, 0])
    >>> sorted(answer.to_dict())
    ['kind', 'meta', 'method', 'queries', 'tool']
    """

    method: str
    explanations: tuple[QueryExplanation, ...]
    scores: np.ndarray
    predicted: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the score matrix, as plain JSON types."""
        return {"tool": "poisonguard", "kind": "influence", "method": self.method,
                "meta": dict(self.meta),
                "queries": [e.to_dict() for e in self.explanations]}

    def write(self, out: str | Path) -> Path:
        """Write ``influence.json`` and ``influencers.csv`` into the folder ``out``."""
        folder = check_output_path(out, folder=True, name="--out")
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["query,direction,rank,row,id,label,score,finding"]
        for e in self.explanations:
            for direction, rows in (("raises", e.raising), ("lowers", e.lowering)):
                for rank, r in enumerate(rows, 1):
                    cells = [e.query, direction, str(rank), str(r.row), r.id, r.label,
                             f"{r.score:.6g}", r.finding or ""]
                    lines.append(",".join(_csv(c) for c in cells))
        atomic_write_text(folder / "influencers.csv", "\n".join(lines) + "\n")
        target = folder / "influence.json"
        atomic_write_text(target, json.dumps(self.to_dict(), indent=2) + "\n")
        return target


def _csv(cell: str) -> str:
    if any(ch in cell for ch in ',"\n\r'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Columns to zero mean and unit variance with the training rows' statistics.

    Examples
    --------
    >>> train, test = standardise(np.array([[1.0], [3.0]]), np.array([[2.0], [5.0]]))
    >>> train.ravel().tolist(), test.ravel().tolist()
    ([-1.0, 1.0], [0.0, 3.0])
    """
    x = np.asarray(train, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(np.asarray(a, dtype=np.float64) - mean) / std for a in (x, *others)]


def query_rows(train: Dataset, queries: Sequence[int] | Dataset) -> tuple[np.ndarray,
                                                                           np.ndarray, list[str]]:
    """The query matrix, its given labels and a name per query.

    ``queries`` is a list of training row indices, or a dataset in the same encoding
    (same feature names for tables, same image shape): anything else is refused.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> x, labels, names = query_rows(builtin_dataset("wine"), [0, 5])
    >>> x.shape, labels.tolist(), names
    ((2, 13), [0, 0], ['row 0', 'row 5'])
    """
    if isinstance(queries, Dataset):
        if queries.modality != train.modality:
            raise DataError(f"the queries are {queries.modality} data, the training data "
                            f"{train.modality}", path=queries.source)
        if queries.images is not None and train.images is not None and \
                queries.images.shape[1:] != train.images.shape[1:]:
            raise DataError(f"query images are {queries.images.shape[1:]}, training images "
                            f"{train.images.shape[1:]}", path=queries.source)
        if queries.features is not None and queries.feature_names != train.feature_names:
            raise DataError("the queries' columns do not encode like the training data's "
                            "(same columns, same categories needed)", path=queries.source)
        if queries.classes != train.classes and \
                not set(queries.classes) <= set(train.classes):
            raise DataError("the queries hold classes the training data lacks",
                            path=queries.source)
        codes = np.array([train.classes.index(queries.classes[c]) for c in queries.labels],
                         dtype=np.int64)
        where = queries.source or "query"
        return queries.matrix(), codes, [f"{where} row {i}" for i in range(len(queries))]
    idx = np.asarray(list(queries), dtype=np.int64)
    if idx.ndim != 1 or len(idx) == 0:
        raise UsageError("give at least one query row")
    bad = idx[(idx < 0) | (idx >= len(train))]
    if len(bad):
        raise UsageError(f"query row {int(bad[0])} is not a row of the data "
                         f"(0..{len(train) - 1})")
    return train.matrix()[idx], train.labels[idx], [f"row {int(i)}" for i in idx]


def _finding_text(row: RowFinding | None) -> str | None:
    if row is None:
        return None
    if not row.flagged:
        return f"not flagged (score {row.score:.2f})"
    why = "; ".join(f"{r.detector}: {r.detail}" for r in row.reasons[:2])
    return f"flagged (score {row.score:.2f})" + (f": {why}" if why else "")


def _scores(method: str, train: Dataset, xq: np.ndarray, *, k: int, l2: float, solver: str,
            model_dir: str | Path | None, seed: int, options: Mapping[str, Any]
            ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(Q x N scores for each query's predicted class, predicted classes, meta)."""
    y = train.labels
    if method == "tracin":
        from poisonguard.influence.tracin import tracin_explain

        return tracin_explain(train, xq, model_dir=model_dir, seed=seed, **options)
    x, q = standardise(train.matrix(), xq)
    if method == "if":
        from poisonguard.influence.logistic import fit_softmax

        model = fit_softmax(x, y, n_classes=train.n_classes, l2=l2)
        if solver == "auto":
            solver = "exact" if model.theta.size <= EXACT_MAX_PARAMETERS else "cg"
        predicted = model.predict(q)
        scores = model.influence(q, predicted, solver=solver)
        return scores, predicted, {"l2": l2, "solver": solver,
                                   "train_accuracy": float((model.predict(x) == y).mean())}
    from poisonguard.influence.knn_shapley import knn_predict, knn_shapley

    predicted = knn_predict(x, y, q, k=k, n_classes=train.n_classes)
    return knn_shapley(x, y, q, predicted, k=k), predicted, {"k": k}


def explain(train: Dataset, queries: Sequence[int] | Dataset, *, method: str = "if",
            top: int = 20, k: int = 10, l2: float = 1e-2, solver: str = "auto",
            model_dir: str | Path | None = None, findings: Findings | None = None,
            seed: int = 0, tracin_options: Mapping[str, Any] | None = None) -> InfluenceResult:
    """The training rows that most raise and most lower each query's predicted class.

    Parameters
    ----------
    train : Dataset
        The training data (tabular or images; text needs an embedding first).
    queries : list of int or Dataset
        Training row indices, or query rows in the same encoding with labels.
    method : {"if", "knn-shapley", "tracin"}
        How influence is measured (module docstring).
    top : int
        Rows listed per query and direction.
    k : int
        Neighbours for ``"knn-shapley"``.
    l2 : float
        Softmax-regression penalty for ``"if"``.
    solver : {"auto", "exact", "cg", "lissa"}
        Inverse-Hessian solver for ``"if"`` ("auto": exact up to 3,000 parameters).
    model_dir : path, optional
        For ``"tracin"``: a checkpoint folder (:func:`~poisonguard.influence.train_checkpoints`)
        or a ``poisonguard train`` folder holding one torch model; loaded only through
        :func:`poisonguard.provenance.load_model` (safetensors, never pickle).
    findings : Findings, optional
        A scan of ``train``: each influencer carries its own outcome.
    seed : int
        Seed for model training (TracIn without a model folder).
    tracin_options : mapping, optional
        Passed to :func:`~poisonguard.influence.tracin.tracin_explain`.

    Returns
    -------
    InfluenceResult

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> result = explain(wine, [0], method="knn-shapley", top=3)
    >>> len(result.explanations[0].raising)
    3
    """
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}' (known: {', '.join(METHODS)})")
    if top < 1:
        raise UsageError("--top must be >= 1")
    if train.modality == "text":
        raise UsageError("influence needs tabular or image data (embed text first)")
    if method != "tracin" and model_dir is not None:
        raise UsageError("--model is used by --method tracin only")
    xq, given, names = query_rows(train, queries)
    scores, predicted, meta = _scores(method, train, xq, k=k, l2=l2, solver=solver,
                                      model_dir=model_dir, seed=seed,
                                      options=tracin_options or {})
    by_id: dict[str, RowFinding] = {}
    if findings is not None:
        from poisonguard.report import check_match

        check_match(findings, train)
        by_id = {str(r.id): r for r in findings.rows}
    explanations = []
    for j, name in enumerate(names):
        order = np.argsort(-scores[j], kind="stable")

        def pick(rows: np.ndarray, row_scores: np.ndarray) -> tuple[Influencer, ...]:
            return tuple(
                Influencer(row=int(i), id=str(train.ids[i]),
                           label=train.classes[int(train.labels[i])], score=float(row_scores[i]),
                           finding=_finding_text(by_id.get(str(train.ids[i]))))
                for i in rows)

        raising = order[:top][scores[j][order[:top]] > 0]
        low = order[::-1][:top]
        lowering = low[scores[j][low] < 0]
        explanations.append(QueryExplanation(
            query=name, predicted=train.classes[int(predicted[j])],
            label=train.classes[int(given[j])],
            raising=pick(raising, scores[j]), lowering=pick(lowering, scores[j])))
    meta = {"rows": len(train), "queries": len(names), "top": top, **meta}
    return InfluenceResult(method=method, explanations=tuple(explanations),
                           scores=np.asarray(scores), predicted=np.asarray(predicted), meta=meta)


def run_influence(train: Dataset, queries: Sequence[int] | Dataset, out: str | Path, *,
                  method: str = "if", top: int = 20, k: int = 10,
                  model_dir: str | Path | None = None, findings: Findings | None = None,
                  seed: int = 0, threads: int | None = None,
                  layers: str = "last", epochs: int | None = None
                  ) -> tuple[InfluenceResult, list[Path]]:
    """:func:`explain`, then write ``influence.json``, ``influencers.csv`` and
    ``report.html`` into the folder ``out`` (TracIn without a model folder also
    writes the checkpoints it trains to ``out/model``); returns the result and the
    paths written (JSON first). ``threads``, ``layers`` and ``epochs`` are TracIn's.

    Examples
    --------
    >>> import tempfile
    >>> from poisonguard.datasets import builtin_dataset
    >>> result, paths = run_influence(builtin_dataset("wine"), [5], tempfile.mkdtemp(), top=3)
    >>> [p.name for p in paths]
    ['influence.json', 'influencers.csv', 'report.html']
    """
    from poisonguard.report.influence import write_influence_report

    folder = check_output_path(out, folder=True, name="--out")
    options: dict[str, Any] = {"threads": threads, "layers": layers, "epochs": epochs}
    if method == "tracin" and model_dir is None:
        options["save_to"] = folder / "model"
    result = explain(train, queries, method=method, top=top, k=k, model_dir=model_dir,
                     findings=findings, seed=seed,
                     tracin_options=options if method == "tracin" else None)
    target = result.write(folder)
    query_images = None
    if train.images is not None:
        xq, _, _ = query_rows(train, queries)
        query_images = xq.reshape((len(xq), *train.images.shape[1:]))
    html = folder / "report.html"
    write_influence_report(result, html, dataset=train, query_images=query_images)
    return result, [target, folder / "influencers.csv", html]
