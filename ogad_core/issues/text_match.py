"""Verification of near-duplicate texts: the same words up to case, punctuation and a few word
edits (the text analogue of :mod:`ogad_core.issues.registration`). Torch-free.

Each text becomes its sequence of *words*: lower-cased, punctuation deleted ("didn't" and
"didnt" are one word), split on white space. A candidate pair (each text's nearest in the
encoder's embeddings) is a near duplicate when the word-level Levenshtein distance (a word
inserted, deleted or replaced counts one) is at most one edit per :data:`WORDS_PER_EDIT` words
of the longer text: a review re-typed in capitals, stripped of its punctuation or with a word
left out matches its source; "It's a masterpiece." / "It's a keeper." (1 edit in 3 words) and
"a bland, pretentious mess." / "A pretentious mess." (1 in 4) do not. A text shorter than
that matches only when its words are the same.

The distance is rapidfuzz's Levenshtein on strings whose characters stand for words (one code
point a word): compact (4 bytes a word) and as fast as a character distance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: one word edit allowed per this many words of the longer text (measured on the kept runs: the
#: closest clean look-alike pair among each review's 6 nearest has 1 edit in 4 words)
WORDS_PER_EDIT = 5
#: what a word loses: everything but letters, digits and white space (underscore included)
_NOT_WORD = re.compile(r"[^\w\s]|_")
#: word codes are code points; the surrogates (not valid in a str) are skipped
_SURROGATES = (0xD800, 0xE000)
_CODES = 0x110000 - (_SURROGATES[1] - _SURROGATES[0])


def words(text: str) -> list[str]:
    """The words of ``text``: lower case, punctuation deleted, split on white space."""
    return _NOT_WORD.sub("", str(text).lower()).split()


def word_strings(texts: Sequence[str]) -> list[str]:
    """N strings, one character per word of each text (equal words, equal characters; past
    about 1.1M distinct words two words may share a character)."""
    vocab: dict[str, str] = {}
    out = []
    for text in texts:
        chars = []
        for w in words(text):
            c = vocab.get(w)
            if c is None:
                c = vocab[w] = _code(len(vocab) % _CODES)
            chars.append(c)
        out.append("".join(chars))
    return out


def _code(i: int) -> str:
    return chr(i if i < _SURROGATES[0] else i + _SURROGATES[1] - _SURROGATES[0])


def edit_ratio(
    coded: Sequence[str], pairs: np.ndarray, words_per_edit: int = WORDS_PER_EDIT
) -> np.ndarray:
    """(M,) float64 for (M, 2) ``pairs`` of rows of ``coded`` (:func:`word_strings`): (word
    edits + 0.5) / (edits allowed + 1), edits allowed = longer length // ``words_per_edit``;
    below 1 when the pair is a near duplicate; inf when either text has no words."""
    from rapidfuzz.distance import Levenshtein

    out = np.full(len(pairs), np.inf)
    for m, (i, j) in enumerate(pairs.tolist()):
        a, b = coded[i], coded[j]
        if a and b:
            allowed = max(len(a), len(b)) // words_per_edit
            out[m] = (Levenshtein.distance(a, b) + 0.5) / (allowed + 1)
    return out


def _keys(coded: str, words_per_edit: int) -> list[str]:
    """``coded`` itself and, when it is long enough to allow an edit, each of its one-word
    deletions: two texts one word edit apart share a key."""
    if len(coded) < words_per_edit:
        return [coded]
    return [coded, *{coded[:i] + coded[i + 1 :] for i in range(len(coded))}]


def best_matches(
    texts: Sequence[str], others: Sequence[str], words_per_edit: int = WORDS_PER_EDIT
) -> tuple[np.ndarray, np.ndarray]:
    """For each of N ``texts``, the row of ``others`` it matches best and the pair's
    :func:`edit_ratio` ((N,) int64 and float64; -1 and inf without a candidate). Candidates
    share a key (:func:`_keys`: the same words, or one word deleted from either): every pair
    up to one word edit apart; pairs of longer texts more edits apart are not searched."""
    coded = word_strings([*texts, *others])
    n = len(texts)
    index: dict[str, list[int]] = {}
    for j, c in enumerate(coded[n:]):
        for key in _keys(c, words_per_edit) if c else []:
            index.setdefault(key, []).append(n + j)
    pairs = [
        (i, j)
        for i, c in enumerate(coded[:n])
        if c
        for j in sorted({j for key in _keys(c, words_per_edit) for j in index.get(key, ())})
    ]
    nearest, best = np.full(n, -1, dtype=np.int64), np.full(n, np.inf)
    if not pairs:
        return nearest, best
    found = np.array(pairs, dtype=np.int64)
    ratio = edit_ratio(coded, found, words_per_edit)
    for (i, j), r in zip(found.tolist(), ratio.tolist(), strict=True):
        if r < best[i]:
            best[i], nearest[i] = r, j - n
    return nearest, best
