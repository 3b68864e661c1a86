"""Detector ``token``: inserted-text backdoors (a rare token, a fixed sentence) in text data.

A dirty-label text backdoor inserts one trigger (``cf``, "I watched this 3D movie.")
into messages of other classes and relabels them to a target class. The detector

1. counts every word n-gram (1..``n_max`` words, :func:`poisonguard.data.words`) in at
   least ``min_rows`` messages, per class;
2. keeps the (n-gram, class) pairs that are pure (at least ``min_purity`` of the
   messages with the n-gram carry that label) and over-represented in the class
   beyond chance: an exact one-sided hypergeometric test on the count table,
   Bonferroni over the pairs that could reach significance at all (Tarone's count:
   an n-gram in 3 messages cannot be significant among thousands of tests, so it is
   not counted), family-wise level ``alpha``. No minimum support is needed beyond
   that: a trigger in 8 of 800 messages is a candidate;
3. groups n-grams that mark the same messages (Jaccard of their message sets at
   least one half: the words of one inserted sentence) and names the group by the
   longest word sequence most of its messages share;
4. applies the decisive test, the text analogue of masking an image patch: a
   class-balanced logistic regression, cross-fitted over ``folds`` so no message is
   read by a model that saw it, reads each message with the group's words cut out
   (``reader="sentence"``: its all-MiniLM-L6-v2 embedding, the text re-embedded
   without them; ``"words"``: TF-IDF of the n-grams, theirs zeroed). A trigger
   leaves messages whose remaining words belong to other classes: at least
   ``min_moved`` of them must read as another class, and their probability of the
   class must rank below the class's other messages (one-sided Mann-Whitney test,
   Bonferroni over the groups). A natural word of the class (a handle, a topic,
   "amazing" in praise) leaves words that still read as the class.

Messages of a confirmed trigger are flagged (the class their remaining words read
as is the suggested label when it differs); a class without a confirmed trigger is
reported clean. On clean data the corrections leave no pair significant, so no
hypothesis is made.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.stats import hypergeom, mannwhitneyu
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from poisonguard.data import Dataset, ngrams, without_phrases, words
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.overlap import tarone_family
from poisonguard.params import Interval, OneOf
from poisonguard.represent.base import Representation
from poisonguard.represent.text import embed_texts

__all__ = ["TextTrigger", "TokenTriggerDetector", "tarone_tests", "trigger_phrase"]

#: Tarone's count of tests, under the name this module has always exported: the one
#: implementation is :func:`~poisonguard.detect.overlap.tarone_family`.
tarone_tests = tarone_family

#: Score of a message with an over-represented, pure n-gram whose removal test failed.
_UNCONFIRMED = 0.3
#: n-grams marking the same messages (Jaccard at least this) are one trigger.
_SAME_ROWS = 0.5
#: A word extends the trigger's name when this share of its messages have it there.
_NAME_SHARE = 0.8


@dataclass(frozen=True)
class TextTrigger:
    """A tested trigger: its class, name, n-grams, messages and test results."""

    label: int
    phrase: str
    grams: tuple[str, ...]
    rows: np.ndarray
    with_gram: int
    p_value: float
    moved: int
    moved_p_value: float
    confirmed: bool
    suggestions: tuple[tuple[int, int], ...] = ()

    def to_dict(self, classes: tuple[str, ...]) -> dict[str, Any]:
        return {"class": classes[self.label], "trigger": self.phrase,
                "ngrams": list(self.grams), "rows": int(len(self.rows)),
                "rows_with_ngram": self.with_gram, "p_value": float(f"{self.p_value:.3g}"),
                "moved": self.moved, "moved_p_value": float(f"{self.moved_p_value:.3g}"),
                "confirmed": self.confirmed}


def trigger_phrase(texts: list[list[str]], gram: str) -> str:
    """The longest word sequence around ``gram`` that most tokenised ``texts`` share.

    Examples
    --------
    >>> rows = [["i", "watched", "this", "3d", "movie", "ok"], ["so", "i", "watched",
    ...         "this", "3d", "movie"]]
    >>> trigger_phrase(rows, "this 3d")
    'i watched this 3d movie'
    """
    core = gram.split()
    spans = []
    for toks in texts:
        at = next((i for i in range(len(toks) - len(core) + 1)
                   if toks[i:i + len(core)] == core), None)
        if at is not None:
            spans.append((toks, at, at + len(core)))
    if not spans:
        return gram
    need = _NAME_SHARE * len(spans)
    while True:
        right = [t[e] if e < len(t) else None for t, s, e in spans]
        word = max(set(right) - {None}, key=right.count, default=None)
        if word is None or right.count(word) < need:
            break
        spans = [(t, s, e + 1) if e < len(t) and t[e] == word else (t, s, e)
                 for t, s, e in spans]
        core.append(word)
    while True:
        left = [t[s - 1] if s > 0 else None for t, s, e in spans]
        word = max(set(left) - {None}, key=left.count, default=None)
        if word is None or left.count(word) < need:
            break
        spans = [(t, s - 1, e) if s > 0 and t[s - 1] == word else (t, s, e)
                 for t, s, e in spans]
        core.insert(0, word)
    return " ".join(core)


@register_detector
class TokenTriggerDetector(Detector):
    """Find word n-grams that are pure in one class and whose removal changes the class.

    Parameters
    ----------
    n_max
        Longest n-gram counted (words).
    min_rows
        Fewest messages an n-gram must be in to be counted (the test itself decides
        whether a count can be significant).
    min_purity
        Smallest share of an n-gram's messages in the tested class.
    alpha
        Family-wise significance level of both tests (Bonferroni).
    min_moved
        Smallest share of a trigger's messages that must read as another class once
        the trigger is removed.
    folds
        Cross-fitting folds of the removal test's model.
    seed
        Seed of the folds.
    reader
        What the removal test's model reads: ``"sentence"`` embeddings (the
        ``text`` extra; the scan's cached vectors) or ``"words"`` (TF-IDF).

    Examples
    --------
    >>> from poisonguard.attack import run_attack
    >>> from poisonguard.datasets import builtin_dataset
    >>> from poisonguard.represent import build_representation
    >>> tweets = run_attack("token-trigger", builtin_dataset("tweets-300"), rate=0.1,
    ...                     target=2).dataset
    >>> detector = TokenTriggerDetector(reader="words")  # TF-IDF: no sentence model to load
    >>> result = detector.score(tweets, build_representation(tweets, needs=detector.requires()))
    >>> print(result.hypotheses[0])
    backdoor -> class positive: 30 rows contain 'cf' (p = ...); without it ... of them read as
    another class
    >>> result.n_flagged
    30
    """

    name = "token"
    needs = frozenset[str]()
    modalities = frozenset({"text"})
    parameter_constraints = {
        "n_max": Interval(int, 1, 5),
        "min_rows": Interval(int, 2, None),
        "min_purity": Interval(float, 0, 1, closed="right"),
        "alpha": Interval(float, 0, 1, closed="neither"),
        "min_moved": Interval(float, 0, 1),
        "folds": Interval(int, 2, 20),
        "seed": Interval(int, 0, None),
        "reader": OneOf("sentence", "words"),
    }

    def __init__(self, *, n_max: int = 3, min_rows: int = 2, min_purity: float = 0.9,
                 alpha: float = 0.01, min_moved: float = 0.25, folds: int = 5,
                 seed: int = 0, reader: str = "sentence") -> None:
        self.n_max = n_max
        self.min_rows = min_rows
        self.min_purity = min_purity
        self.alpha = alpha
        self.min_moved = min_moved
        self.folds = folds
        self.seed = seed
        self.reader = reader

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        if dataset.texts is None:
            raise ValueError("the token detector reads texts")
        y = np.asarray(dataset.labels)
        n_classes = dataset.n_classes
        tokens = [words(t) for t in dataset.texts]
        x, vocab = self._grams(tokens)
        triggers: list[TextTrigger] = []
        tested = 0
        if x.shape[1]:
            candidates, tested = self._candidates(x, y, n_classes)
            triggers = self._removal_tests(x, y, n_classes, vocab, tokens, candidates,
                                           list(dataset.texts))
        return self._result(dataset, triggers, tested)

    # -- 1. n-grams ----------------------------------------------------------------
    def _grams(self, tokens: list[list[str]]) -> tuple[sp.csc_matrix, np.ndarray]:
        vectorizer = CountVectorizer(analyzer=lambda toks: toks_ngrams(toks, self.n_max),
                                     binary=True, min_df=self.min_rows, dtype=np.float64)
        try:
            x = vectorizer.fit_transform(tokens)
        except ValueError:  # no n-gram in min_rows messages
            return sp.csc_matrix((len(tokens), 0)), np.empty(0, dtype=object)
        return sp.csc_matrix(x), np.asarray(vectorizer.get_feature_names_out(), dtype=object)

    # -- 2. pure, over-represented (n-gram, class) pairs ---------------------------
    def _candidates(self, x: sp.csc_matrix, y: np.ndarray,
                    n_classes: int) -> tuple[list[tuple[int, int, float]], int]:
        """Pairs significant by an exact hypergeometric test, Bonferroni over the pairs
        that could reach significance at all (Tarone): an n-gram in k messages can at
        best be in k messages of the class, and when even that is not significant the
        pair is not a test, so rare n-grams neither count nor need a minimum support."""
        onehot = np.eye(n_classes)[y]
        per_class = np.asarray(x.T @ onehot)  # V x C: messages with the gram, per class
        df = per_class.sum(axis=1)
        base = onehot.sum(axis=0)
        best = np.column_stack([  # V x C: the smallest p-value each pair could have
            hypergeom.sf(df - 1, len(y), base[c], df) for c in range(n_classes)])
        tested = tarone_family(best, self.alpha)
        out: list[tuple[int, int, float]] = []
        pure = (best <= self.alpha / tested) & (per_class >= self.min_purity * df[:, None])
        for g, c in zip(*np.nonzero(pure), strict=True):
            p = float(hypergeom.sf(per_class[g, c] - 1, len(y), base[c], df[g]))
            if p <= self.alpha / tested:
                out.append((int(g), int(c), p))
        return out, tested

    # -- 3 and 4. group, name, removal test ----------------------------------------
    def _removal_tests(self, x: sp.csc_matrix, y: np.ndarray, n_classes: int,
                       vocab: np.ndarray, tokens: list[list[str]],
                       candidates: list[tuple[int, int, float]],
                       texts: list[str]) -> list[TextTrigger]:
        """Test every group; if any is confirmed, test every group again with models
        that do not learn from the confirmed messages: poison skews the model, and a
        natural word of the target class can look like a trigger under it."""
        if not candidates:
            return []
        groups = _group(x, candidates)
        reader = _Reader(self.reader, x, texts, [[str(vocab[g]).split() for g in grams]
                                                  for _, grams, _ in groups])
        tested = self._test_groups(reader, x, y, n_classes, vocab, tokens, groups,
                                   np.zeros(len(y), dtype=bool))
        poison = np.zeros(len(y), dtype=bool)
        for t in tested:
            if t.confirmed:
                poison[t.rows] = True
        if not poison.any():
            return tested
        return self._test_groups(reader, x, y, n_classes, vocab, tokens, groups, poison)

    def _test_groups(self, reader: _Reader, x: sp.csc_matrix, y: np.ndarray, n_classes: int,
                     vocab: np.ndarray, tokens: list[list[str]],
                     groups: list[tuple[int, list[int], float]],
                     excluded: np.ndarray) -> list[TextTrigger]:
        fold_of, models = self._models(reader, y, excluded)
        own = _predict(models, fold_of, reader.rows(np.arange(len(y))), n_classes)
        out: list[TextTrigger] = []
        for k, (label, grams, p) in enumerate(groups):
            has = np.asarray(x[:, grams].sum(axis=1)).ravel() > 0
            rows = np.flatnonzero(has & (y == label))
            proba = _predict(models, fold_of[rows], reader.removed(rows, k, grams), n_classes)
            pred = proba.argmax(axis=1)
            moved = int((pred != label).sum())
            others = (y == label) & ~has & ~excluded
            p_moved = 1.0
            if others.any():  # do the rows read less like the class than its other rows?
                p_moved = float(mannwhitneyu(proba[:, label], own[others, label],
                                             alternative="less").pvalue)
            confirmed = (moved >= self.min_moved * len(rows)
                         and p_moved <= self.alpha / len(groups))
            top = max(grams, key=lambda g: x[:, g].sum())
            phrase = trigger_phrase([tokens[i] for i in rows], str(vocab[top]))
            moves = tuple((int(i), int(c)) for i, c in zip(rows, pred, strict=True)
                          if c != label)
            out.append(TextTrigger(label, phrase, tuple(str(vocab[g]) for g in grams), rows,
                                   int(has.sum()), p, moved, p_moved, confirmed, moves))
        return out

    def _models(self, reader: _Reader, y: np.ndarray,
                excluded: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """Cross-fitted class-balanced logistic regressions; ``excluded`` rows train none."""
        n_splits = int(max(2, min(self.folds, np.bincount(y).min())))
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.seed)
        fold_of = np.zeros(len(y), dtype=np.int64)
        models = []
        for k, (train, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
            fold_of[held] = k
            train = train[~excluded[train]]
            model = reader.model(self.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(reader.rows(train), y[train])
            models.append(model)
        return fold_of, models

    def _result(self, dataset: Dataset, triggers: list[TextTrigger],
                tested: int) -> DetectorResult:
        n = len(dataset)
        scores = np.zeros(n)
        flags = np.zeros(n, dtype=bool)
        reasons: dict[int, str] = {}
        suggested: dict[int, int] = {}
        hypotheses = []
        names = dataset.classes
        for t in triggers:
            if not t.confirmed:
                scores[t.rows] = np.maximum(scores[t.rows], _UNCONFIRMED)
                continue
            flags[t.rows] = True
            scores[t.rows] = np.maximum(scores[t.rows], 0.5 + 0.5 * t.moved / len(t.rows))
            detail = (f"contains the trigger '{t.phrase}': {len(t.rows)} of the "
                      f"{t.with_gram} messages with it are labelled {names[t.label]}; "
                      f"without it, {t.moved} of them read as another class")
            for i in t.rows:
                reasons.setdefault(int(i), detail)
            suggested.update(dict(t.suggestions))
            hypotheses.append(f"backdoor -> class {names[t.label]}: {len(t.rows)} rows contain "
                              f"'{t.phrase}' (p = {t.p_value:.2g}); without it {t.moved} of "
                              f"them read as another class")
        return DetectorResult(
            self.name, scores, flags, reasons=reasons, suggested_labels=suggested,
            hypotheses=tuple(hypotheses),
            meta={"tested_pairs": tested,
                  "triggers": [t.to_dict(names) for t in triggers if t.confirmed],
                  "unconfirmed": [t.to_dict(names) for t in triggers if not t.confirmed]},
            dataset=dataset,
        )


def toks_ngrams(tokens: list[str], n_max: int) -> list[str]:
    """Distinct 1..n_max-grams of one message (the vectoriser's analyzer)."""
    return list(ngrams(tokens, n_max))


def _group(x: sp.csc_matrix,
           candidates: list[tuple[int, int, float]]) -> list[tuple[int, list[int], float]]:
    """Candidates of one class whose message sets overlap (Jaccard >= 1/2), merged."""
    rows = {g: set(x[:, g].indices.tolist()) for g, _, _ in candidates}
    groups: list[tuple[int, list[int], float]] = []
    for g, c, p in sorted(candidates, key=lambda t: (t[2], t[0])):
        for k, (label, members, best) in enumerate(groups):
            head = rows[members[0]]
            if label == c and len(head & rows[g]) >= _SAME_ROWS * len(head | rows[g]):
                groups[k] = (label, [*members, g], min(best, p))
                break
        else:
            groups.append((c, [g], p))
    return groups


class _Reader:
    """What the removal test's model reads: sentence embeddings (all-MiniLM-L6-v2) of
    the messages, the trigger's words cut out of the text; or TF-IDF of the n-gram
    counts, the trigger's n-grams zeroed."""

    def __init__(self, kind: str, x: sp.csc_matrix, texts: list[str],
                 phrases: list[list[list[str]]]) -> None:
        self.kind = kind
        self.x = sp.csr_matrix(x)
        self.texts = texts
        self.phrases = phrases
        self.vectors = embed_texts(texts) if kind == "sentence" else None

    def model(self, seed: int) -> Pipeline:
        first = (StandardScaler() if self.kind == "sentence"
                 else TfidfTransformer(sublinear_tf=True))
        return make_pipeline(first, LogisticRegression(
            C=0.1 if self.kind == "sentence" else 1.0, max_iter=2000,
            class_weight="balanced", random_state=seed))

    def rows(self, rows: np.ndarray) -> Any:
        return self.x[rows] if self.vectors is None else self.vectors[rows]

    def removed(self, rows: np.ndarray, group: int, grams: list[int]) -> Any:
        """``rows`` without the n-grams of ``group`` (column indices ``grams``)."""
        if self.vectors is None:
            keep = np.ones(self.x.shape[1])
            keep[grams] = 0.0
            return sp.csr_matrix(self.x[rows] @ sp.diags(keep))
        return embed_texts([without_phrases(self.texts[i], self.phrases[group])
                            for i in rows])


def _predict(models: list[Any], fold_of: np.ndarray, inputs: Any,
             n_classes: int) -> np.ndarray:
    """Cross-fitted class probabilities (rows x classes): row i by the model of fold
    ``fold_of[i]``, which never saw it."""
    out = np.zeros((len(fold_of), n_classes))
    for k, model in enumerate(models):
        mine = np.flatnonzero(fold_of == k)
        if len(mine):
            out[np.ix_(mine, model.classes_)] = model.predict_proba(inputs[mine])
    return out
