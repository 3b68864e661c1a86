"""A small numpy classifier for the simulator: softmax regression or a one-hidden-layer MLP.

Parameters are a list of arrays ``[W1, b1, (W2, b2)]``, the same shape as the client
updates the aggregators take, so no deep-learning framework is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from poisonguard.errors import UsageError

__all__ = ["NumpyClassifier"]

Params = list[np.ndarray]


class NumpyClassifier:
    """Softmax regression (``hidden=0``) or an MLP with one ReLU layer, trained by SGD.

    Parameters
    ----------
    n_features, n_classes : int
        Input width and number of classes.
    hidden : int
        Hidden units; 0 gives softmax regression.

    Examples
    --------
    >>> import numpy as np
    >>> model = NumpyClassifier(n_features=2, n_classes=2, hidden=0)
    >>> x = np.array([[0.0, 1.0], [1.0, 0.0]] * 20)
    >>> y = np.array([0, 1] * 20)
    >>> params = model.train(model.init(0), x, y, epochs=50, lr=0.5, batch_size=8, seed=0)
    >>> float(model.accuracy(params, x, y))
    1.0
    """

    def __init__(self, *, n_features: int, n_classes: int, hidden: int = 32) -> None:
        if n_features < 1 or n_classes < 2 or hidden < 0:
            raise UsageError("a classifier needs >= 1 feature, >= 2 classes, hidden >= 0")
        self.n_features = n_features
        self.n_classes = n_classes
        self.hidden = hidden

    def init(self, seed: int) -> Params:
        """Fresh parameters (He-initialised weights, zero biases)."""
        rng = np.random.default_rng(seed)
        sizes = [self.n_features, self.hidden, self.n_classes] if self.hidden else \
            [self.n_features, self.n_classes]
        params: Params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            params.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)))
            params.append(np.zeros(fan_out))
        return params

    def _forward(self, params: Sequence[np.ndarray], x: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.hidden:
            h = np.maximum(x @ params[0] + params[1], 0.0)
            return h @ params[2] + params[3], h
        return x @ params[0] + params[1], None

    def predict(self, params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Predicted class codes."""
        logits, _ = self._forward(params, x)
        return np.asarray(np.argmax(logits, axis=1))

    def accuracy(self, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows predicted correctly."""
        return float(np.mean(self.predict(params, x) == y)) if len(y) else float("nan")

    def gradients(self, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> Params:
        """Gradients of the mean cross-entropy loss."""
        logits, h = self._forward(params, x)
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        p /= len(y)
        if h is None:
            return [x.T @ p, p.sum(axis=0)]
        dh = (p @ params[2].T) * (h > 0)
        return [x.T @ dh, dh.sum(axis=0), h.T @ p, p.sum(axis=0)]

    def train(self, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, *,
              epochs: int, lr: float, batch_size: int, seed: int) -> Params:
        """Minibatch SGD from ``params`` (not modified); returns the new parameters."""
        rng = np.random.default_rng(seed)
        out = [p.copy() for p in params]
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), batch_size):
                batch = order[start:start + batch_size]
                for p, g in zip(out, self.gradients(out, x[batch], y[batch]), strict=True):
                    p -= lr * g
        return out
