"""The CNN image representation: out-of-fold outputs, layers, determinism, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.errors import MissingDependencyError, UsageError
from poisonguard.represent.image import LAYERS, image_representation


def _small_digits(n: int = 300) -> Dataset:
    digits = builtin_dataset("digits")
    return digits.subset(np.arange(n))


class _Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, int, int]] = []

    def update(self, stage: str, *, done: int, total: int) -> None:
        self.stages.append((stage, done, total))


def _count_fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each CNN's training-row count, appended as it trains."""
    from poisonguard.represent import cnn

    fitted: list[int] = []
    real_fit = cnn.SmallCNN.fit

    def fit(self, batches, rows, labels):  # type: ignore[no-untyped-def]
        fitted.append(len(rows))
        return real_fit(self, batches, rows, labels)

    monkeypatch.setattr(cnn.SmallCNN, "fit", fit)
    return fitted


def test_clean_digits_representation_is_accurate_out_of_fold(clean) -> None:  # type: ignore[no-untyped-def]
    digits, rep = clean("digits")
    n = len(digits)
    assert rep.embedding.shape == (n, 64) and rep.embedding_oof is not None
    assert rep.embedding_oof.shape == (n, 64)
    assert rep.features.shape == (n, 64)
    np.testing.assert_allclose(rep.proba.sum(axis=1), 1.0, atol=1e-6)
    assert (rep.predicted == digits.labels).mean() > 0.95  # measured 0.99
    assert rep.model.startswith("cnn") and rep.layer == "penultimate"


def test_no_row_is_scored_by_a_model_that_saw_it() -> None:
    # Random labels can be memorised but not predicted: out-of-fold accuracy stays
    # near chance (0.1) while the model trained on all rows fits them.
    small = _small_digits(300)
    rng = np.random.default_rng(0)
    shuffled = small.replace(labels=rng.permutation(small.labels))
    rep = image_representation(shuffled, folds=3, seed=0, epochs=20)
    assert (rep.predicted == shuffled.labels).mean() < 0.3


@pytest.mark.parametrize("plan", ["small", "large"])
def test_each_rows_proba_comes_from_the_fold_model_that_never_trained_on_it(
        plan: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Records which rows every CNN trained on and which it scored; each row's
    # out-of-fold proba must be exactly the output of a model whose training rows
    # exclude it (a fold that trained on the row, or the all-rows model, fails this).
    from poisonguard.represent import cnn, image

    if plan == "large":
        monkeypatch.setattr(image, "SMALL_ROWS", 50)  # the large plan and its lean net
    trained: dict[int, np.ndarray] = {}
    models: list[object] = []  # kept alive: their ids stay distinct
    scored: list[tuple[int, np.ndarray, np.ndarray]] = []
    real_fit, real_forward = cnn.SmallCNN.fit, cnn.SmallCNN.forward

    def fit(self, batches, rows, labels):  # type: ignore[no-untyped-def]
        trained[id(self)] = np.array(rows)
        models.append(self)
        return real_fit(self, batches, rows, labels)

    def forward(self, batches, rows=None, **kw):  # type: ignore[no-untyped-def]
        proba, act = real_forward(self, batches, rows, **kw)
        if rows is not None:
            scored.append((id(self), np.array(rows), proba))
        return proba, act

    monkeypatch.setattr(cnn.SmallCNN, "fit", fit)
    monkeypatch.setattr(cnn.SmallCNN, "forward", forward)
    small = _small_digits(150)
    rep = image_representation(small, folds=3, seed=0, epochs=1)
    assert rep.meta["plan"] == plan and len(trained) == 4 and len(scored) == 3
    seen = np.zeros(len(small), dtype=int)
    for model, rows, proba in scored:
        assert not np.isin(rows, trained[model]).any()
        np.testing.assert_array_equal(rep.proba[rows], proba)
        seen[rows] += 1
    assert (seen == 1).all()


def test_same_seed_same_representation_and_progress_is_reported() -> None:
    small = _small_digits(200)
    rec = _Recorder()
    a = image_representation(small, folds=2, seed=3, epochs=2, progress=rec)
    b = image_representation(small, folds=2, seed=3, epochs=2)
    assert np.array_equal(a.embedding, b.embedding) and np.array_equal(a.proba, b.proba)
    assert a.meta["folds"] == 2 and a.meta["epochs"] == 2
    assert rec.stages[-1][1] == rec.stages[-1][2] == 3
    assert [s[1] for s in rec.stages] == [0, 1, 2, 3]


def test_conv_layer_and_colour_images_of_another_size() -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(40, 28, 28, 3)).astype(np.float32)
    labels = np.repeat([0, 1], 20)
    images[labels == 1, :10, :10, 0] = 255.0
    data = Dataset(labels=labels, classes=("a", "b"), images=images, source="synthetic")
    rep = image_representation(data, folds=2, seed=0, epochs=2, layer="conv")
    assert rep.layer == "conv" and rep.embedding.shape[0] == 40
    assert rep.embedding.shape[1] > 64 and rep.features.shape == (40, 28 * 28 * 3)
    assert "conv" in LAYERS and "penultimate" in LAYERS


def test_bad_inputs_are_usage_errors() -> None:
    small = _small_digits(60)
    with pytest.raises(UsageError, match="layer"):
        image_representation(small, layer="logits")
    with pytest.raises(UsageError, match="image"):
        image_representation(builtin_dataset("wine"))


def test_without_torch_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"poisonguard\[torch\]"):
        image_representation(_small_digits(60))


def test_large_plan_stops_early_on_held_out_loss_and_keeps_classes_apart() -> None:
    torch = pytest.importorskip("torch")
    from poisonguard.represent.cnn import SmallCNN
    from poisonguard.represent.pixels import PixelBatches, channel_stats

    digits = builtin_dataset("digits")
    assert digits.images is not None
    images = digits.images.astype(np.uint8)  # 0..16 whole numbers: same values
    mean, std = channel_stats(images)
    batches = PixelBatches(torch, images, mean, std, device=torch.device("cpu"))
    rows = np.arange(0, len(images), 2)
    model = SmallCNN(n_classes=10, large=True, max_epochs=4, seed=0).fit(
        batches, rows, digits.labels)
    assert 1 <= model.epochs_ <= 4
    proba, act = model.forward(batches, np.arange(1, len(images), 2))
    assert act.shape == (len(images) // 2, 64)
    assert (proba.argmax(axis=1) == digits.labels[1::2]).mean() > 0.8


def test_uint8_and_float_images_give_the_same_plan_and_shapes() -> None:
    small = _small_digits(120)
    assert small.images is not None
    as_bytes = Dataset(labels=small.labels, classes=small.classes,
                       images=small.images.astype(np.uint8))
    rep = image_representation(as_bytes, folds=2, seed=0, epochs=1)
    assert rep.meta["plan"] == "small" and rep.features.dtype == np.float32
    assert rep.proba.shape == (120, 10)


def test_a_deferred_embedding_is_trained_when_read_once_and_equals_the_eager_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fitted = _count_fits(monkeypatch)
    small = _small_digits(150)
    eager = image_representation(small, folds=2, seed=1, epochs=1)
    assert fitted.count(150) == 1 and eager.embed is None
    fitted.clear()
    rec = _Recorder()
    lazy = image_representation(small, folds=2, seed=1, epochs=1, defer_embedding=True,
                                progress=rec)
    assert 150 not in fitted and len(fitted) == 2  # the folds only
    assert lazy.embedding.shape == (150, 0)
    np.testing.assert_array_equal(lazy.proba, eager.proba)
    read = lazy.with_embedding()
    assert fitted.count(150) == 1 and ("training CNN on all rows", 2, 3) in rec.stages
    np.testing.assert_array_equal(read.embedding, eager.embedding)
    np.testing.assert_array_equal(lazy.with_embedding().embedding, eager.embedding)
    assert fitted.count(150) == 1  # read again: the model is kept, not trained twice


def test_an_image_scan_that_reads_no_embedding_trains_no_all_rows_cnn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from poisonguard.scan import scan_dataset

    fitted = _count_fits(monkeypatch)
    small = _small_digits(150)
    _, _, rep = scan_dataset(small, detectors="label,duplicate", seed=0)
    assert 150 not in fitted and len(fitted) == rep.meta["folds"]
    _, _, rep = scan_dataset(small, detectors="label,spectre", seed=0)  # spectre reads it
    assert fitted.count(150) == 1 and rep.embedding.shape[0] == 150
