"""Runtime input screening with STRIP (Gao et al., ACSAC 2019), and a FastAPI dependency.

An input carrying a backdoor trigger keeps its (target) prediction when clean images
are superimposed on it (added pixel by pixel and clipped to the clean data's range,
as in the paper), so the entropy of the predictions over ``n_overlays``
superimpositions is low; a clean input's prediction scatters. Inputs whose mean
entropy falls below the threshold are rejected. The threshold comes from clean data
only, for a target false-rejection rate: the ``k``-th smallest entropy of ``n``
clean calibration inputs, ``k = floor(target_frr * (n + 1))`` (the conformal
quantile), so a new clean input is rejected with probability at most ``target_frr``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard.errors import MissingDependencyError, UsageError
from poisonguard.monitor.model import ImageClassifier

__all__ = ["ScreenResult", "StripScreener", "strip_dependency"]


@dataclass(frozen=True)
class ScreenResult:
    """Per-input STRIP entropy and whether the input is rejected.

    Examples
    --------
    >>> from poisonguard.monitor import train_classifier
    >>> from poisonguard.datasets import builtin_dataset
    >>> digits = builtin_dataset("digits")
    >>> model = train_classifier(digits.images[:200], digits.labels[:200], digits.classes,
    ...                          arch="mlp", epochs=3)
    >>> screener = StripScreener(n_overlays=8).fit(model, digits.images[200:300])
    >>> result = screener.screen(digits.images[300:310])
    >>> result.entropy.shape, result.rejected.dtype, sorted(result.to_dict())
    ((10,), dtype('bool'), ['entropy', 'n', 'rejected', 'rejected_rows', 'threshold'])
    """

    entropy: np.ndarray
    rejected: np.ndarray
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "rejected": int(self.rejected.sum()),
                "n": int(len(self.rejected)),
                "rejected_rows": [int(i) for i in np.flatnonzero(self.rejected)],
                "entropy": [round(float(e), 6) for e in self.entropy]}


class StripScreener:
    """STRIP with a threshold from a target false-rejection rate on clean data.

    Parameters
    ----------
    n_overlays : int
        Clean images blended with each input.
    target_frr : float
        The share of clean inputs that may be rejected.
    seed : int
        Seeds the choice of overlays.

    Examples
    --------
    >>> from poisonguard.attack import badnets
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.monitor import train_classifier
    >>> digits = builtin_dataset("digits")
    >>> attack = badnets(digits.subset(range(600)), rate=0.1, target=0)  # 2x2 patch -> class 0
    >>> model = train_classifier(attack.dataset.images, attack.dataset.labels, digits.classes,
    ...                          arch="mlp", epochs=10)
    >>> golden = digits.subset(range(1000, 1300))
    >>> from poisonguard.attack.trigger import stamp
    >>> screener = StripScreener(target_frr=0.05).fit(model, golden.images)
    >>> batch = digits.images[1300:1400]
    >>> int(screener.screen(stamp(batch, attack.truth.trigger)).rejected.sum())  # triggered
    100
    >>> bool(screener.screen(batch).rejected.mean() < 0.2)  # clean: about target_frr
    True
    """

    def __init__(self, *, n_overlays: int = 16, target_frr: float = 0.05,
                 seed: int = 0) -> None:
        self.n_overlays = n_overlays
        self.target_frr = target_frr
        self.seed = seed

    def _validate(self, n_clean: int) -> None:
        if self.n_overlays < 1:
            raise UsageError("STRIP needs n_overlays >= 1")
        if not 0 < self.target_frr < 1:
            raise UsageError(f"target_frr must be in (0, 1), got {self.target_frr}")
        if int(np.floor(self.target_frr * (n_clean + 1))) < 1:
            raise UsageError(f"{n_clean} clean inputs are too few for a false-rejection rate "
                             f"of {self.target_frr:g} (need at least "
                             f"{int(np.ceil(1 / self.target_frr))})")

    def fit(self, model: ImageClassifier, clean_images: np.ndarray) -> StripScreener:
        """Keep ``clean_images`` as the overlay pool and calibrate the threshold on them."""
        pool = np.asarray(clean_images, dtype=np.float32)
        self._validate(len(pool))
        self.model_ = model
        self.pool_ = pool
        self.range_ = (float(pool.min()), float(pool.max()))
        self.clean_entropy_ = self.entropy(pool)
        k = int(np.floor(self.target_frr * (len(pool) + 1)))
        self.threshold_ = float(np.sort(self.clean_entropy_)[k - 1])
        return self

    def entropy(self, images: np.ndarray) -> np.ndarray:
        """Mean prediction entropy (nats) of each input over its superimpositions."""
        model = getattr(self, "model_", None)
        if model is None:
            raise UsageError("call fit() before screening")
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[..., None]
        rng = np.random.default_rng(self.seed)
        picks = rng.integers(0, len(self.pool_), size=(len(x), self.n_overlays))
        mixed = np.clip(x[:, None] + self.pool_[picks], *self.range_)
        proba = model.predict_proba(mixed.reshape(-1, *x.shape[1:]))
        ent = -(proba * np.log(np.clip(proba, 1e-12, None))).sum(axis=1)
        return np.asarray(ent.reshape(len(x), self.n_overlays).mean(axis=1))

    def screen(self, images: np.ndarray) -> ScreenResult:
        """Entropies, and which inputs fall below the threshold (rejected)."""
        ent = self.entropy(images)
        return ScreenResult(entropy=ent, rejected=ent < self.threshold_,
                            threshold=self.threshold_)


def strip_dependency(screener: StripScreener, *, field: str = "inputs",
                     status_code: int = 422) -> Callable[..., Any]:
    """A FastAPI dependency: parse ``{field: [...]}`` from the JSON body, screen it, and
    answer ``status_code`` naming the rejected rows, or return the inputs as an array.

    Examples
    --------
    >>> from poisonguard.attack import badnets
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.monitor import train_classifier
    >>> digits = builtin_dataset("digits")
    >>> attack = badnets(digits.subset(range(600)), rate=0.1, target=0)  # 2x2 patch -> class 0
    >>> model = train_classifier(attack.dataset.images, attack.dataset.labels, digits.classes,
    ...                          arch="mlp", epochs=10)
    >>> golden = digits.subset(range(1000, 1300))
    >>> from fastapi import Depends, FastAPI
    >>> from fastapi.testclient import TestClient
    >>> from poisonguard.attack.trigger import stamp
    >>> app = FastAPI()
    >>> guard = strip_dependency(StripScreener().fit(model, golden.images))
    >>> @app.post("/predict")
    ... def predict(images: np.ndarray = Depends(guard)) -> dict:
    ...     return {"classes": [model.classes[i] for i in model.predict(images)]}
    >>> client = TestClient(app)
    >>> triggered = stamp(digits.images[1300:1303], attack.truth.trigger)
    >>> answer = client.post("/predict", json={"inputs": triggered.tolist()})
    >>> answer.status_code, answer.json()["detail"]["rejected_rows"]
    (422, [0, 1, 2])
    >>> client.post("/predict", json={"inputs": [[1.0]]}).status_code  # not an 8 x 8 image
    400
    """
    try:
        from fastapi import HTTPException, Request
    except ImportError as exc:
        raise MissingDependencyError("fastapi", "service", "the STRIP FastAPI dependency") \
            from exc
    shape = screener.model_.config.input_shape if hasattr(screener, "model_") else None
    if shape is None:
        raise UsageError("fit the screener before making a dependency of it")

    async def screen_inputs(request: Request) -> np.ndarray:
        try:
            body = await request.json()
            x = np.asarray(body[field], dtype=np.float32)
        except (ValueError, TypeError, KeyError):
            raise HTTPException(400, f"the JSON body needs '{field}': a list of images") \
                from None
        if x.ndim == len(shape) and shape[-1] == 1:  # N x H x W for one channel
            x = x[..., None]
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape) or len(x) == 0 \
                or not np.isfinite(x).all():
            raise HTTPException(400, f"'{field}' must hold finite images of shape {list(shape)}")
        result = screener.screen(x)
        if result.rejected.any():
            rows = [int(i) for i in np.flatnonzero(result.rejected)]
            raise HTTPException(status_code, {
                "rejected_rows": rows, "reason": "STRIP: prediction entropy under "
                f"superimposition below {result.threshold:.4f} (a trigger-like input)"})
        return x

    screen_inputs.__annotations__ = {"request": Request, "return": np.ndarray}
    return screen_inputs
