"""FLTrust (Cao et al., NDSS 2021): trust each update by its direction against the
server's own update on a small trusted root dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.errors import UsageError
from poisonguard.federated.base import Aggregator, register, row_norms

__all__ = ["FLTrust"]


@register
class FLTrust(Aggregator):
    """Weight each update by ReLU(cosine to the trusted update), rescaled to its norm.

    Trust ``TS_i = max(0, cos(g_i, g_0))``; each update is rescaled to the trusted
    update's norm and the aggregate is ``sum TS_i g_i' / sum TS_i``. An update
    pointing away from the trusted one (cosine <= 0) gets weight exactly zero. When
    every trust is zero the round's aggregate is the zero update (nothing is learned
    from the clients that round). Scores: ``1`` for a dropped update, otherwise
    ``(1 - cos) / 2`` (below 0.5).

    Examples
    --------
    >>> import numpy as np
    >>> trusted = [np.array([1.0, 0.0])]
    >>> ups = [[np.array([2.0, 0.0])], [np.array([-5.0, 0.0])]]
    >>> FLTrust().aggregate(ups, trusted=trusted).update[0].tolist()
    [1.0, 0.0]
    """

    name = "fltrust"
    needs_trusted = True

    def _combine(self, matrix: np.ndarray, weights: np.ndarray, trusted: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if trusted is None:  # guarded by Aggregator.aggregate; kept for the type checker
            raise UsageError("fltrust needs the server's trusted update")
        ref_norm = float(np.linalg.norm(trusted))
        norms = row_norms(matrix)
        if ref_norm == 0.0:
            raise UsageError("the trusted update is all zeros: FLTrust has no direction")
        cos = (matrix @ trusted) / (np.maximum(norms, 1e-300) * ref_norm)
        cos = np.where(norms > 0, cos, 0.0)
        trust = np.maximum(cos, 0.0)
        selected = trust > 0
        if trust.sum() > 0:
            scale = trust * ref_norm / np.maximum(norms, 1e-300)
            out = (scale @ matrix) / trust.sum()
        else:
            out = np.zeros(matrix.shape[1])
        scores = np.where(selected, (1.0 - cos) / 2.0, 1.0)
        return out, scores, selected, {"trust": [round(float(t), 6) for t in trust]}
