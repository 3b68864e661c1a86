"""What malicious clients do: poison their local data, or craft their updates.

- ``label-flip``: train on labels ``K - 1 - y``.
- ``backdoor``: stamp the trigger on a fraction of local rows, relabel them to the target.
- ``scaling``: the backdoor, then the update boosted by ``scale`` (model replacement,
  Bagdasaryan et al., 2020; default scale n / f so that the attackers' share of a
  plain mean replaces the global model).
- ``sign-flip``: send ``-scale`` times the honest update (default scale n / f).
- ``noise``: send Gaussian noise, per-coordinate std ``scale`` times the RMS of the
  honest update (default scale 10 n / f).
- ``lie``: "a little is enough" (Baruch et al., 2019): every attacker sends
  ``mean - z * std`` of the attackers' own honest updates, ``z`` from n and f, small
  enough to hide among honest updates. With one attacker the std is zero.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from poisonguard.attack.trigger import stamp
from poisonguard.errors import UsageError

__all__ = ["FL_ATTACKS", "craft_updates", "default_scale", "lie_z", "poison_local_data"]

FL_ATTACKS = ("none", "label-flip", "backdoor", "scaling", "sign-flip", "noise", "lie")
BACKDOOR_ATTACKS = ("backdoor", "scaling")


def check_attack(kind: str) -> None:
    """Raise :class:`UsageError` for an unknown attack name."""
    if kind not in FL_ATTACKS:
        raise UsageError(f"unknown attack '{kind}' (known: {', '.join(FL_ATTACKS)})")


def default_scale(kind: str, n_clients: int, n_malicious: int) -> float:
    """The boost an attack uses when none is given (see the module docstring)."""
    ratio = n_clients / max(n_malicious, 1)
    return {"scaling": ratio, "sign-flip": ratio, "noise": 10.0 * ratio}.get(kind, 1.0)


def lie_z(n_clients: int, n_malicious: int) -> float:
    """Baruch et al.'s z: enough honest clients must sit farther from the mean than
    the attackers: ``s = floor(n/2 + 1) - f``, ``z = Phi^-1((n - s) / n)``."""
    s = int(np.floor(n_clients / 2 + 1)) - n_malicious
    return float(norm.ppf((n_clients - s) / n_clients)) if s < n_clients else 0.0


def poison_local_data(kind: str, x: np.ndarray, y: np.ndarray, *, n_classes: int,
                      trigger: dict[str, object], target: int, fraction: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A malicious client's training data (the input arrays are not modified)."""
    if kind == "label-flip":
        return x, (n_classes - 1 - y).astype(y.dtype)
    if kind in BACKDOOR_ATTACKS:
        k = max(1, int(round(fraction * len(y))))
        rows = rng.choice(len(y), size=k, replace=False)
        x2, y2 = x.copy(), y.copy()
        x2[rows] = stamp(x[rows], trigger)
        y2[rows] = target
        return x2, y2
    return x, y


def craft_updates(kind: str, own: np.ndarray, *, n_clients: int, scale: float,
                  rng: np.random.Generator) -> np.ndarray:
    """The flat updates the attackers send, from the ``f x d`` updates they trained."""
    if kind == "scaling":
        return own * scale
    if kind == "sign-flip":
        return -scale * own
    if kind == "noise":
        rms = np.sqrt(np.mean(own * own, axis=1, keepdims=True))
        return rng.normal(0.0, 1.0, size=own.shape) * (scale * rms)
    if kind == "lie":
        z = lie_z(n_clients, len(own))
        crafted = own.mean(axis=0) - z * own.std(axis=0)
        return np.repeat(crafted[None, :], len(own), axis=0)
    return own
