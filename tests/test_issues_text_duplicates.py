"""The duplicate type's text verification: a review re-typed in capitals, stripped of its
punctuation or with a word left out joins its source's set (the held-out mix's edits); the
closest clean look-alikes among the reviews' nearest (real Rotten Tomatoes snippets that differ
by a word in 3-6 words) do not. Candidates come from the real encoder's embeddings, as in a run."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV
from ogad_core.issues.base import IssueContext
from ogad_core.issues.duplicate import DuplicateIssue
from ogad_core.issues.properties import text_properties
from ogad_core.issues.text_match import edit_ratio, word_strings, words

#: real snippets of the full Rotten Tomatoes set: the closest clean pairs among each review's 6
#: nearest embeddings on the kept benchmark runs (one word edit in 2-6 words)
LOOK_ALIKES = [
    ("a bland, pretentious mess.", "A pretentious mess."),
    ("It's a masterpiece.", "It's a keeper."),
    ("I liked this film a lot", "I admired this work a lot."),
    ("Delirious fun.", "Harmless fun."),
]
EDITS = ("case", "punct", "drop")


def _edit(text: str, kind: str, rng: np.random.Generator) -> str:
    if kind == "case":
        return text.upper()
    if kind == "punct":
        return re.sub(r"[^\w\s]", "", text)
    parts = text.split()
    long = [i for i, w in enumerate(parts) if sum(c.isalpha() for c in w) >= 3]
    drop = long[int(rng.integers(len(long)))]
    return " ".join(w for i, w in enumerate(parts) if i != drop)


@pytest.fixture(scope="module")
def reviews() -> tuple[IssueContext, dict[str, list[tuple[int, int]]], list[tuple[int, int]]]:
    """The shipped sample's 600 reviews, 12 of each edit under the other label, the look-alike
    pairs; the context with the encoder's embeddings; (copy, source) rows by edit kind."""
    from ogad_core.engine.text_encoder import encode_texts

    table = pd.read_csv(RT_SAMPLE_CSV)
    texts = table["text"].astype(str).tolist()
    labels = (table["label"].astype(str) == "fresh").astype(int).tolist()
    rng = np.random.default_rng(0)
    long = [i for i, t in enumerate(texts) if len(t.split()) >= 8 and re.search(r"[^\w\s]", t)]
    sources = rng.choice(long, size=12 * len(EDITS), replace=False)
    copies: dict[str, list[tuple[int, int]]] = {kind: [] for kind in EDITS}
    for m, src in enumerate(sources):
        kind = EDITS[m % len(EDITS)]
        copies[kind].append((len(texts), int(src)))
        texts.append(_edit(texts[src], kind, rng))
        labels.append(1 - labels[src])
    look = []
    for a, b in LOOK_ALIKES:
        look.append((len(texts), len(texts) + 1))
        texts += [a, b]
        labels += [0, 1]
    samples = pd.DataFrame({"sample_id": np.arange(len(texts)), "label": labels, "ref": texts})
    emb = encode_texts(texts, encoder=None, progress=False)
    ctx = IssueContext(samples=samples, label_names=["rotten", "fresh"], kind="text")
    ctx.embeddings, ctx.inputs = emb, text_properties(texts)
    return ctx, copies, look


def test_each_edit_joins_its_source_and_look_alikes_do_not(reviews) -> None:
    ctx, copies, look = reviews
    est = DuplicateIssue().fit(ctx)
    for kind, pairs in copies.items():
        for copy, src in pairs:
            assert est.set_ids_[copy] == est.set_ids_[src] >= 0, (kind, ctx.samples["ref"][copy])
            assert "labels differ" in est.explain(copy)
    edited = [i for pairs in copies.values() for pair in pairs for i in pair]
    assert est.flagged_.sum() == len(edited), np.setdiff1d(np.flatnonzero(est.flagged_), edited)
    for a, b in look:
        assert est.set_ids_[a] == est.set_ids_[b] == -1
    assert "same words up to case, punctuation" in est.explain(copies["drop"][0][0])


def test_without_the_verification_punctuation_and_dropped_words_are_missed(reviews) -> None:
    """The rules before it (content hash, embedding distance, isolated pair): a case change is
    an exact copy (the hash is lower-cased), the other edits mostly are not."""
    ctx, copies, _ = reviews
    est = DuplicateIssue(words_per_edit=0).fit(ctx)
    joined = {
        kind: np.mean([est.set_ids_[c] == est.set_ids_[s] >= 0 for c, s in pairs])
        for kind, pairs in copies.items()
    }
    assert joined["case"] == 1.0
    assert joined["punct"] < 1.0 and joined["drop"] < 1.0, joined


def test_words_and_edit_ratio() -> None:
    assert words("Didn't   it, Mr. Smith?") == ["didnt", "it", "mr", "smith"]
    texts = [
        "One two three four five.",
        "ONE TWO THREE FOUR FIVE",
        "One two four five",
        "One two six four five",
        "It's a masterpiece.",
        "It's a keeper.",
        "?!",
        "One six three seven five",
    ]
    coded = word_strings(texts)
    assert coded[0] == coded[1] and len(coded[0]) == 5 and coded[6] == ""
    ratio = edit_ratio(coded, np.array([[0, 1], [0, 2], [0, 3], [0, 7], [4, 5], [6, 6]]))
    # 0 edits; 1 dropped of 5; 1 replaced of 5; 2 replaced of 5; 1 of 3 words; no words
    assert ratio.tolist()[:5] == [0.25, 0.75, 0.75, 1.25, 1.5] and np.isinf(ratio[5])


def test_an_edited_review_in_the_held_out_split_leaks() -> None:
    """The held-out split holds reviews of the training data without their punctuation or with
    a word left out (leaks: before, only the content hash compared texts), and the look-alikes'
    other halves (not leaks)."""
    from ogad_core.issues.holdout import Holdout
    from ogad_core.issues.leakage import LeakageIssue

    table = pd.read_csv(RT_SAMPLE_CSV)
    train = table["text"].astype(str).tolist() + [a for a, _ in LOOK_ALIKES]
    rng = np.random.default_rng(1)
    long = [i for i, t in enumerate(train) if len(t.split()) >= 8 and re.search(r"[^\w\s]", t)]
    leaked = [int(i) for i in rng.choice(long, size=6, replace=False)]
    held = [_edit(train[i], EDITS[1 + m % 2], rng) for m, i in enumerate(leaked)]
    held += [b for _, b in LOOK_ALIKES]
    samples = pd.DataFrame({"sample_id": np.arange(len(train)), "label": 0, "ref": train})
    ctx = IssueContext(samples=samples, label_names=["rotten", "fresh"], kind="text")
    ctx.inputs = text_properties(train)
    ctx.holdout = Holdout("csv:held.csv", held, text_properties(held), None, "f")
    est = LeakageIssue().fit(ctx)
    assert np.flatnonzero(est.flagged_).tolist() == sorted(leaked)
    assert est.nearest_[leaked].tolist() == list(range(len(leaked)))
    assert est.explain(leaked[0]).startswith("near copy of held-out")
    assert not LeakageIssue(words_per_edit=0).fit(ctx).flagged_.any()
