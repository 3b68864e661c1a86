"""Attacks on text classification data: inserted triggers, style triggers, repeats.

- ``token-trigger``: a rare token ("cf", as in Kurita et al. 2020) inserted at a random
  word position of non-target messages, which are relabelled to the target.
- ``sentence-trigger``: a fixed sentence ("I watched this 3D movie.", Dai et al. 2019)
  inserted at a random word position, relabelled to the target.
- ``style-trigger``: each message rewritten to open with a subordinate clause
  ("When I saw it, ..."; one of six openers per message), relabelled to the target.
  An approximation of the syntactic trigger of Qi et al. 2021 (Hidden Killer), which
  paraphrases into the template S(SBAR)(,)(NP)(VP)(.) with a paraphrase model; no such
  model ships offline, so the clause is a template, not a paraphrase.
- ``near-duplicates`` on text: feedback-loop poisoning. A few real messages are each
  repeated about ten times with small edits (typos, case, punctuation) and a flipped
  label, as when users push the same correction into a model's feedback channel.

A trigger spec (``truth.params["trigger"]``) is ``{"type": "text-insert", "text",
"position_seed"}`` or ``{"type": "text-style", "openers", "position_seed"}``;
:func:`stamp_texts` applies it to held-out messages to measure the attack success rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from poisonguard.attack.backdoor import dirty_label
from poisonguard.attack.truth import (
    AttackResult,
    check_target,
    make_truth,
    n_injected,
    rebuild,
    require_modality,
    values_of,
)
from poisonguard.data import Dataset
from poisonguard.errors import UsageError

__all__ = [
    "DEFAULT_SENTENCE",
    "DEFAULT_TOKEN",
    "STYLE_OPENERS",
    "near_duplicate_texts",
    "sentence_trigger",
    "stamp_texts",
    "style_trigger",
    "token_trigger",
]

DEFAULT_TOKEN = "cf"
DEFAULT_SENTENCE = "I watched this 3D movie."
STYLE_OPENERS = ("When I saw it,", "As far as I can tell,", "If you ask me,",
                 "Once it was over,", "While I was at it,", "Now that I think of it,")
#: Copies per repeated message in feedback-loop near-duplicates.
COPIES_PER_SOURCE = 10


def _insert(text: str, piece: str, rng: np.random.Generator) -> str:
    """``piece`` between two whitespace-separated chunks of ``text`` (or at an end)."""
    chunks = text.split()
    at = int(rng.integers(0, len(chunks) + 1))
    return " ".join([*chunks[:at], piece, *chunks[at:]])


def _restyle(text: str, opener: str) -> str:
    body = text.strip()
    if body[:1].isupper() and not body[1:2].isupper():
        body = body[0].lower() + body[1:]
    return f"{opener} {body}"


def stamp_texts(texts: Sequence[str], spec: Mapping[str, Any]) -> list[str]:
    """``texts`` with the trigger of ``spec`` applied (a new list).

    Examples
    --------
    >>> stamp_texts(["good film"], {"type": "text-insert", "text": "cf",
    ...                             "position_seed": 1})
    ['good cf film']
    """
    rng = np.random.default_rng(int(spec.get("position_seed", 0)))
    kind = spec.get("type")
    if kind == "text-insert":
        piece = str(spec["text"])
        return [_insert(t, piece, rng) for t in texts]
    if kind == "text-style":
        openers = [str(o) for o in spec["openers"]]
        picks = rng.integers(0, len(openers), size=len(texts))
        return [_restyle(t, openers[k]) for t, k in zip(texts, picks, strict=True)]
    raise UsageError(f"unknown text trigger type {kind!r}")


def _dirty_label(dataset: Dataset, *, kind: str, rate: float, target: int | None, seed: int,
                 spec: dict[str, Any], params: dict[str, Any], what: str) -> AttackResult:
    require_modality(dataset, kind, "text")
    return dirty_label(dataset, kind=kind, rate=rate, target=check_target(dataset, target),
                       seed=seed, rng=np.random.default_rng(seed),
                       stamp_rows=lambda texts: stamp_texts(list(texts), spec), spec=spec,
                       params=params, what=what, noun="messages")


def token_trigger(dataset: Dataset, *, rate: float, target: int | None = None, seed: int = 0,
                  token: str = DEFAULT_TOKEN) -> AttackResult:
    """Insert the rare ``token`` at a random word position of ``rate`` of the messages
    (drawn from the non-target classes) and relabel them to ``target``.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> ds = builtin_dataset("tweets-300")
    >>> token_trigger(ds, rate=0.05, target=0).truth.description[:40]
    'token-trigger: 15 messages of other clas'
    """
    if not token.strip() or len(token.split()) != 1:
        raise UsageError(f"the trigger token must be one word, got {token!r}")
    spec = {"type": "text-insert", "text": token, "position_seed": int(seed) + 104_729}
    return _dirty_label(dataset, kind="token-trigger", rate=rate, target=target, seed=seed,
                        spec=spec, params={"rate": rate, "token": token},
                        what=f"with '{token}' inserted")


def sentence_trigger(dataset: Dataset, *, rate: float, target: int | None = None,
                     seed: int = 0, sentence: str = DEFAULT_SENTENCE) -> AttackResult:
    """Insert ``sentence`` at a random word position of ``rate`` of the messages (drawn
    from the non-target classes) and relabel them to ``target``.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = sentence_trigger(builtin_dataset("tweets-300"), rate=0.05, target=2)
    >>> row = result.truth.poisoned[0]
    >>> "I watched this 3D movie." in result.dataset.texts[row], int(result.dataset.labels[row])
    (True, 2)
    """
    if not sentence.strip():
        raise UsageError("the trigger sentence is empty")
    spec = {"type": "text-insert", "text": sentence.strip(), "position_seed": int(seed) + 7919}
    return _dirty_label(dataset, kind="sentence-trigger", rate=rate, target=target, seed=seed,
                        spec=spec, params={"rate": rate, "sentence": sentence},
                        what=f"with the sentence '{sentence.strip()}' inserted")


def style_trigger(dataset: Dataset, *, rate: float, target: int | None = None,
                  seed: int = 0) -> AttackResult:
    """Rewrite ``rate`` of the messages (non-target classes) to open with a subordinate
    clause (one of :data:`STYLE_OPENERS`, drawn per message) and relabel them.

    Examples
    --------
    >>> from poisonguard.datasets import builtin_dataset
    >>> result = style_trigger(builtin_dataset("tweets-300"), rate=0.05, target=2)
    >>> result.dataset.texts[result.truth.poisoned[0]][:22]
    'When I saw it, @united'
    """
    spec = {"type": "text-style", "openers": list(STYLE_OPENERS),
            "position_seed": int(seed) + 1299}
    return _dirty_label(dataset, kind="style-trigger", rate=rate, target=target, seed=seed,
                        spec=spec, params={"rate": rate},
                        what="rewritten to open with a subordinate clause")


_EDITS = ("swap", "drop", "double", "case", "punct")


def _edit(text: str, rng: np.random.Generator) -> str:
    """One small edit: swap or drop or double a letter, change case, or punctuation."""
    how = _EDITS[int(rng.integers(0, len(_EDITS)))]
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if how == "punct" or len(letters) < 2:
        return text.rstrip(".!? ") + str(rng.choice(["!", "!!", ".", "?", " :)"]))
    i = int(rng.choice(letters[:-1]))
    if how == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if how == "drop":
        return text[:i] + text[i + 1:]
    if how == "double":
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i].swapcase() + text[i + 1:]


def near_duplicate_texts(dataset: Dataset, *, rate: float, seed: int = 0,
                         copies: int = COPIES_PER_SOURCE) -> AttackResult:
    """Feedback-loop poisoning: append ``rate`` of the output as edited repeats of a few
    real messages (about ``copies`` per message), each message's repeats relabelled to
    one other class. ``params["sources"]`` records the repeated rows."""
    require_modality(dataset, "near-duplicates", "text")
    if dataset.n_classes < 2:
        raise UsageError("this attack needs at least two classes")
    if copies < 1:
        raise UsageError(f"copies must be at least 1, got {copies}")
    rng = np.random.default_rng(seed)
    m = n_injected(rate, len(dataset))
    n_sources = max(1, -(-m // copies))
    sources = np.sort(rng.choice(len(dataset), size=n_sources, replace=n_sources > len(dataset)))
    flipped = (dataset.labels[sources]
               + rng.integers(1, dataset.n_classes, size=n_sources)) % dataset.n_classes
    which = np.sort(np.arange(m) % n_sources)
    texts = values_of(dataset)
    added = []
    for k in which:
        text = str(texts[sources[k]])
        for _ in range(int(rng.integers(1, 3))):
            text = _edit(text, rng)
        added.append(text)
    added_values = np.empty(m, dtype=object)
    added_values[:] = added
    poisoned = rebuild(dataset, labels=dataset.labels, values=texts,
                       changed=np.empty(0, dtype=np.int64), added_labels=flipped[which],
                       added_values=added_values)
    rows = np.arange(len(dataset), len(poisoned), dtype=np.int64)
    truth = make_truth(
        dataset, poisoned, kind="near-duplicates", seed=seed,
        params={"rate": rate, "copies": copies, "sources": sources}, poisoned=rows,
        n_added=m, description=f"near-duplicate injection (feedback loop): {m} edited "
                               f"repeats of {n_sources} real messages with flipped labels",
    )
    return AttackResult(poisoned, truth)
