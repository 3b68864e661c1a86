"""Row-level influence statistics for scanning a whole dataset (the ``influence`` detector).

All three come from softmax-regression influence functions
(:mod:`poisonguard.influence.logistic`) in a space of at most ``max_dims``
principal components of the standardised rows, so that the Hessian stays small
(K (max_dims + 1) parameters) whatever the data's width:

- :func:`self_influence`: ``g_i . H^-1 g_i``, how much a row's own loss depends on
  the row being in the training set. Mislabelled and out-of-place rows are the ones
  the model can fit only by bending towards them.
- :func:`heldout_harm`: two-fold cross-fitting; each row's estimated effect on the
  held-out half's total loss (positive = removing it lowers that loss, i.e. harmful).
- :func:`targeted_harm`: each row's push of given target inputs away from their
  correct class (what a targeted clean-label attack plants).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedKFold

from poisonguard.influence.explain import standardise
from poisonguard.influence.logistic import fit_softmax

__all__ = ["heldout_harm", "reduce", "self_influence", "targeted_harm"]


def reduce(x: np.ndarray, *others: np.ndarray, max_dims: int = 64,
           seed: int = 0) -> list[np.ndarray]:
    """Standardise with ``x``'s statistics, then keep at most ``max_dims`` principal
    components (fitted on ``x``), rescaled to unit variance."""
    parts = standardise(x, *others)
    if parts[0].shape[1] <= max_dims:
        return parts
    pca = PCA(n_components=max_dims, random_state=seed).fit(parts[0])
    sd = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
    return [pca.transform(p) / sd for p in parts]


def self_influence(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-2
                   ) -> np.ndarray:
    """``g_i . H^-1 g_i`` for every row of a softmax regression fitted on all rows.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 2)); y = (x[:, 0] > 0).astype(int); y[0] = 1 - y[0]
    >>> s = self_influence(x, y, 2)
    >>> s.shape, bool(s[0] > np.median(s))
    ((50,), True)
    """
    return fit_softmax(x, y, n_classes=n_classes, l2=l2).self_influence()


def heldout_harm(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-2,
                 seed: int = 0) -> np.ndarray:
    """Each row's estimated reduction of the other half's loss if it were removed.

    Two stratified folds (seeded): a model fitted on one fold, its rows scored by
    ``-(1/n) grad L_heldout . H^-1 g_i`` (one linear solve per fold). Positive:
    harmful to the held-out half; negative: helpful.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(80, 2)); y = (x[:, 0] > 0).astype(int); y[:4] = 1 - y[:4]
    >>> h = heldout_harm(x, y, 2)
    >>> bool(np.median(h[:4]) > np.median(h[4:]))
    True
    """
    y = np.asarray(y)
    counts = np.bincount(y, minlength=n_classes)
    folds = 2 if counts[counts > 0].min() >= 2 else None
    out = np.zeros(len(y))
    if folds is None:
        return out
    split = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    for fit_rows, held in split.split(x, y):
        model = fit_softmax(x[fit_rows], y[fit_rows], n_classes=n_classes, l2=l2)
        total = model.loss_gradients(x[held], y[held]).sum(axis=0, keepdims=True)
        # influence() scores raising log-likelihood of the query at its class; with
        # the summed held-out gradient as the "query gradient" this is the reduction
        # of held-out loss each row brings, so harm is its negative.
        s = model.inverse_hvp(total, solver="exact" if model.theta.size <= 3000 else "cg")[0]
        xa = np.hstack([x[fit_rows], np.ones((len(fit_rows), 1))])
        r = model.proba(x[fit_rows])
        r[np.arange(len(fit_rows)), y[fit_rows]] -= 1.0
        out[fit_rows] = -((xa @ s.T) * r).sum(axis=1) / len(fit_rows)
    return out


def targeted_harm(x: np.ndarray, y: np.ndarray, n_classes: int, targets: np.ndarray,
                  target_classes: np.ndarray, *, l2: float = 1e-2) -> np.ndarray:
    """How strongly each row pushes the targets away from their correct classes, Q x N.

    ``-influence`` on ``log p(correct class | target)``: positive rows lower it.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [3.0], [3.1], [0.05]]); y = np.array([0, 0, 1, 1, 1])
    >>> int(np.argmax(targeted_harm(x, y, 2, np.array([[0.05]]), np.array([0]))[0]))
    4
    """
    model = fit_softmax(x, y, n_classes=n_classes, l2=l2)
    solver = "exact" if model.theta.size <= 3000 else "cg"
    return np.asarray(-model.influence(targets, np.asarray(target_classes), solver=solver))
