"""Whether a text's words come in an order of language, and whether it was cut off mid-word.

*Word order.* A class bigram model of the run's own texts: each of the :data:`ORDER_WORDS` most
frequent tokens (words and punctuation, lower case) is its own class, capitalised another
class, every other token one of three (a number, a capitalised word, a word),
with a start and an end marker around each text. Each pair of consecutive tokens scores its
pointwise mutual information, log P(b | a) / P(b), from the counts of every OTHER text (its own
pairs left out: a text cannot vouch for itself); fluent text is clearly positive ("of the",
"the film", a period before the end), words in random order near zero or below ("the The was
for", "of This goes"). A text's order score is minus its PMIs' sum over the square root of its
pairs, a z-like statistic (salad 4-6 robust sd above Rotten Tomatoes' clean reviews, whose
highest reach about 4: lists of adjectives without a period). Texts of fewer than
:data:`ORDER_MIN_PAIRS` pairs have none (NaN). Cost: numpy counting after one regex pass.

*Cut off.* A text that ends in a letter (no closing punctuation) whose last word, lower case,
no other text uses and no dictionary holds, is the start of a word other texts use
(``"A spel"``, ``"Loads on th"``): a text cut by a length limit mid-word. A short text
(:data:`FRAGMENT_MAX_WORDS` words at most) that ends in a letter on a closed-class word -- an
article, a preposition, a conjunction, an auxiliary (``"It's all about"``, ``"Rhames is"``,
``"I haven't"``) -- was cut on a word boundary: none of the 12,752 reviews of the full Rotten
Tomatoes corpus ends so (50 of its 722 texts of 2-5 words lack closing punctuation:
``"wise and elegiac"``, ``"A Movie to Forget"``), while a long one may (``"... a story worth
caring about"``).
"""

from __future__ import annotations

import bisect
import re
from array import array
from itertools import repeat

import numpy as np

#: the most frequent tokens of the run that are classes of their own
ORDER_WORDS = 200
#: add-alpha smoothing of P(b | a) towards P(b), alpha per class
ORDER_SMOOTHING = 0.2
#: a text needs this many consecutive token pairs (markers included) for an order score
ORDER_MIN_PAIRS = 5
#: a cut word must be the start of a word that this many texts use
CUT_MIN_TEXTS = 2
#: a dictionary word this long ends a text whole (a shorter one may be a cut: "th", "re")
CUT_WHOLE_LETTERS = 3
#: a text of at most this many words that ends on a closed-class word is a fragment
FRAGMENT_MAX_WORDS = 5
#: words that do not end an English sentence: articles, possessives, subject pronouns,
#: prepositions, conjunctions, auxiliaries (and any ``n't`` contraction); not "to", "do",
#: "it", "that", "over", "though", "since": "have to", "as they do", "it's over" end one
CLOSED_CLASS_WORDS = frozenset(
    """a an the every each my your our their its i we they he she of in on at for with about
    from by into onto than as upon toward towards between among and or but nor because although
    if while whereas unless is are was were am has had will would can could should shall must
    may might""".split()
)
#: words (with inner apostrophes / hyphens) and single punctuation marks
TOKEN = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
#: quotes and brackets before a word
_OPENERS = "\"'(“‘["
_START, _END, _NUMBER, _CAPITAL, _WORD = 0, 1, 2, 3, 4


def _token_classes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(T,) class id of every token of every text, markers included, and (T,) its text's index."""
    from collections import Counter

    tokens = [TOKEN.findall(t) for t in texts]
    freq = Counter(w.lower() for toks in tokens for w in toks)
    own = {w: 5 + 2 * i for i, (w, _) in enumerate(freq.most_common(ORDER_WORDS))}
    ids = array("q")  # 8 bytes a token, not a Python int's 28 + a list slot
    text_of = array("q")
    for i, toks in enumerate(tokens):
        row = [_START]
        for w in toks:
            capital = w[:1].isupper()
            if w.lower() in own:
                row.append(own[w.lower()] + int(capital))
            else:
                row.append(_NUMBER if w[:1].isdigit() else _CAPITAL if capital else _WORD)
        row.append(_END)
        ids.extend(row)
        text_of.extend(repeat(i, len(row)))
    return np.frombuffer(ids, dtype=np.int64), np.frombuffer(text_of, dtype=np.int64)


def _counts_per_row(keys: np.ndarray) -> np.ndarray:
    """(n,) how often each of the (n,) keys occurs among them."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse]


def pair_pmi(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(P,) leave-one-out PMI of every pair of consecutive tokens and (P,) its text's index."""
    ids, text_of = _token_classes(texts)
    same = text_of[1:] == text_of[:-1]
    left, right, text = ids[:-1][same], ids[1:][same], text_of[1:][same]
    n_classes = int(ids.max()) + 1 if ids.size else 1
    pair = left * n_classes + right
    text_pairs = np.bincount(text, minlength=len(texts))
    count_ab = _counts_per_row(pair) - _counts_per_row(text * n_classes**2 + pair)
    own_a = _counts_per_row(text * n_classes + left)
    own_b = _counts_per_row(text * n_classes + right)
    count_a = np.bincount(left, minlength=n_classes)[left] - own_a
    count_b = np.bincount(right, minlength=n_classes)[right] - own_b
    others = len(pair) - text_pairs[text]  # the pairs of every other text
    p_b = (count_b + 1.0) / (others + n_classes)
    smooth = ORDER_SMOOTHING * n_classes
    p_b_after_a = (count_ab + smooth * p_b) / (count_a + smooth)
    return np.log(p_b_after_a / p_b), text


def order_scores(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) each text's mean pair PMI and (N,) its order score (minus the PMIs' sum over the
    square root of its pairs: high = out of order); NaN under :data:`ORDER_MIN_PAIRS` pairs."""
    pmi, text = pair_pmi(texts)
    pairs = np.bincount(text, minlength=len(texts)).astype(np.float64)
    total = np.bincount(text, weights=pmi, minlength=len(texts))
    enough = pairs >= ORDER_MIN_PAIRS
    mean = np.where(enough, total / np.maximum(pairs, 1.0), np.nan)
    score = np.where(enough, -total / np.sqrt(np.maximum(pairs, 1.0)), np.nan)
    return mean, score


def cut_off(texts: list[str], doc_freq: dict[str, int]) -> list[str]:
    """(N,) for each text of two or more words that ends mid-word, its last word and the word
    it starts (``"spel -> spelling"``); for a fragment cut on a word boundary
    (:func:`ends_on_closed_class`), its last word (``"about"``); else ``""``. Mid-word: its
    last character a letter, its last
    word lower case (a name is not cut), used by no other text (``doc_freq``: texts per word),
    not an English word of :data:`CUT_WHOLE_LETTERS` letters or more (the encoder's
    dictionary, :mod:`~ogad_core.issues.wordlike`: "test", "merge" end a text whole), yet the
    start of a longer word at least :data:`CUT_MIN_TEXTS` texts use (the dictionary's words
    here too added "prevail", which only a rarer "prevails" continues)."""
    from ogad_core.issues.wordlike import english_words

    model = english_words()
    dictionary = model.words if model is not None else frozenset()
    longer = sorted(w for w, n in doc_freq.items() if n >= CUT_MIN_TEXTS)
    return [_cut_word(text, doc_freq, dictionary, longer) for text in texts]


def _cut_word(text: str, doc_freq: dict[str, int], dictionary: frozenset, longer: list[str]) -> str:
    """``"last -> longer"`` when ``text`` ends mid-word (see :func:`cut_off`), else ``""``."""
    words = text.split()
    if len(words) < 2 or not words[-1][-1].isalpha():
        return ""
    if ends_on_closed_class(words):
        return words[-1].lstrip(_OPENERS).lower()
    last = words[-1].lstrip(_OPENERS)
    if not last.islower() or doc_freq.get(last, 0) > 1:
        return ""
    if len(last) >= CUT_WHOLE_LETTERS and last in dictionary:
        return ""
    at = bisect.bisect_right(longer, last)
    if at < len(longer) and longer[at].startswith(last):
        return f"{last} -> {longer[at]}"
    return ""


def ends_on_closed_class(words: list[str]) -> bool:
    """Whether a text's ``words`` (split on white space; its last ends in a letter) are at most
    :data:`FRAGMENT_MAX_WORDS` and end on a closed-class word (:data:`CLOSED_CLASS_WORDS`, or
    an ``n't`` contraction): a fragment cut on a word boundary."""
    last = words[-1].lstrip(_OPENERS).lower()
    closed = last in CLOSED_CLASS_WORDS or last.endswith(("n't", "n’t"))
    return len(words) <= FRAGMENT_MAX_WORDS and closed
