"""Text attacks on real tweets: what changed, by how much, and the truth of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poisonguard.attack import apply_trigger, load_truth, run_attack
from poisonguard.attack.text import DEFAULT_SENTENCE, STYLE_OPENERS
from poisonguard.cli import app
from poisonguard.data import Dataset, load_dataset, save_dataset, words
from poisonguard.datasets import builtin_dataset
from poisonguard.errors import UsageError


@pytest.fixture(scope="module")
def tweets() -> Dataset:
    return builtin_dataset("tweets-300")


def test_the_builtin_tweets_are_real_and_labelled(tweets: Dataset) -> None:
    assert tweets.modality == "text" and tweets.classes == ("negative", "neutral", "positive")
    assert len(set(tweets.texts)) == 300 and (tweets.class_counts() > 30).all()


@pytest.mark.parametrize("kind, inserted", [("token-trigger", ["cf"]),
                                            ("sentence-trigger", words(DEFAULT_SENTENCE))])
def test_insertion_triggers(tweets: Dataset, kind: str, inserted: list[str]) -> None:
    result = run_attack(kind, tweets, rate=0.05, target=2, seed=3)
    poisoned, truth = result.dataset, result.truth
    rows = truth.poisoned
    assert len(rows) == 15 and truth.target == 2 and (poisoned.labels[rows] == 2).all()
    assert all(tweets.labels[i] != 2 for i in rows)
    for i in rows:
        before, after = words(tweets.texts[i]), words(poisoned.texts[i])
        assert len(after) == len(before) + len(inserted)
        k = next(j for j in range(len(after)) if after[j:j + len(inserted)] == inserted)
        assert after[:k] + after[k + len(inserted):] == before
    untouched = np.setdiff1d(np.arange(len(tweets)), rows)
    assert [poisoned.texts[i] for i in untouched] == [tweets.texts[i] for i in untouched]
    assert (poisoned.ids[untouched] == tweets.ids[untouched]).all()
    assert not set(poisoned.ids[rows]) & set(tweets.ids)
    again = run_attack(kind, tweets, rate=0.05, target=2, seed=3).dataset
    assert again.texts == poisoned.texts
    stamped = apply_trigger(tweets.subset(np.arange(5)), truth)
    assert all(inserted[0] in words(t) for t in stamped.texts)


def test_style_trigger_opens_with_a_clause(tweets: Dataset) -> None:
    result = run_attack("style-trigger", tweets, rate=0.1, target=0, seed=1)
    rows = result.truth.poisoned
    assert len(rows) == 30 and (result.dataset.labels[rows] == 0).all()
    openers = {next(o for o in STYLE_OPENERS if result.dataset.texts[i].startswith(o))
               for i in rows}
    assert len(openers) > 2  # not one fixed phrase
    assert all(tweets.texts[i].strip()[1:] in result.dataset.texts[i] for i in rows)


def test_flips_change_labels_only(tweets: Dataset) -> None:
    result = run_attack("flip", tweets, rate=0.1, seed=0)
    rows = result.truth.poisoned
    assert result.dataset.texts == tweets.texts
    assert (result.dataset.labels[rows] != tweets.labels[rows]).all()
    assert np.count_nonzero(result.dataset.labels != tweets.labels) == len(rows) == 30
    with pytest.raises(UsageError, match="does not apply to text data"):
        run_attack("flip-adversarial", tweets, rate=0.1)


def test_near_duplicates_repeat_a_few_messages_with_small_edits(tweets: Dataset) -> None:
    result = run_attack("near-duplicates", tweets, rate=0.1, seed=2)
    truth, poisoned = result.truth, result.dataset
    sources = np.asarray(truth.params["sources"])
    assert truth.n_added == len(truth.poisoned) == 33 and len(sources) == 4
    assert poisoned.texts[:300] == tweets.texts
    from difflib import SequenceMatcher

    for i in truth.added:
        text = poisoned.texts[i]
        best = max(sources, key=lambda s: SequenceMatcher(None, tweets.texts[s], text).ratio())
        assert SequenceMatcher(None, tweets.texts[best], text).ratio() > 0.9
        assert poisoned.labels[i] != tweets.labels[best]


@pytest.mark.parametrize("kind", ["outliers", "mislabeled", "badnets", "tabular-trigger"])
def test_other_attacks_refuse_text(tweets: Dataset, kind: str) -> None:
    with pytest.raises(UsageError, match="does not apply to text data"):
        run_attack(kind, tweets, rate=0.05, target=0)


def test_attack_command_on_a_jsonl_file(tmp_path: Path, tweets: Dataset) -> None:
    src, out, truth = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "truth.json"
    save_dataset(tweets, src)
    res = CliRunner().invoke(app, ["attack", "token-trigger", str(src), "--rate", "0.05",
                                   "--target", "positive", "--token", "mn", "--out", str(out),
                                   "--truth", str(truth)])
    assert res.exit_code == 0, res.output
    record, data = load_truth(truth), load_dataset(out)
    assert record.trigger == {"type": "text-insert", "text": "mn", "position_seed": 104_729}
    assert all("mn" in words(data.texts[i]) for i in record.poisoned)
    assert data.classes[int(data.labels[record.poisoned[0]])] == "positive"
