"""Sketches merge exactly; fingerprints and encodings are stable."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.validate.sketches import (
    Fingerprints,
    Moments,
    decode_array,
    encode_array,
    row_fingerprints,
    string_hash,
)


def test_moments_merge_matches_one_pass() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, size=(500, 4))
    x[rng.random(x.shape) < 0.1] = np.nan
    whole = Moments.of(x)
    merged = Moments.of(x[:123]).merge(Moments.of(x[123:400])).merge(Moments.of(x[400:]))
    for f in ("count", "missing", "mean", "m2", "min", "max"):
        np.testing.assert_allclose(getattr(merged, f), getattr(whole, f), rtol=1e-12)
    np.testing.assert_allclose(whole.std, np.nanstd(x, axis=0, ddof=1), rtol=1e-12)
    assert not whole.integer.any()
    assert Moments.of(np.round(x)).integer.all()


def test_fingerprints_ignore_column_order_and_float_width() -> None:
    a = np.array([1.5, -0.0, 3.25])
    b = np.array([2.0, 7.0, np.nan])
    cats = np.array(["x", None, "y"], dtype=object)
    fp1 = row_fingerprints({"a": a, "b": b}, {"c": cats}, {}, 3)
    fp2 = row_fingerprints({"b": b.astype(np.float32), "a": a + 0.0}, {"c": cats}, {}, 3)
    np.testing.assert_array_equal(fp1, fp2)
    assert len(set(fp1.tolist())) == 3
    other = row_fingerprints({"a": a, "b": b}, {"c": np.array(["x", "z", "y"], dtype=object)},
                             {}, 3)
    assert (fp1 != other).tolist() == [False, True, False]
    assert string_hash(np.array(["x"], dtype=object))[0] == string_hash(
        np.array(["q", "x"], dtype=object))[1]


def test_fingerprint_cap_is_coordinated_and_merges_exactly() -> None:
    rng = np.random.default_rng(1)
    h = rng.integers(0, 2**63, size=1000, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    lab = rng.integers(0, 3, size=1000)
    empty = Fingerprints(np.empty(0, np.uint64), np.empty(0, np.int64), cap=100)
    whole = empty.add(h, lab)
    parts = empty.add(h[:600], lab[:600])
    merged = Fingerprints(parts.hashes, parts.labels, parts.threshold, 100).add(h[600:], lab[600:])
    assert len(whole.hashes) == 100
    np.testing.assert_array_equal(merged.hashes, whole.hashes)
    assert merged.threshold == whole.threshold
    assert (whole.hashes < np.uint64(whole.threshold)).all()
    same, other = whole.lookup(whole.hashes, whole.labels)
    assert same.all() and not other.any()
    same, other = whole.lookup(whole.hashes, whole.labels + 1)
    assert other.all()


def test_encode_roundtrip_and_rejects_objects() -> None:
    for a in (np.arange(7, dtype=np.uint64) * np.uint64(2**61),
              np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32),
              np.empty((0, 5), np.float32)):
        b = decode_array(encode_array(a))
        assert b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(a, b)
    bad = encode_array(np.arange(3))
    bad["dtype"] = "O"
    with pytest.raises((ValueError, TypeError)):
        decode_array(bad)
