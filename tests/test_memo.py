"""The per-scan memo: shared within one scan, empty outside, nothing kept after it."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import numpy as np

from poisonguard import memo as memo_module
from poisonguard.attack import badnets
from poisonguard.datasets import builtin_dataset
from poisonguard.detect import trigger_search
from poisonguard.memo import ScanMemo, content_key, current_memo, remember, scan_memo
from poisonguard.represent import Representation, scale_features
from poisonguard.scan import scan_dataset


def test_remember_computes_once_per_scan_and_every_time_outside() -> None:
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert [remember("n", "k", compute) for _ in range(2)] == [1, 2]
    with scan_memo() as memo:
        assert [remember("n", "k", compute) for _ in range(2)] == [3, 3]
        assert remember("n", "other", compute) == 4  # one result per name by default
        assert remember("n", "k", compute) == 5
        assert remember("none", "k", lambda: None) is None and len(memo) == 2
    assert len(memo) == 0 and current_memo() is None


def test_each_thread_has_its_own_memo_and_a_caller_can_own_one_over_scans() -> None:
    seen: list[Any] = []
    with scan_memo() as outer:
        remember("x", 1, lambda: "outer")
        with scan_memo() as inner:  # a scan inside: joins the caller's memo
            assert remember("x", 1, lambda: "inner") == "outer" and inner is outer
        assert current_memo() is outer and len(outer) == 1  # emptied by its owner only
        thread = threading.Thread(target=lambda: seen.append(current_memo()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_keep_evicts_the_least_recently_used() -> None:
    memo = ScanMemo()
    for key in "abc":
        memo.put("n", key, key.upper(), keep=2)
    assert memo.get("a", "a") is None and memo.get("n", "a") is None
    assert memo.get("n", "b") == "B" and len(memo) == 2


def test_content_key_sees_values_dtypes_and_shapes() -> None:
    a = np.arange(6, dtype=np.uint8)
    assert content_key((a,)) == content_key((a.copy(),))
    assert content_key((a,)) != content_key((a.astype(np.int16),))
    assert content_key((a,)) != content_key((a.reshape(2, 3),))
    assert content_key((a[::2],)) == content_key((np.ascontiguousarray(a[::2]),))


def _tracked(value: Any) -> list[Any]:
    """What of a memo entry can be watched by weak reference (arrays, candidates)."""
    parts = value if isinstance(value, (tuple, list)) else (value,)
    out: list[Any] = []
    for part in parts:
        if isinstance(part, (tuple, list)):
            out += _tracked(part)
        elif part is not None and not isinstance(part, (int, float, str)):
            out.append(part)
    return out


def test_a_scan_shares_its_work_and_keeps_nothing_after_it(monkeypatch: Any) -> None:
    ds = badnets(builtin_dataset("digits"), rate=0.05, target=0, seed=0).dataset
    f = scale_features(ds.matrix())
    proba = np.full((len(ds), ds.n_classes), 1.0 / ds.n_classes)
    rep = Representation(features=f, embedding=f, proba=proba, embedding_oof=f,
                         model="input-features")
    stored: dict[str, list[weakref.ref[Any]]] = {}
    put = memo_module.ScanMemo.put

    def watching_put(self: ScanMemo, name: str, key: Any, value: Any, *, keep: int = 1) -> None:
        refs = stored.setdefault(name, [])
        refs += [weakref.ref(part) for part in _tracked(value) if part is not f]
        put(self, name, key, value, keep=keep)

    mined: list[int] = []
    mine = trigger_search._mine

    def counting_mine(*args: Any) -> Any:
        mined.append(1)
        return mine(*args)

    monkeypatch.setattr(memo_module.ScanMemo, "put", watching_put)
    monkeypatch.setattr(trigger_search, "_mine", counting_mine)
    findings, results, _ = scan_dataset(ds, representation=rep,
                                        detectors="label,knn,duplicate,trigger,cleanlabel")
    assert findings.summary["flagged"] > 0
    assert len(mined) == 1  # cleanlabel reused trigger's mining
    assert {"neighbours", "mine_triggers"} <= set(stored)  # (64 pixels: no basis needed)
    assert current_memo() is None
    del findings, results
    gc.collect()
    alive = {name: sum(ref() is not None for ref in refs) for name, refs in stored.items()}
    assert alive == dict.fromkeys(stored, 0)
