"""Votes, plurality, and certified radii of partition ensembles.

The radius of a prediction is the number of training rows an attacker may insert,
delete or relabel (in any mix) without changing it. Moving a row's feature values
is a deletion plus an insertion and counts twice: the moved row may land in another
partition.

- DPA (Levine & Feizi 2021): with ``n_c`` votes for the prediction ``c`` and
  ``n_c'`` for any other class, ``r = min_c' floor((n_c - n_c' - [c' < c]) / 2)``.
- Finite Aggregation (Wang, Levine & Feizi 2022): each poisoned row touches one
  bucket, and a bucket feeds ``spread`` base models. Against class ``c'``, a bucket
  can close the gap by ``sum over its models of (1 + [vote == c] - [vote == c'])``;
  the radius is the largest ``r`` whose ``r`` largest such amounts still sum to at
  most ``n_c - n_c' - [c' < c]`` (minimum over ``c'``). With ``spread = 1`` this is
  exactly the DPA radius.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "RADII",
    "certified_accuracy",
    "dpa_radius",
    "fa_radius",
    "plurality",
    "vote_counts",
]

#: The radii ``certify`` reports certified accuracy at.
RADII = (0, 1, 5, 10, 20)


def vote_counts(member_votes: np.ndarray, n_classes: int) -> np.ndarray:
    """(N x C) vote counts from (N x M) class-index votes of M base models.

    Examples
    --------
    >>> vote_counts(np.array([[0, 1, 1]]), 3).tolist()
    [[1, 2, 0]]
    """
    votes = np.asarray(member_votes, dtype=np.int64)
    counts = np.zeros((len(votes), n_classes), dtype=np.int64)
    rows = np.repeat(np.arange(len(votes)), votes.shape[1])
    np.add.at(counts, (rows, votes.ravel()), 1)
    return counts


def plurality(counts: np.ndarray) -> np.ndarray:
    """The class with most votes per row; ties go to the smaller class index.

    Examples
    --------
    >>> plurality(np.array([[1, 3, 3], [5, 0, 1]])).tolist()
    [1, 0]
    """
    return np.asarray(np.argmax(counts, axis=1), dtype=np.int64)


def _gaps(counts: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(N x C) ``n_c - n_c' - [c' < c]``; the predicted class's own column is huge."""
    n = len(counts)
    top = counts[np.arange(n), predicted][:, None]
    classes = np.arange(counts.shape[1])[None, :]
    gaps = top - counts - (classes < predicted[:, None]).astype(np.int64)
    gaps[np.arange(n), predicted] = np.iinfo(np.int64).max // 4
    return gaps


def dpa_radius(counts: np.ndarray, predicted: np.ndarray | None = None) -> np.ndarray:
    """DPA certified radius per row from (N x C) vote counts.

    Examples
    --------
    >>> dpa_radius(np.array([[7, 2, 1]])).tolist()   # gap 5, class 1 > 0: floor(5 / 2)
    [2]
    """
    counts = np.asarray(counts, dtype=np.int64)
    pred = plurality(counts) if predicted is None else np.asarray(predicted, dtype=np.int64)
    if counts.shape[1] == 1:
        return np.full(len(counts), counts.sum(axis=1), dtype=np.int64)
    return np.asarray(np.maximum(_gaps(counts, pred).min(axis=1) // 2, 0), dtype=np.int64)


def fa_radius(member_votes: np.ndarray, bucket_members: np.ndarray, n_classes: int,
              predicted: np.ndarray | None = None) -> np.ndarray:
    """Finite Aggregation certified radius per row.

    ``member_votes`` is (N x M) class indices of the M = k * d base models;
    ``bucket_members`` (B x d) lists the models each bucket feeds
    (:func:`~poisonguard.train.hashing.members_of_buckets`).

    Examples
    --------
    >>> from poisonguard.train.hashing import members_of_buckets
    >>> fa_radius(np.array([[0, 0, 0, 1]]), members_of_buckets(4, 1), 2).tolist()
    [1]
    """
    votes = np.asarray(member_votes, dtype=np.int64)
    counts = vote_counts(votes, n_classes)
    pred = plurality(counts) if predicted is None else np.asarray(predicted, dtype=np.int64)
    gaps = _gaps(counts, pred)
    per_bucket = votes[:, bucket_members]  # N x B x d
    is_pred = (per_bucket == pred[:, None, None]).sum(axis=2)
    d = bucket_members.shape[1]
    radius = np.full(len(votes), bucket_members.shape[0], dtype=np.int64)
    for c in range(n_classes):
        others = pred != c
        if not others.any():
            continue
        amount = d + is_pred[others] - (per_bucket[others] == c).sum(axis=2)  # n x B
        spent = np.cumsum(-np.sort(-amount, axis=1), axis=1)
        r = (spent <= gaps[others, c][:, None]).sum(axis=1)
        radius[others] = np.minimum(radius[others], r)
    return radius


def certified_accuracy(predicted: np.ndarray, radius: np.ndarray, labels: np.ndarray,
                       radii: Sequence[int] = RADII) -> dict[int, float]:
    """Fraction of rows predicted correctly with a radius of at least each ``r``.

    Examples
    --------
    >>> certified_accuracy(np.array([0, 1]), np.array([3, 9]), np.array([0, 1]), (1, 5))
    {1: 1.0, 5: 0.5}
    """
    correct = np.asarray(predicted) == np.asarray(labels)
    n = max(len(correct), 1)
    return {int(r): float((correct & (np.asarray(radius) >= r)).sum() / n) for r in radii}
