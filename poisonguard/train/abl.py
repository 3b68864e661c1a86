"""Anti-Backdoor Learning (ABL, Li et al. 2021) for the torch networks.

1. Isolation: train with the local gradient ascent loss ``sign(L - gamma) * L`` for
   ``isolation_epochs``: clean rows hover around loss ``gamma`` while rows the
   network learns abnormally fast (a backdoor's trigger is an easy shortcut) sink
   below it.
2. The ``isolation_fraction`` rows of lowest loss are isolated (``isolated_``).
3. Training continues on the other rows for the usual number of epochs.
4. Unlearning: ``unlearning_epochs`` passes of gradient ascent (Adam) on the
   isolated rows alone, each batch's loss capped at ``unlearning_cap`` nats so that
   the ascent stops once they are unlearned. (Descending on the other rows at the
   same time re-teaches the backdoor from the poisoned rows that were not isolated.)

Isolation ranks rows by their loss averaged over the last three isolation epochs:
one epoch's ranking is too noisy on small data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from poisonguard.train.nets import forward, torch_module
from poisonguard.train.torch_estimator import TorchClassifier

__all__ = ["ABLClassifier"]


class ABLClassifier(TorchClassifier):
    """A :class:`~poisonguard.train.TorchClassifier` trained with anti-backdoor learning.

    Parameters (beyond :class:`~poisonguard.train.TorchClassifier`'s)
    -------------------------------------------------------------------
    isolation_fraction : float
        Share of rows isolated as suspected poison (0 to 0.5).
    isolation_epochs : int
        Epochs of local-gradient-ascent training before isolating.
    gamma : float
        The LGA loss floor.
    unlearning_epochs : int
        Passes of gradient ascent over the isolated rows.
    unlearning_lr, unlearning_cap : float
        Learning rate of the unlearning passes; the isolated rows' batch loss above
        which ascent stops pushing.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> d = load_digits()
    >>> m = ABLClassifier(image_shape=(8, 8, 1), epochs=2, isolation_epochs=1,
    ...                   unlearning_epochs=1).fit(d.data[:300], d.target[:300])
    >>> len(m.isolated_)
    15
    """

    def __init__(self, *, image_shape: tuple[int, int, int] | None = None, width: int = 16,
                 hidden: int = 64, epochs: int | None = None, target_steps: int = 300,
                 batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-4,
                 seed: int = 0, device: str | None = None, isolation_fraction: float = 0.05,
                 isolation_epochs: int = 12, gamma: float = 0.1, unlearning_epochs: int = 10,
                 unlearning_lr: float = 5e-4, unlearning_cap: float = 5.0) -> None:
        super().__init__(image_shape=image_shape, width=width, hidden=hidden, epochs=epochs,
                         target_steps=target_steps, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, seed=seed, device=device)
        self.isolation_fraction = isolation_fraction
        self.isolation_epochs = isolation_epochs
        self.gamma = gamma
        self.unlearning_epochs = unlearning_epochs
        self.unlearning_lr = unlearning_lr
        self.unlearning_cap = unlearning_cap

    def fit(self, X: np.ndarray, y: np.ndarray) -> ABLClassifier:
        """Isolate, train on the rest, unlearn the isolated rows; returns ``self``."""
        if not 0.0 < float(self.isolation_fraction) < 0.5:
            raise ValueError("isolation_fraction must be in (0, 0.5)")
        torch = torch_module()
        xt, yt = self._start(X, y)
        gamma = float(self.gamma)

        def lga(logits: Any, target: Any) -> Any:
            loss = torch.nn.functional.cross_entropy(logits, target)
            return torch.sign(loss - gamma) * loss

        self.isolation_losses_ = self._isolate(xt, yt, lga)
        n_iso = max(1, int(math.ceil(float(self.isolation_fraction) * len(xt))))
        self.isolated_ = np.sort(np.argsort(self.isolation_losses_, kind="stable")[:n_iso])
        rest = np.setdiff1d(np.arange(len(xt)), self.isolated_)
        rest_t = torch.as_tensor(rest, device=xt.device)
        self.epochs_ = self._n_epochs(len(rest))
        self._train(xt[rest_t], yt[rest_t], epochs=self.epochs_, seed_offset=1)
        self._unlearn(xt, yt)
        return self

    def _isolate(self, xt: Any, yt: Any, objective: Any) -> np.ndarray:
        """LGA training at a constant rate; each row's loss averaged over the last
        three epochs (one epoch's losses are too noisy to rank on)."""
        torch = torch_module()
        opt = torch.optim.Adam(self.net_.parameters(), lr=float(self.lr) / 3)
        gen = torch.Generator().manual_seed(self.seed)
        history: list[np.ndarray] = []
        for _ in range(int(self.isolation_epochs)):
            self.net_.train()
            order = torch.randperm(len(xt), generator=gen).to(xt.device)
            for start in range(0, len(xt), self.batch_size):
                idx = order[start:start + self.batch_size]
                if len(idx) < 2:
                    continue
                loss = objective(forward(self.net_, xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            history.append(self._row_losses(xt, yt))
        return np.asarray(np.mean(history[-3:], axis=0))

    def _row_losses(self, xt: Any, yt: Any) -> np.ndarray:
        torch = torch_module()
        self.net_.eval()
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(forward(self.net_, xt), yt, reduction="none")
        return np.asarray(loss.cpu().numpy(), dtype=np.float64)

    def _unlearn(self, xt: Any, yt: Any) -> None:
        torch = torch_module()
        ce = torch.nn.functional.cross_entropy
        opt = torch.optim.Adam(self.net_.parameters(), lr=float(self.unlearning_lr))
        gen = torch.Generator().manual_seed(self.seed + 2)
        iso = torch.as_tensor(self.isolated_, device=xt.device)
        cap = float(self.unlearning_cap)
        self.net_.train()
        for _ in range(int(self.unlearning_epochs)):
            order = iso[torch.randperm(len(iso), generator=gen).to(xt.device)]
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                if len(idx) < 2:
                    idx = torch.cat([idx, idx])
                ascent = torch.clamp(ce(forward(self.net_, xt[idx]), yt[idx]), max=cap)
                loss = -ascent
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net_.eval()
