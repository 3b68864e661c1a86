"""DP-SGD through Opacus: per-row gradient clipping and Gaussian noise, with the
noise chosen for a target (epsilon, delta) by ``make_private_with_epsilon``.

BatchNorm mixes the rows of a batch, which differential privacy cannot account
for: with ``replace_batchnorm=True`` (default) the scan's CNN is built with GroupNorm
instead; with False, a network Opacus cannot train is refused with its reason.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from poisonguard.errors import MissingDependencyError, UsageError
from poisonguard.train.nets import forward, torch_module
from poisonguard.train.torch_estimator import TorchClassifier

__all__ = ["DPSGDClassifier"]


class DPSGDClassifier(TorchClassifier):
    """A :class:`~poisonguard.train.TorchClassifier` trained with DP-SGD (needs opacus).

    Parameters (beyond :class:`~poisonguard.train.TorchClassifier`'s)
    -------------------------------------------------------------------
    epsilon : float
        Target privacy budget; ``epsilon_`` is what the RDP accountant spent.
    delta : float or None
        Target delta; None uses 1 / (10 N) for N training rows (``delta_``).
    max_grad_norm : float
        Per-row gradient clipping norm.
    replace_batchnorm : bool
        Build the CNN with GroupNorm (True) or refuse BatchNorm (False).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> x, y = load_breast_cancer(return_X_y=True)
    >>> m = DPSGDClassifier(epsilon=3.0, epochs=2).fit(x, y)
    >>> bool(m.epsilon_ <= 3.0)
    True
    """

    def __init__(self, *, image_shape: tuple[int, int, int] | None = None, width: int = 16,
                 hidden: int = 64, epochs: int | None = None, target_steps: int = 300,
                 batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 0.0,
                 seed: int = 0, device: str | None = None, epsilon: float = 3.0,
                 delta: float | None = None, max_grad_norm: float = 1.0,
                 replace_batchnorm: bool = True) -> None:
        super().__init__(image_shape=image_shape, width=width, hidden=hidden, epochs=epochs,
                         target_steps=target_steps, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, seed=seed, device=device)
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.replace_batchnorm = replace_batchnorm

    def fit(self, X: np.ndarray, y: np.ndarray) -> DPSGDClassifier:
        """Train with DP-SGD; sets ``epsilon_``, ``delta_`` and ``noise_multiplier_``."""
        try:
            from opacus import PrivacyEngine
            from opacus.validators import ModuleValidator
        except ImportError as exc:
            raise MissingDependencyError("opacus", "train", "DP-SGD training") from exc
        if not float(self.epsilon) > 0:
            raise UsageError("epsilon must be positive")
        xt, yt = self._start(X, y, groupnorm=bool(self.replace_batchnorm))
        problems = ModuleValidator.validate(self.net_, strict=False)
        if problems:
            first = str(problems[0]).split(".")[0]
            raise UsageError(f"DP-SGD cannot train this network: {first} (BatchNorm mixes "
                             "the rows of a batch; replace_batchnorm=True trains with "
                             "GroupNorm instead)")
        with warnings.catch_warnings():
            # Opacus' advice for production runs and torch's hook notice: not the user's concern
            for text in ("Secure RNG turned off", "Optimal order is the largest alpha",
                         "Full backward hook is firing"):
                warnings.filterwarnings("ignore", message=text)
            self._private_fit(PrivacyEngine, xt, yt)
        return self

    def _private_fit(self, engine_class: Any, xt: Any, yt: Any) -> None:
        torch = torch_module()
        n = len(xt)
        delta = float(self.delta) if self.delta is not None else 1.0 / (10 * n)
        if not 0 < delta < 1:
            raise UsageError("delta must be between 0 and 1")
        self.epochs_ = self._n_epochs(n)
        gen = torch.Generator().manual_seed(self.seed)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt, yt),
                                             batch_size=self.batch_size, shuffle=True,
                                             generator=gen)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        engine = engine_class(accountant="rdp")
        module, optimizer, loader = engine.make_private_with_epsilon(
            module=self.net_, optimizer=optimizer, data_loader=loader,
            target_epsilon=float(self.epsilon), target_delta=delta, epochs=self.epochs_,
            max_grad_norm=float(self.max_grad_norm))
        module.train()
        for _ in range(self.epochs_):
            for xb, yb in loader:
                if len(xb) == 0:
                    continue
                loss = torch.nn.functional.cross_entropy(forward(module._module, xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        self.net_ = module._module.eval()
        self.delta_ = delta
        self.epsilon_ = float(engine.get_epsilon(delta))
        self.noise_multiplier_ = float(optimizer.noise_multiplier)
