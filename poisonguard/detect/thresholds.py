"""Data-driven thresholds shared by the detectors.

Convention: every detector maps its raw statistic to a score in [0, 1] such that its
own flagging threshold sits at 0.5. Fusion and ``--fail-on`` rely on that.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLAG_SCORE", "robust_z", "scores_from_z", "tail_threshold"]

FLAG_SCORE = 0.5
_MAD_TO_SD = 1.4826


def robust_z(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(x - median) / (1.4826 * MAD) with the median and MAD of ``reference``.

    A zero MAD (more than half the values equal) falls back to the mean absolute
    deviation, then to 1, so that constant data gives finite z-scores.
    """
    x = np.asarray(values, dtype=np.float64)
    ref = x if reference is None else np.asarray(reference, dtype=np.float64)
    if ref.size == 0:
        return np.zeros_like(x)
    med = float(np.median(ref))
    mad = float(np.median(np.abs(ref - med))) * _MAD_TO_SD
    if mad <= 1e-12:
        mad = float(np.mean(np.abs(ref - med))) * 1.2533
    if mad <= 1e-12:
        mad = 1.0
    return (x - med) / mad


def scores_from_z(z: np.ndarray, z_flag: float, *, width: float = 1.0) -> np.ndarray:
    """Logistic map of z-scores to [0, 1] with ``z_flag`` landing on 0.5."""
    z = np.asarray(z, dtype=np.float64)
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip((z - z_flag) / width, -50, 50))))


def tail_threshold(null_scores: np.ndarray, fpr: float, *, overwrite: bool = False) -> float:
    """The (1 - fpr) quantile of scores drawn under a null (clean) model.

    ``overwrite=True`` lets a float64 ``null_scores`` be partitioned in place (no
    copy; the same quantile): the caller no longer needs its order.
    """
    if not 0 < fpr < 1:
        raise ValueError("fpr must be in (0, 1)")
    scores = np.asarray(null_scores, dtype=np.float64)
    return float(np.quantile(scores, 1 - fpr, overwrite_input=overwrite))
