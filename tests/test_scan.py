"""The scan's plumbing: its seed reaches every detector, and only what the chosen
detectors read is built."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from poisonguard.detect import available_detectors, get_detector, resolve_detectors
from poisonguard.memo import current_memo
from poisonguard.scan import scan_dataset

#: The module (``poisonguard.scan`` as an attribute is the function).
scan_module = importlib.import_module("poisonguard.scan")


#: Detectors without a ``seed``: each has no randomness at all (and says so here).
#: (``influence`` was listed, but its PCA and its held-out folds are seeded: it takes one.)
DETERMINISTIC: dict[str, str] = {}


def test_every_registered_detector_takes_a_seed() -> None:
    """Otherwise the scan's seed could not reach it (add one, or list it above)."""
    missing = {name for name, cls in available_detectors().items()
               if "seed" not in cls.constraints()}
    assert missing <= set(DETERMINISTIC)


@pytest.mark.parametrize("spec", [None, "all", "label,trigger"])
def test_resolved_detectors_get_the_seed(spec: str | None) -> None:
    chosen = resolve_detectors(spec, "tabular", seed=5)
    assert chosen and all(d.get_params()["seed"] == 5 for d in chosen
                          if d.name not in DETERMINISTIC)
    mine = get_detector("outlier", seed=9)
    assert resolve_detectors([mine, "knn"], "tabular", seed=5)[0].get_params()["seed"] == 9


def test_the_scan_seed_reaches_the_detectors_and_the_representation(
        monkeypatch: pytest.MonkeyPatch, clean) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, Any] = {}
    real_resolve, real_build = scan_module.resolve_detectors, scan_module.build_representation

    def resolve(*args: Any, **kwargs: Any) -> Any:
        chosen = real_resolve(*args, **kwargs)
        seen["detectors"] = [d.get_params()["seed"] for d in chosen]
        return chosen

    def build(*args: Any, **kwargs: Any) -> Any:
        seen["representation"] = kwargs["seed"]
        return real_build(*args, **kwargs)

    monkeypatch.setattr(scan_module, "resolve_detectors", resolve)
    monkeypatch.setattr(scan_module, "build_representation", build)
    wine, _ = clean("wine")
    scan_dataset(wine, detectors="outlier,trigger,duplicate", seed=3)
    assert seen == {"detectors": [3, 3, 3], "representation": 3}


def test_a_trigger_only_scan_trains_no_model(poisoned) -> None:  # type: ignore[no-untyped-def]
    attack, full = poisoned("digits", "badnets", rate=0.05, target=0, seed=0)
    findings, results, rep = scan_dataset(attack.dataset, detectors="trigger")
    assert rep.model == "none (features only)" and rep.embedding.shape[1] == 0
    assert findings.summary["representation"]["model"] == "none (features only)"
    # the same decision as on the full representation: trigger reads the features only
    on_full = get_detector("trigger").score(attack.dataset, full)
    assert np.array_equal(results[0].flags, on_full.flags) and results[0].flags.any()
    assert np.allclose(rep.features, full.features)


def test_a_scan_with_a_model_reader_still_builds_the_model(clean) -> None:  # type: ignore[no-untyped-def]
    wine, _ = clean("wine")
    _, _, rep = scan_dataset(wine, detectors="outlier,label")
    assert rep.proba.shape == (len(wine), wine.n_classes) and rep.embedding_oof is None


def test_a_scan_without_a_label_detector_says_label_flips_were_not_tested(  # type: ignore[no-untyped-def]
        clean) -> None:
    wine, _ = clean("wine")
    flipped = wine.labels.copy()
    flipped[:20] = (flipped[:20] + 1) % wine.n_classes  # flips nothing here can see
    findings, _, _ = scan_dataset(wine.replace(labels=flipped), detectors="outlier")
    assert findings.summary["untested"] == ["label flips"]
    with_label, _, _ = scan_dataset(wine, detectors="outlier,label")
    assert with_label.summary["untested"] == []


def test_the_embedding_exists_only_for_the_detectors_that_read_it(
        monkeypatch: pytest.MonkeyPatch, clean) -> None:  # type: ignore[no-untyped-def]
    wine, eager = clean("wine")
    seen: dict[str, tuple[int, int]] = {}  # embedding width, memoised searches + embedding
    for name in ("label", "spectre", "knn"):
        cls = type(get_detector(name))
        real = cls.score

        def score(self: Any, dataset: Any, representation: Any, _real: Any = real) -> Any:
            memo = current_memo()  # None outside a scan
            held = 0 if memo is None else memo.held("neighbours") + memo.held("embedding")
            seen[self.name] = (representation.embedding.shape[1], held)
            return _real(self, dataset, representation)

        monkeypatch.setattr(cls, "score", score)
    findings, results, rep = scan_dataset(wine, detectors="label,spectre")
    # deferred while label ran; the neighbour lists freed once label, their last reader,
    # ran; the embedding in the memo from spectre on
    assert seen == {"label": (0, 0), "spectre": (64, 1)}
    np.testing.assert_array_equal(rep.embedding, eager.embedding)  # returned filled in
    on_eager = get_detector("spectre").score(wine, eager)  # outside a scan: no memo
    np.testing.assert_array_equal(results[1].scores, on_eager.scores)
    seen.clear()
    scan_dataset(wine, detectors="label,spectre,knn")
    assert seen == {"label": (0, 0), "spectre": (64, 2), "knn": (0, 2)}  # kept for knn


def test_the_embedding_is_computed_once_per_scan(
        monkeypatch: pytest.MonkeyPatch, clean) -> None:  # type: ignore[no-untyped-def]
    import poisonguard.represent.tabular as tabular

    wine, eager = clean("wine")
    made: list[np.ndarray] = []
    hidden = tabular._hidden

    def counting(model: Any, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        out = hidden(model, x, rows)
        if rows is None:  # the all-rows model's embedding (not a fold's held-out rows)
            made.append(out)
        return out

    monkeypatch.setattr(tabular, "_hidden", counting)
    seen: list[np.ndarray] = []
    for name in ("spectre", "activation"):
        cls = type(get_detector(name))
        real = cls.score

        def score(self: Any, dataset: Any, representation: Any, _real: Any = real) -> Any:
            seen.append(representation.embedding)
            return _real(self, dataset, representation)

        monkeypatch.setattr(cls, "score", score)
    _, _, rep = scan_dataset(wine, detectors="spectre,label,activation")
    # two readers and the returned representation: one forward pass, one array
    assert len(made) == 1 and seen[0] is seen[1] is rep.embedding is made[0]
    np.testing.assert_array_equal(rep.embedding, eager.embedding)
    made.clear()
    _, _, rep = scan_dataset(wine, detectors="label")  # no reader: not computed
    assert made == [] and rep.embedding.shape == (len(wine), 0)
    asked = rep.with_embedding()  # the caller asks: computed then, the scan's embedding
    assert len(made) == 1 and asked.embedding is made[0]
    np.testing.assert_array_equal(asked.embedding, eager.embedding)


@pytest.mark.parametrize(("cheap", "model"), [("outlier", False), ("outlier,trigger", False),
                                              ("duplicate", True)])
def test_a_scan_of_cheap_detectors_builds_no_embedding(  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch, clean, cheap: str, model: bool) -> None:
    import poisonguard.represent.tabular as tabular

    wine, _ = clean("wine")
    embedded: list[np.ndarray | None] = []
    hidden = tabular._hidden

    def counting(model: Any, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        embedded.append(rows)
        return hidden(model, x, rows)

    monkeypatch.setattr(tabular, "_hidden", counting)
    findings, _, rep = scan_dataset(wine, detectors=cheap)
    assert embedded == [] and rep.embedding.shape == (len(wine), 0)
    # outlier and trigger read the features only: no model; duplicate reads its proba
    assert (rep.model != "none (features only)") is model
    assert len(findings.rows) == len(wine)


def test_a_scan_that_reads_no_embedding_trains_no_all_rows_model(  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch, clean) -> None:
    """``label`` reads the out-of-fold probabilities only: the folds' models are trained,
    the all-rows model (whose only product is the embedding) when the caller asks."""
    import poisonguard.represent.tabular as tabular

    wine, eager = clean("wine")
    fitted: list[int] = []
    fit = tabular._fit_mlp

    def counting(x: np.ndarray, y: np.ndarray, rows: np.ndarray, **kwargs: Any) -> Any:
        fitted.append(len(rows))
        return fit(x, y, rows, **kwargs)

    monkeypatch.setattr(tabular, "_fit_mlp", counting)
    _, _, rep = scan_dataset(wine, detectors="label")
    assert len(fitted) == rep.meta["folds"] and len(wine) not in fitted  # folds only
    asked = rep.with_embedding()
    assert fitted[-1] == len(wine) and len(fitted) == rep.meta["folds"] + 1
    np.testing.assert_array_equal(asked.embedding, eager.embedding)
    # asked again (a report, a projection): the model is kept, one forward pass gives
    # the same values, no second training
    np.testing.assert_array_equal(rep.with_embedding().embedding, eager.embedding)
    assert fitted.count(len(wine)) == 1
    fitted.clear()
    scan_dataset(wine, detectors="label,spectre")  # a reader: trained once, in the scan
    assert fitted.count(len(wine)) == 1
