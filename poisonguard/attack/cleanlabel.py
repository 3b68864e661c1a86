"""Clean-label attacks: poisoned rows keep correct-looking labels.

- :func:`clean_label`: a trigger on target-class rows, labels unchanged; with
  ``perturb`` the rows are first pushed away from their class against a reference
  model so that the trigger is the easiest thing to learn (label-consistent attack,
  Turner et al. 2019).
- :func:`feature_collision`: target-class rows moved in input space until a simple
  model sees them where a victim row of another class lies (poison frogs, Shafahi
  et al. 2018); the victim is held out of the returned data and recorded in the
  truth, and a model trained on the poison tends to give it the target class.
"""

from __future__ import annotations

import numpy as np

from poisonguard.attack.flip import reference_model
from poisonguard.attack.trigger import blend_spec, patch_spec, stamp, tabular_spec
from poisonguard.attack.truth import (
    AttackResult,
    check_target,
    make_truth,
    n_modified,
    pick,
    rebuild,
    values_of,
)
from poisonguard.data import Dataset
from poisonguard.errors import UsageError

__all__ = ["clean_label", "feature_collision"]

TRIGGERS = ("badnets", "blend", "tabular")


def clean_label(dataset: Dataset, *, rate: float, target: int, seed: int = 0,
                trigger: str | None = None, perturb: bool = True, eps: float = 0.1,
                size: int = 2, position: str = "bottom-right", alpha: float = 0.2,
                n_features: int = 3) -> AttackResult:
    """Stamp a trigger on ``rate`` of the rows, all from class ``target``; labels
    stay as they are. ``trigger`` is badnets or blend for images (default badnets)
    and tabular for tables. ``perturb`` first moves each row by ``eps`` x the data
    range against a logistic-regression reference model (one signed-gradient step).

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> wine = builtin_dataset("wine")
    >>> result = clean_label(wine, rate=0.1, target=0, seed=0)
    >>> len(result.truth.poisoned), bool((result.dataset.labels == wine.labels).all())
    (18, True)
    """
    t = check_target(dataset, target)
    x = values_of(dataset)
    trig = trigger or ("badnets" if dataset.modality == "image" else "tabular")
    if trig not in TRIGGERS:
        raise UsageError(f"unknown trigger '{trig}' (known: {', '.join(TRIGGERS)})")
    if (trig == "tabular") != (dataset.modality == "tabular"):
        raise UsageError(f"trigger '{trig}' does not apply to {dataset.modality} data")
    rng = np.random.default_rng(seed)
    rows = pick(rng, np.flatnonzero(dataset.labels == t), n_modified(rate, len(dataset)),
                "target-class rows")
    if trig == "badnets":
        spec = patch_spec(x, size=size, position=position, value=None)
    elif trig == "blend":
        spec = blend_spec(x, alpha=alpha, seed=seed)
    else:
        spec = tabular_spec(dataset, x, n_features=n_features, values=None, rng=rng)
    if perturb:
        x[rows] = _push_away(dataset, x, rows, eps=eps, seed=seed)
    x[rows] = stamp(x[rows], spec)
    poisoned = rebuild(dataset, labels=dataset.labels, values=x, changed=rows)
    truth = make_truth(
        dataset, poisoned, kind="clean-label", seed=seed,
        params={"rate": rate, "trigger_kind": trig, "perturb": perturb, "eps": eps,
                "trigger": spec},
        poisoned=rows, target=t,
        description=f"clean-label backdoor: {len(rows)} class-{dataset.classes[t]} rows with "
                    f"a {trig} trigger"
                    + (f", pushed {eps:g} of the range off their class" if perturb else "")
                    + ", labels unchanged",
    )
    return AttackResult(poisoned, truth)


def _push_away(dataset: Dataset, x: np.ndarray, rows: np.ndarray, *, eps: float,
               seed: int) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    scaler, model = reference_model(flat, dataset.labels, seed=seed)
    coef = _coef_by_class(model, dataset.n_classes)
    sd = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    z = scaler.transform(flat[rows]) @ coef.T
    y = dataset.labels[rows]
    z[np.arange(len(rows)), y] = -np.inf
    runner = z.argmax(axis=1)
    grad = (coef[y] - coef[runner]) / sd  # d(margin)/dx in input units
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    step = eps * float(hi.max() - lo.min()) * np.sign(grad)
    moved = np.clip(flat[rows] - step, lo, hi)
    return moved.reshape((len(rows), *x.shape[1:])).astype(np.float32)


def _coef_by_class(model: object, n_classes: int) -> np.ndarray:
    coef = np.asarray(model.coef_)  # type: ignore[attr-defined]
    classes = np.asarray(model.classes_)  # type: ignore[attr-defined]
    if coef.shape[0] == 1:  # binary: one row for the positive class
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
    out = np.zeros((n_classes, coef.shape[1]))
    out[classes] = coef
    return out


def feature_collision(dataset: Dataset, *, rate: float, target: int, seed: int = 0,
                      victim: int | None = None, beta: float = 0.1,
                      opacity: float = 0.5) -> AttackResult:
    """Poison-frog feature collision against a logistic regression on scaled features.

    A victim row (``victim``, else a random row of another class) is removed from the
    data. ``rate`` of the rows, all of class ``target``, are replaced by
    ``argmin_p |W(p - v)|^2 + beta |p - b|^2`` (closed form; ``b`` is the base row
    watermarked with the victim at ``opacity``), clipped to the data range; labels
    stay ``target``. ``params["victim"]`` holds the victim's values for the success
    check: does a model trained on the poisoned data call it ``target``?

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = feature_collision(builtin_dataset("wine"), rate=0.05, target=0, seed=0)
    >>> print(result.truth.description)  # doctest: +NORMALIZE_WHITESPACE
    feature collision: 9 class-0 rows moved onto victim row 160 (class 2, held out) in a
    linear model's view
    """
    t = check_target(dataset, target)
    if dataset.modality == "text":
        raise UsageError("feature-collision does not apply to text data")
    rng = np.random.default_rng(seed)
    y = dataset.labels
    if victim is None:
        victim = int(rng.choice(np.flatnonzero(y != t)))
    elif not 0 <= victim < len(y) or y[victim] == t:
        raise UsageError(f"victim must be a row index of a class other than {t}")
    keep = np.flatnonzero(np.arange(len(y)) != victim)
    rest = dataset.subset(keep)
    x = values_of(rest)
    flat = x.reshape(len(x), -1)
    v_flat = values_of(dataset).reshape(len(y), -1)[victim]
    rows = pick(rng, np.flatnonzero(rest.labels == t), n_modified(rate, len(rest)),
                "target-class rows")
    scaler, model = reference_model(flat, rest.labels, seed=seed)
    w = _coef_by_class(model, dataset.n_classes)
    sd = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    base = (1 - opacity) * flat[rows] + opacity * v_flat
    s_b = (base - scaler.mean_) / sd
    s_v = (v_flat - scaler.mean_) / sd
    # ridge in closed form via the push-through identity: delta = W^T (W W^T + bI)^-1 W d
    inner = np.linalg.solve(w @ w.T + beta * np.eye(len(w)), w @ (s_v - s_b).T)
    s_p = s_b + (w.T @ inner).T
    poison = np.clip(s_p * sd + scaler.mean_, flat.min(axis=0), flat.max(axis=0))
    x[rows] = poison.reshape((len(rows), *x.shape[1:]))
    poisoned = rebuild(rest, labels=rest.labels, values=x, changed=rows)
    truth = make_truth(
        dataset, poisoned, kind="feature-collision", seed=seed,
        params={"rate": rate, "beta": beta, "opacity": opacity, "victim_index": victim,
                "victim_label": int(y[victim]), "victim": v_flat.tolist(),
                "victim_shape": list(x.shape[1:])},
        poisoned=rows, target=t,
        description=f"feature collision: {len(rows)} class-{dataset.classes[t]} rows moved "
                    f"onto victim row {victim} (class {dataset.classes[int(y[victim])]}, "
                    "held out) in a linear model's view",
    )
    return AttackResult(poisoned, truth)
