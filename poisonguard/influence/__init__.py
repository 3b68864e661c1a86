"""Influence-based auditing: which training rows drive a prediction.

Three methods, from exact-but-small to scalable:

- influence functions of a softmax regression (:mod:`.logistic`: CG, LiSSA or a
  direct solve), the reference on convex models;
- exact k-NN Shapley values on any embedding (:mod:`.knn_shapley`);
- TracIn over the checkpoints of a torch model, with random projections of the
  gradients for scale (:mod:`.tracin`, needs the ``torch`` extra).

:func:`explain` is what ``poisonguard influence`` runs.
"""

from poisonguard.influence.explain import (
    METHODS,
    Influencer,
    InfluenceResult,
    QueryExplanation,
    explain,
    query_rows,
    run_influence,
    standardise,
)
from poisonguard.influence.knn_shapley import knn_predict, knn_shapley
from poisonguard.influence.logistic import SOLVERS, SoftmaxRegression, fit_softmax

__all__ = [
    "METHODS",
    "SOLVERS",
    "InfluenceResult",
    "Influencer",
    "QueryExplanation",
    "SoftmaxRegression",
    "explain",
    "fit_softmax",
    "knn_predict",
    "knn_shapley",
    "query_rows",
    "run_influence",
    "standardise",
]
