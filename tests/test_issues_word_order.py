"""The ``corrupt`` type's word-order rules on real reviews (the Rotten Tomatoes sample): words
of a review in random order are "out of order" (a class bigram model of the data's own texts,
each text's pairs left out of the counts), a review cut by a length limit mid-word is "cut
off"; the reviews themselves are neither."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV
from ogad_core.issues.base import IssueContext
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.properties import text_properties
from ogad_core.issues.word_order import CLOSED_CLASS_WORDS, ends_on_closed_class, order_scores

#: injected texts per kind
N_BAD = 12


def _fit(texts: list[str]) -> CorruptIssue:
    samples = pd.DataFrame(
        {"sample_id": np.arange(len(texts)), "label": np.zeros(len(texts)), "ref": texts}
    )
    ctx = IssueContext(samples=samples, label_names=["a", "b"], kind="text")
    ctx.inputs = text_properties(texts)
    return CorruptIssue().fit(ctx)


def _reviews() -> list[str]:
    return pd.read_csv(RT_SAMPLE_CSV)["text"].astype(str).tolist()


def _salad(reviews: list[str], rng: np.random.Generator) -> list[str]:
    """N_BAD reviews of 10-20 words, each with its words in random order."""
    long = [r for r in reviews if 10 <= len(r.split()) <= 20]
    picked = rng.choice(len(long), N_BAD, replace=False)
    return [" ".join(rng.permutation(long[i].split())) for i in picked]


def _cut(reviews: list[str], rng: np.random.Generator) -> list[str]:
    """N_BAD reviews cut inside a word of six letters or more that three reviews or more use
    (after its first 2-4 letters)."""
    used = Counter(w for r in reviews for w in set(r.split()))
    out: list[str] = []
    for review in rng.permutation(reviews):
        words = review.split()
        at = [
            j
            for j, w in enumerate(words[1:], 1)
            if len(w) >= 6 and w.isalpha() and w.islower() and used[w] >= 3
        ]
        if at:
            j = int(rng.choice(at))
            out.append(" ".join(words[:j] + [words[j][: int(rng.integers(2, 5))]]))
        if len(out) == N_BAD:
            return out
    raise AssertionError("too few reviews to cut")


def test_words_in_random_order_are_out_of_order_and_reviews_are_not() -> None:
    """Among 610 reviews most shuffled ones score above every review and the worst are
    flagged (z >= 5; with 610 texts the word pairs' counts are thin: salads reach z 3.3-5.2
    here, 3.7-6.8 among the benchmark's 3,120), at most one review (lyrics, a list), and the
    worst says why."""
    reviews = _reviews()
    est = _fit(reviews + _salad(reviews, np.random.default_rng(0)))
    part = est.parts_["out of order"].to_numpy()
    n = len(reviews)
    assert (part[:n] >= est.threshold).sum() <= 1
    assert (part[n:] >= est.threshold).any()
    assert est.flagged_[n:][part[n:] >= est.threshold].all()
    assert (part[n:] > part[:n].max()).sum() >= N_BAD // 2
    worst = n + int(np.argmax(part[n:]))
    assert est.explain(worst).startswith("words out of order input (z = ")


def test_fluent_reviews_have_positive_word_pair_information() -> None:
    """Mean pair PMI: clearly positive for nearly every review, below zero once shuffled."""
    reviews = _reviews()
    mean, _ = order_scores(reviews + _salad(reviews, np.random.default_rng(1)))
    n = len(reviews)
    fluent = mean[:n][np.isfinite(mean[:n])]
    assert np.median(fluent) > 0.3 and (fluent > 0).mean() > 0.98
    assert (mean[n:] < 0).sum() >= N_BAD * 3 // 4


def test_a_review_cut_mid_word_is_cut_off() -> None:
    """Most cut reviews are flagged (a cut that ends on a word, "add" of "additional", is a
    whole word to any reader); at most one of the 610 reviews is (the sample holds a few
    reviews truncated at the source)."""
    reviews = _reviews()
    cut = _cut(reviews, np.random.default_rng(2))
    est = _fit(reviews + cut)
    n = len(reviews)
    cut_off = est.parts_["cut off"].to_numpy() >= est.threshold
    missed = [c for c, f in zip(cut, cut_off[n:], strict=True) if not f]
    assert cut_off[n:].sum() >= N_BAD // 2, missed
    # a review ending in a whole word, a name or punctuation is not cut
    assert cut_off[:n].sum() <= 1, [r for r, f in zip(reviews, cut_off[:n], strict=True) if f]
    assert est.flagged_[n:][cut_off[n:]].all()
    # the card names the fragment the text ends in and a word of the data it starts
    for row in n + np.flatnonzero(cut_off[n:]):
        last = (reviews + cut)[row].split()[-1]
        why = est.explain(int(row))
        assert why.startswith(f'cut off mid-word: ends in "{last}", the start of "{last}'), why


def _cut_on_a_word_boundary(reviews: list[str]) -> list[str]:
    """Reviews cut after their first closed-class word among words 2-5 ("It's all about"):
    one a review, at most N_BAD."""
    out: list[str] = []
    for review in reviews:
        words = review.split()
        at = [j for j in range(1, min(5, len(words) - 1)) if words[j] in CLOSED_CLASS_WORDS]
        if at:
            out.append(" ".join(words[: at[0] + 1]))
        if len(out) == N_BAD:
            break
    return out


def test_a_short_text_ending_on_a_closed_class_word_is_cut_off() -> None:
    """A text of 2-5 words that ends in a letter on an article, preposition, conjunction or
    auxiliary was cut on a word boundary: every such cut of a review is flagged "cut off" and
    says so; a whole short review without closing punctuation and a long text ending on one
    ("... a story worth caring about") are not."""
    reviews = _reviews()
    cut = _cut_on_a_word_boundary(reviews)
    whole = ["wise and elegiac", "A Movie to Forget", "Intense but sprawling", "I haven't."]
    long = ["Only one of the films that actually tell a story worth caring about"]
    est = _fit(reviews + cut + whole + long)
    n = len(reviews)
    cut_off = est.parts_["cut off"].to_numpy() >= est.threshold
    assert len(cut) == N_BAD and cut_off[n : n + N_BAD].all(), cut
    assert not cut_off[n + N_BAD :].any()
    assert cut_off[:n].sum() <= 1  # as for mid-word cuts: a few reviews cut at the source
    last = cut[0].split()[-1].lower()
    why = est.explain(n)
    assert why.startswith(f'cut off after "{last}": a short text that ends on a word'), why
    assert ends_on_closed_class("I haven't".split())
    assert not ends_on_closed_class("Sure to be a hit".split())
