"""Influence functions for L2-regularised softmax (multinomial logistic) regression.

The model is small and strictly convex, so the influence-function approximation of
Koh & Liang (2017) is close to leave-one-out retraining and serves as the reference
for the other methods. The objective is

    R(theta) = (1/n) sum_i CE(softmax(theta x~_i), y_i) + (l2 / 2) |theta|^2

with ``theta`` a K x (D + 1) matrix (the intercept is the last column, penalised too,
which keeps the Hessian positive definite). Removing row ``i`` moves the optimum by
about ``(1/n) H^-1 g_i``; the effect on a query function ``f`` is
``(1/n) grad f . H^-1 g_i``. Inverse-Hessian-vector products come from conjugate
gradients (``"cg"``), the LiSSA series (``"lissa"``) or, for small models, a direct
Cholesky solve (``"exact"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize
from scipy.sparse.linalg import LinearOperator, cg

from poisonguard.errors import UsageError

__all__ = ["SOLVERS", "SoftmaxRegression", "fit_softmax"]

SOLVERS = ("exact", "cg", "lissa")


def _augment(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.hstack([x, np.ones((len(x), 1))])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@dataclass(frozen=True, eq=False)
class SoftmaxRegression:
    """A fitted softmax regression and the influence machinery around it.

    Build it with :func:`fit_softmax`. ``theta`` is K x (D + 1); ``x`` and ``y`` are
    the training rows (D columns, unaugmented) and their int labels.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 2)); y = (x[:, 0] > 0).astype(int)
    >>> m = fit_softmax(x, y, n_classes=2, l2=0.1)
    >>> scores = m.influence(x[:1], np.array([m.predict(x[:1])[0]]))
    >>> scores.shape
    (1, 60)
    """

    theta: np.ndarray
    x: np.ndarray
    y: np.ndarray
    l2: float

    @property
    def n_classes(self) -> int:
        return int(self.theta.shape[0])

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of rows ``x`` (M x D)."""
        return _softmax(_augment(x) @ self.theta.T)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return np.asarray(self.proba(x).argmax(axis=1))

    def _residuals(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """p - onehot(y): the per-row loss gradient is residual (outer) x~."""
        r = self.proba(x)
        r[np.arange(len(y)), y] -= 1.0
        return r

    def loss_gradients(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-row gradients of the cross-entropy, M x K x (D + 1)."""
        return self._residuals(x, y)[:, :, None] * _augment(x)[:, None, :]

    def hvp(self, v: np.ndarray) -> np.ndarray:
        """Hessian of the training objective times ``v`` (K x (D + 1))."""
        xa = _augment(self.x)
        p = self.proba(self.x)
        z = xa @ v.T
        s = p * z - p * (p * z).sum(axis=1, keepdims=True)
        return np.asarray(s.T @ xa / len(xa) + self.l2 * v)

    def hessian(self) -> np.ndarray:
        """The full Hessian, P x P with P = K (D + 1) (row-major over ``theta``)."""
        xa = _augment(self.x)
        p = self.proba(self.x)
        k, d = self.theta.shape
        h = np.zeros((k, d, k, d))
        for a in range(k):
            for b in range(a, k):
                w = p[:, a] * ((a == b) - p[:, b])
                block = (xa * w[:, None]).T @ xa / len(xa)
                h[a, :, b, :] = block
                h[b, :, a, :] = block.T
        flat = h.reshape(k * d, k * d)
        return np.asarray(flat + self.l2 * np.eye(k * d))

    def inverse_hvp(self, vectors: np.ndarray, *, solver: str = "cg", tol: float = 1e-10,
                    max_iter: int = 1000, lissa_scale: float | None = None,
                    lissa_depth: int = 2000) -> np.ndarray:
        """``H^-1 v`` for each of the M vectors (M x K x (D + 1)).

        ``"exact"`` factorises H once (fine up to a few thousand parameters), ``"cg"``
        runs conjugate gradients on Hessian-vector products, ``"lissa"`` sums the
        series ``sum_j (I - H / s)^j v / s`` (``s`` bounds the largest eigenvalue; by
        default the trace-free bound ``l2 + max |x~|^2 / 2``).
        """
        if solver not in SOLVERS:
            raise UsageError(f"unknown solver '{solver}' (known: {', '.join(SOLVERS)})")
        shape = self.theta.shape
        flat = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
        if solver == "exact":
            factor = linalg.cho_factor(self.hessian())
            return np.asarray(linalg.cho_solve(factor, flat.T).T.reshape(-1, *shape))
        out = np.zeros_like(flat)
        if solver == "cg":
            size = flat.shape[1]
            op = LinearOperator((size, size), dtype=np.float64,
                                matvec=lambda u: self.hvp(u.reshape(shape)).ravel())
            for m, b in enumerate(flat):
                out[m], _ = cg(op, b, rtol=tol, atol=0.0, maxiter=max_iter)
            return out.reshape(-1, *shape)
        xa = _augment(self.x)
        scale = lissa_scale or self.l2 + 0.5 * float((xa ** 2).sum(axis=1).max())
        for m, b in enumerate(flat):
            v = b.reshape(shape)
            est = v.copy()
            for _ in range(lissa_depth):
                est = v + est - self.hvp(est) / scale
            out[m] = (est / scale).ravel()
        return out.reshape(-1, *shape)

    def influence(self, x_query: np.ndarray, classes: np.ndarray, *, solver: str = "cg",
                  **solver_options: float) -> np.ndarray:
        """How much each training row raises ``log p(class | query)``, Q x N.

        Score ``s[q, i] = -(f_q(without i) - f_q)`` estimated as
        ``(1/n) g_q . H^-1 g_i`` where ``g`` are cross-entropy gradients (the query's
        at its given class): positive rows pull the query towards ``classes[q]``,
        negative rows push it away.
        """
        queries = np.asarray(x_query, dtype=np.float64)
        classes = np.asarray(classes, dtype=np.int64)
        g_q = self.loss_gradients(queries, classes)
        s = self.inverse_hvp(g_q, solver=solver, **solver_options)  # type: ignore[arg-type]
        xa = _augment(self.x)
        r = self._residuals(self.x, self.y)
        # g_i . s_q = r_i^T (s_q x~_i): no N x P gradient matrix is ever formed.
        return np.stack([((xa @ sq.T) * r).sum(axis=1) for sq in s]) / len(xa)

    def self_influence(self) -> np.ndarray:
        """``g_i . H^-1 g_i`` for every training row (exact Hessian)."""
        xa = _augment(self.x)
        r = self._residuals(self.x, self.y)
        k, d = self.theta.shape
        factor = linalg.cho_factor(self.hessian())
        out = np.zeros(len(xa))
        for start in range(0, len(xa), 512):
            g = (r[start:start + 512, :, None] * xa[start:start + 512, None, :]).reshape(-1, k * d)
            out[start:start + 512] = (g * linalg.cho_solve(factor, g.T).T).sum(axis=1)
        return out


def fit_softmax(x: np.ndarray, y: np.ndarray, *, n_classes: int, l2: float = 1e-2,
                tol: float = 1e-10, max_iter: int = 2000,
                init: np.ndarray | None = None) -> SoftmaxRegression:
    """Minimise the regularised softmax cross-entropy exactly (L-BFGS).

    Parameters
    ----------
    x : (N, D) array
        Training rows (scale them first).
    y : (N,) int array
        Labels in ``0..n_classes-1``.
    n_classes : int
        K, the number of classes (classes absent from ``y`` keep a parameter row).
    l2 : float
        Penalty on every parameter, intercepts included (> 0).
    tol, max_iter : L-BFGS settings; tight by default so that leave-one-out refits
        differ from the full fit by the removed row, not by optimiser noise.
    init : (K, D + 1) array, optional
        Warm start.

    Returns
    -------
    SoftmaxRegression

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> fit_softmax(x, y, n_classes=2).predict(x).tolist()
    [0, 0, 1, 1]
    """
    if l2 <= 0:
        raise UsageError("l2 must be > 0")
    xa = _augment(x)
    y = np.asarray(y, dtype=np.int64)
    n = len(xa)
    shape = (n_classes, xa.shape[1])
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        theta = flat.reshape(shape)
        z = xa @ theta.T
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -(onehot * log_p).sum() / n + 0.5 * l2 * float((theta ** 2).sum())
        grad = (np.exp(log_p) - onehot).T @ xa / n + l2 * theta
        return float(loss), grad.ravel()

    start = np.zeros(shape) if init is None else np.asarray(init, dtype=np.float64)
    res = optimize.minimize(objective, start.ravel(), jac=True, method="L-BFGS-B",
                            options={"maxiter": max_iter, "ftol": tol, "gtol": tol})
    return SoftmaxRegression(theta=res.x.reshape(shape), x=np.asarray(x, dtype=np.float64),
                             y=y, l2=float(l2))
