"""Location-free trigger search: one small pattern that images of one class hold anywhere.

A patch trigger stamped at a different place on every image shares no (pixel, value)
item across images, so :func:`~poisonguard.detect.trigger_search.mine_triggers`
cannot see it. What the poisoned images do share is the *content* of a small window:
every ``s`` x ``s`` window of every image is hashed by its exact values, each image
counts once per distinct pattern, and a pattern held by between ``lo`` and ``hi``
images is a candidate (mined without the labels). Each (pattern, class) pair is then
a test: are the images of the class holding the pattern far more than the class's
base rate predicts (binomial tail)? The caller corrects for every pair examined.

A trigger's content can be a natural pattern too (a 2x2 block of full ink is a
thick stroke, held by half the "1"s of sklearn's digits): the class's holders are
then no more than its base rate predicts, and the poisoned images hide among the
natural ones. What sets them apart is that the rest of each poisoned image is
another class's. Given each image's class as a model of the rest calls it
(``predicted``), a second test per pair asks: are the class's holders that the
model contradicts far more than the pattern's natural rate predicts? Each
contradicted image of class ``c`` called ``j`` holds a pattern at the rate of the
uncontradicted images of ``c`` or of ``j``, whichever is higher (one pseudo-image
each, so that no rate is zero), and the count of holders among them is held
against the Poisson tail of that sum (a Poisson binomial's tail is no heavier).
Natural confusion, random and targeted flips are contradicted at their source
class's rate of the pattern; a stamped trigger is held by every image it was
stamped on. Plain functions, usable alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import binom, poisson

__all__ = ["WindowCandidate", "contradicted_tails", "mine_windows", "window_cells",
           "window_hashes"]


@dataclass(frozen=True, eq=False)
class WindowCandidate:
    """A window pattern and the rows of class ``label`` that hold it somewhere.

    ``holders`` are all rows holding it (any class). ``concentration_p`` is the
    binomial tail of seeing ``len(rows)`` of them in ``label`` at the class's base
    rate; ``contradicted_p`` the Poisson tail of its ``contradicted`` rows (those a
    model of the rest calls another class) against ``expected`` from the pattern's
    natural rates (1.0, 0 and 0.0 where no model's calls were given); ``label_p`` the
    smaller of the two. All uncorrected: each is one test of the family.
    """

    size: int
    pattern: np.ndarray  # size x size x C values
    rows: np.ndarray
    holders: np.ndarray
    label: int
    concentration_p: float
    contradicted_p: float = 1.0
    contradicted: int = 0
    expected: float = 0.0
    concentrated: bool = True

    @property
    def label_p(self) -> float:
        return min(self.concentration_p, self.contradicted_p)

    @property
    def order(self) -> tuple[bool, float]:
        """Sort key, most significant first: the candidates whose concentration
        passed the miner's cut (``concentrated``) by that tail, then those only the
        second test admitted by theirs. The concentration test's order is the one a
        scan without the second test has: among views of one trigger, the one most
        concentrated in its class (a patch on a blank background) comes first."""
        return (not self.concentrated,
                self.concentration_p if self.concentrated else self.contradicted_p)

    @property
    def n_rows(self) -> int:
        return len(self.rows)


#: Images hashed at a time: pixels are read in their stored dtype a block at a time.
CHUNK = 500


def _bits(images: np.ndarray) -> np.ndarray:
    """The float32 bit patterns of a block of images (uint8 read as its float32 value)."""
    x = np.ascontiguousarray(np.asarray(images, dtype=np.float32) + np.float32(0.0))
    return x.view(np.uint32)


def window_hashes(images: np.ndarray, size: int, *, chunk: int | None = None) -> np.ndarray:
    """N x P 64-bit hashes of every ``size`` x ``size`` window (all channels) of each image.

    The hash of a window depends only on its values (as float32), not on the stored
    dtype; ``chunk`` images (default :data:`CHUNK`) are converted at a time."""
    chunk = chunk or CHUNK
    n, h, w, c = images.shape
    weights = np.random.default_rng(0xC0FFEE).integers(
        1, 2**63, size=(c, size, size), dtype=np.uint64) | np.uint64(1)
    n_win = (h - size + 1) * (w - size + 1)
    out = np.empty((n, n_win), dtype=np.uint64)
    if images.dtype == np.uint8:
        _uint8_hashes(images, size, weights, out, chunk)
        return out
    with np.errstate(over="ignore"):
        for start in range(0, n, chunk):
            bits = _bits(images[start:start + chunk])
            win = sliding_window_view(bits, (size, size), axis=(1, 2))
            v = win.astype(np.uint64)  # chunk x h' x w' x C x s x s
            mixed = (v * weights) ^ (v >> np.uint64(7))
            out[start:start + chunk] = (mixed * weights).sum(axis=(3, 4, 5)).reshape(len(v), -1)
    return out


def _uint8_hashes(images: np.ndarray, size: int, weights: np.ndarray, out: np.ndarray,
                  chunk: int) -> None:
    """:func:`window_hashes` of uint8 images by table lookup: each (cell, value) term of
    the sum is looked up (256 values), and the terms are added modulo 2**64 in any
    order, so the hashes are the very ones of the float32 path."""
    n, h, w, c = images.shape
    hh, ww = h - size + 1, w - size + 1
    v = _bits(np.arange(256, dtype=np.uint8)).astype(np.uint64)
    with np.errstate(over="ignore"):
        table = ((v * weights[..., None]) ^ (v >> np.uint64(7))) * weights[..., None]
        for start in range(0, n, chunk):
            block = images[start:start + chunk]
            acc = np.zeros((len(block), hh, ww), dtype=np.uint64)
            for ch in range(c):
                for dr in range(size):
                    for dc in range(size):
                        acc += table[ch, dr, dc][block[:, dr:dr + hh, dc:dc + ww, ch]]
            out[start:start + chunk] = acc.reshape(len(block), -1)


def _distinct_pairs(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image, hash) once per distinct pattern of each image."""
    s = np.sort(hashes, axis=1)
    first = np.ones(s.shape, dtype=bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    img = np.broadcast_to(np.arange(len(s))[:, None], s.shape)[first]
    return img, s[first]


def _sample_pairs(images: np.ndarray, sample: np.ndarray | None,
                  size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_distinct_pairs` of the windows of ``images[sample]`` (all images when
    ``sample`` is None), hashed :data:`CHUNK` images at a time: the N x P hashes never
    exist at once, only the distinct (image, hash) pairs, written straight into one
    buffer (image numbers as int32: 12 bytes a pair; pages never written, where images
    repeat windows, are never touched)."""
    n = len(images) if sample is None else len(sample)
    per_image = (images.shape[1] - size + 1) * (images.shape[2] - size + 1)
    imgs = np.empty(n * per_image, dtype=np.int32)
    keys = np.empty(n * per_image, dtype=np.uint64)
    filled = 0
    for start in range(0, n, CHUNK):
        block = (images[start:start + CHUNK] if sample is None
                 else images[sample[start:start + CHUNK]])
        img, key = _distinct_pairs(window_hashes(block, size))
        imgs[filled:filled + len(img)] = img + start
        keys[filled:filled + len(key)] = key
        filled += len(key)
    return imgs[:filled], keys[:filled]


def _frequent_patterns(hashes: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The distinct values of ``hashes`` held between ``lo`` and ``hi`` times, ascending:
    ``np.unique`` with its counts, without its N-sized index arrays (one sorted copy
    and a boolean mask; a run of ``lo`` equal values starts wherever the value ``lo - 1``
    places on is the same)."""
    ordered = np.sort(hashes)
    lo = max(int(lo), 1)
    if len(ordered) < lo:
        return np.zeros(0, dtype=hashes.dtype)
    long_run = ordered[lo - 1:] == ordered[:len(ordered) - lo + 1]
    long_run[1:] &= ~long_run[:-1].copy()  # the first such place of each run
    frequent = np.unique(ordered[np.flatnonzero(long_run)])
    del long_run
    counts = (np.searchsorted(ordered, frequent, side="right")
              - np.searchsorted(ordered, frequent, side="left"))
    return frequent[counts <= hi]


def _pairs_of(hashes: np.ndarray, patterns: np.ndarray,
              block: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """(pair number, pattern number) of every pair whose hash is one of ``patterns``
    (ascending, distinct), pairs in their order; ``block`` hashes looked up at a time."""
    where: list[np.ndarray] = []
    code: list[np.ndarray] = []
    if not len(patterns):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for start in range(0, len(hashes), block):
        part = hashes[start:start + block]
        pos = np.minimum(np.searchsorted(patterns, part), len(patterns) - 1)
        hit = np.flatnonzero(patterns[pos] == part)
        where.append(hit + start)
        code.append(pos[hit])
    return np.concatenate(where), np.concatenate(code)


def mine_windows(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    sizes: tuple[int, ...] = (2, 3),
    min_rows: int = 5,
    min_fraction: float = 0.001,
    max_fraction: float = 0.2,
    max_p: float = 1e-6,
    max_rows: int = 50_000,
    predicted: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[list[WindowCandidate], int]:
    """Window patterns concentrated in one class, or in its contradicted images, and
    how many tests were made (the size of the multiple-testing family).

    Patterns held by between ``max(min_rows, min_fraction * n)`` and
    ``max_fraction * n`` images are examined for every class: one test per (pattern,
    class) pair, and a second (module docstring) where ``predicted`` gives each
    image's class as a model of the rest calls it. Pairs whose smaller uncorrected
    tail is at most ``max_p`` (with ``min_rows`` rows or more counted by that test)
    are returned, most significant first. A pair whose rows (nine in ten or more) repeat
    a more significant pair's rows of the same class adds nothing and is dropped; one
    that overlaps less (the whole patch, where the first pair is its edge on a blank
    background) is kept for the caller to merge. Patterns are mined on a seeded
    sample of ``max_rows`` images; the candidates' rows are then matched on every image.
    """
    y = np.asarray(labels)
    n = len(y)
    if images.ndim != 4 or n == 0:
        return [], 0
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=max_rows, replace=False)) if n > max_rows else np.arange(n)
    lo = max(int(min_rows), int(np.ceil(min_fraction * len(sample))))
    hi = int(max_fraction * len(sample))
    base = np.bincount(y, minlength=n_classes) / n
    called = None if predicted is None else np.asarray(predicted)
    # which sampled images the model contradicts: the same for every window size
    sample_wrong = None if called is None else called[sample] != y[sample]
    tests_per_pair = 1 if called is None else 2
    found: list[WindowCandidate] = []
    n_tests = 0
    for size in sizes:
        if size > min(images.shape[1], images.shape[2]) or hi < lo:
            continue
        img, hs = _sample_pairs(images, None if len(sample) == n else sample, size)
        kept = _frequent_patterns(hs, lo, hi)  # ascending, as np.unique gives them
        n_tests += len(kept) * n_classes * tests_per_pair
        if not len(kept):
            continue
        at, pat = _pairs_of(hs, kept)  # only the pairs of kept patterns, in pair order
        del hs
        img = img[at]
        per_class = np.bincount(pat * n_classes + y[sample][img],
                                minlength=len(kept) * n_classes).reshape(len(kept), n_classes)
        total = per_class.sum(axis=1, keepdims=True)
        p = np.where(per_class >= min_rows, binom.sf(per_class - 1, total, base[None, :]), 1.0)
        concentration = p <= max_p
        if called is not None and sample_wrong is not None:
            held_wrong = np.bincount(pat * n_classes + y[sample][img], weights=sample_wrong[img],
                                     minlength=len(kept) * n_classes).reshape(per_class.shape)
            contra_p, _ = contradicted_tails(per_class - held_wrong, held_wrong, y[sample],
                                             called[sample], n_classes, min_rows=min_rows)
            p = np.minimum(p, contra_p)
        w_side = images.shape[2] - size + 1
        # The sampled images holding each kept pattern, grouped once (in row order):
        # the same rows as testing every sampled image's windows for the pattern.
        pairs = np.argsort(pat, kind="stable")
        bounds = np.searchsorted(pat[pairs], np.arange(len(kept) + 1))
        for k, c in np.argwhere(p <= max_p):
            key = kept[k]
            in_sample = img[pairs[bounds[k]:bounds[k + 1]]]
            first = int(sample[in_sample[0]])
            first_hashes = window_hashes(images[first:first + 1], size)[0]
            r0, c0 = divmod(int(np.flatnonzero(first_hashes == key)[0]), w_side)
            holders = sample[in_sample] if len(sample) == n else _holders(images, size, key)
            rows = holders[y[holders] == c]
            if len(rows) < min_rows:
                continue
            tail, expected, n_wrong = np.ones((1, n_classes)), np.zeros((1, n_classes)), 0
            if called is not None:  # the second test, on every holder
                wrong = called[holders] != y[holders]
                tail, expected = contradicted_tails(
                    np.bincount(y[holders][~wrong], minlength=n_classes)[None, :],
                    np.bincount(y[holders][wrong], minlength=n_classes)[None, :],
                    y, called, n_classes, min_rows=min_rows)
                n_wrong = int(np.sum(wrong & (y[holders] == c)))
            found.append(WindowCandidate(
                size=size, pattern=np.asarray(images[first, r0:r0 + size, c0:c0 + size]),
                rows=rows, holders=holders, label=int(c),
                concentration_p=float(binom.sf(len(rows) - 1, len(holders), base[c])),
                contradicted_p=float(tail[0, c]), contradicted=n_wrong,
                expected=float(expected[0, c]), concentrated=bool(concentration[k, c])))
    found.sort(key=lambda t: (*t.order, -t.n_rows))
    return _distinct(found), n_tests


def contradicted_tails(agreed: np.ndarray, contradicted: np.ndarray, labels: np.ndarray,
                       predicted: np.ndarray, n_classes: int, *,
                       min_rows: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per (pattern, class): the Poisson tail of its contradicted holders, and the
    count its natural rates predict (module docstring).

    ``agreed`` / ``contradicted`` (patterns x classes) count each pattern's holders of
    each class whose label the model's call (``predicted``) agrees with / contradicts;
    ``labels`` and ``predicted`` are those of every image the counts were taken on.
    A pattern's rate in class ``c`` is its share of the uncontradicted images of ``c``
    (one pseudo-image held and one more counted, so no rate is zero); a contradicted
    image labelled ``c`` and called ``j`` holds it at the higher of the rates of ``c``
    and ``j``. Pairs with fewer than ``min_rows`` contradicted holders get 1.0.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.repeat([0, 1], 50)
    >>> predicted = labels.copy()
    >>> predicted[:10] = 1  # ten images of class 0 look like class 1
    >>> agreed = np.array([[0, 5]])  # five class-1 images hold the pattern
    >>> tail, expected = contradicted_tails(agreed, np.array([[8, 0]]), labels, predicted, 2)
    >>> round(float(expected[0, 0]), 2), float(f"{tail[0, 0]:.1e}")  # 8 where 1.2 expected
    (1.18, 3.2e-05)
    """
    y = np.asarray(labels)
    called = np.asarray(predicted)
    wrong = called != y
    mix = np.zeros((n_classes, n_classes))
    np.add.at(mix, (y[wrong], called[wrong]), 1.0)
    uncontradicted = np.bincount(y[~wrong], minlength=n_classes)
    rate = (np.asarray(agreed, dtype=np.float64) + 1.0) / (uncontradicted + 1.0)
    expected = np.empty_like(rate)
    step = max(1, (1 << 21) // (n_classes * n_classes))  # patterns x classes^2: 16 MiB
    for start in range(0, len(rate), step):
        part = rate[start:start + step]
        expected[start:start + step] = np.einsum(
            "cj,kcj->kc", mix, np.maximum(part[:, :, None], part[:, None, :]))
    held = np.asarray(contradicted)
    tail = np.where(held >= min_rows, poisson.sf(held - 1, expected), 1.0)
    return tail, expected


def _holders(images: np.ndarray, size: int, key: np.uint64) -> np.ndarray:
    """Every image (of all of them, not the sample) holding the pattern hashed ``key``."""
    out = [start + np.flatnonzero((window_hashes(images[start:start + CHUNK], size) == key)
                                  .any(axis=1))
           for start in range(0, len(images), CHUNK)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def window_cells(images: np.ndarray, rows: np.ndarray, size: int,
                 pattern: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Where each of ``rows`` holds ``pattern``: ``(columns, cells)``.

    ``columns`` are the flattened pixel columns (``(row * W + column) * C + channel``, the
    order of the flattened images) covered by any place any of the rows holds the
    pattern, ascending; ``cells`` marks, per row (one line per ``rows`` entry), which of
    those columns its own places cover. A pattern held twice by an image marks both
    places.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.zeros((2, 3, 3, 1), dtype=np.uint8)
    >>> images[0, 0:2, 0:2] = 9
    >>> images[1, 1:3, 1:3] = 9
    >>> columns, cells = window_cells(images, np.array([0, 1]), 2, images[0, 0:2, 0:2])
    >>> columns
    (0, 1, 3, 4, 5, 7, 8)
    >>> cells.astype(int).tolist()
    [[1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1]]
    """
    _, h, w, c = images.shape
    key = window_hashes(np.asarray(pattern)[None], size)[0, 0]
    # the flattened columns of a window at the top-left corner; a place adds its offset
    corner = ((np.arange(size)[:, None, None] * w + np.arange(size)[None, :, None]) * c
              + np.arange(c)[None, None, :]).ravel()
    which: list[np.ndarray] = []
    cover: list[np.ndarray] = []
    for start in range(0, len(rows), CHUNK):
        block = np.asarray(rows[start:start + CHUNK])
        at, place = np.nonzero(window_hashes(images[block], size) == key)
        r0, c0 = np.divmod(place, w - size + 1)
        which.append(np.repeat(at + start, len(corner)))
        cover.append(((r0 * w + c0) * c)[:, None] + corner[None, :])
    hit_rows = np.concatenate(which) if which else np.zeros(0, dtype=np.intp)
    hit_cols = np.concatenate([x.ravel() for x in cover]) if cover else np.zeros(0, np.intp)
    columns, code = np.unique(hit_cols, return_inverse=True)
    cells = np.zeros((len(rows), len(columns)), dtype=bool)
    cells[hit_rows, code] = True
    return tuple(int(j) for j in columns), cells


def _distinct(found: list[WindowCandidate]) -> list[WindowCandidate]:
    """Drop candidates that repeat the rows of a more significant one of their class."""
    kept: list[WindowCandidate] = []
    for cand in found:
        if any(k.label == cand.label
               and len(np.intersect1d(k.rows, cand.rows)) >= 0.9 * cand.n_rows for k in kept):
            continue
        kept.append(cand)
    return kept
