"""Words of a text, with their places: what text attacks, detectors and reports share.

A word is a maximal run of letters, digits, ``'`` or ``_`` (Unicode aware), compared
in lower case. Punctuation and spaces separate words and are never words. The same
function splits a text everywhere, so a trigger a detector names is found again, at
the same characters, by the report that highlights it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

__all__ = ["WORD", "ngrams", "phrase_spans", "without_phrases", "word_spans", "words"]

WORD = re.compile(r"[\w']+", re.UNICODE)


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` for each word of ``text``, the word in lower case.

    Examples
    --------
    >>> word_spans("Hi, cf there")
    [(0, 2, 'hi'), (4, 6, 'cf'), (7, 12, 'there')]
    """
    return [(m.start(), m.end(), m.group().lower()) for m in WORD.finditer(text)]


def words(text: str) -> list[str]:
    """The lower-case words of ``text``.

    Examples
    --------
    >>> words("I watched this 3D movie.")
    ['i', 'watched', 'this', '3d', 'movie']
    """
    return [m.group().lower() for m in WORD.finditer(text)]


def ngrams(tokens: Sequence[str], n_max: int) -> Iterator[str]:
    """Every distinct 1..``n_max``-gram of ``tokens`` (words joined by one space).

    Examples
    --------
    >>> sorted(ngrams(["a", "b", "a"], 2))
    ['a', 'a b', 'b', 'b a']
    """
    seen: set[str] = set()
    for n in range(1, n_max + 1):
        for i in range(len(tokens) - n + 1):
            gram = " ".join(tokens[i:i + n])
            if gram not in seen:
                seen.add(gram)
                yield gram


def phrase_spans(text: str, phrases: Sequence[Sequence[str]]) -> list[tuple[int, int]]:
    """Sorted ``(start, end)`` characters of every occurrence in ``text`` of each phrase
    (a sequence of lower-case words).

    Examples
    --------
    >>> phrase_spans("So CF, cf it is", [["cf"], ["it", "is"]])
    [(3, 5), (7, 9), (10, 15)]
    """
    spans = word_spans(text)
    tokens = [w for _, _, w in spans]
    out = []
    for phrase in phrases:
        n = len(phrase)
        for i in range(len(tokens) - n + 1):
            if tokens[i:i + n] == list(phrase):
                out.append((spans[i][0], spans[i + n - 1][1]))
    return sorted(out)


def without_phrases(text: str, phrases: Sequence[Sequence[str]]) -> str:
    """``text`` with every occurrence of each phrase cut out and spaces folded.

    Examples
    --------
    >>> without_phrases("I watched this 3D movie. Great!", [["i", "watched"],
    ...                                                     ["watched", "this", "3d"]])
    'movie. Great!'
    """
    parts, at = [], 0
    for start, end in phrase_spans(text, phrases):
        if start >= at:
            parts.append(text[at:start])
        at = max(at, end)  # overlapping phrases are cut as one
    parts.append(text[at:])
    return " ".join("".join(parts).split())
