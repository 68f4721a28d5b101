"""The ``corrupt`` type's very short texts: a text under ``min_words`` words is flagged, and
ranked by how short it is in characters against the data's own lengths, so a one-letter
snippet comes before a one-word fragment (both flagged); a one-word sentence is a review."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV
from ogad_core.issues.base import IssueContext
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.properties import text_properties


def _text_context(texts: list[str]) -> IssueContext:
    """A text run's context over (N,) ``texts``: samples and their input properties."""
    samples = pd.DataFrame(
        {"sample_id": np.arange(len(texts)), "label": np.zeros(len(texts)), "ref": texts}
    )
    ctx = IssueContext(samples=samples, label_names=["a", "b"], kind="text")
    ctx.inputs = text_properties(texts)
    return ctx


def _reviews_and_snippets() -> tuple[IssueContext, list[str]]:
    reviews = pd.read_csv(RT_SAMPLE_CSV)["text"].astype(str).tolist()
    short = ["Although", "Spider-Ma", "Collapse", "t", "b", "y"]
    return _text_context(reviews + short), short


def test_a_one_letter_snippet_ranks_before_a_one_word_fragment() -> None:
    """The former score gave every one-word text the threshold + 1, so a one-word fragment and
    a one-letter snippet tied on their unknown word (the 'not language' z)."""
    ctx, short = _reviews_and_snippets()
    est = CorruptIssue().fit(ctx)
    n = ctx.n - len(short)
    words, letters = np.arange(n, n + 3), np.arange(n + 3, n + 6)
    assert est.flagged_[words].all() and est.flagged_[letters].all()
    assert est.scores_[letters].min() > est.scores_[words].max()
    assert est.explain(int(letters[0])).startswith("very short input")


def test_a_one_word_sentence_is_a_review_and_a_junk_word_is_not() -> None:
    """Rotten Tomatoes has real one-word reviews ("Execrable.", "Kid-friendly."): a word
    closed by sentence punctuation is not very short (each one took a corrupt place from word
    salad in the benchmark mixes); a fragment without the punctuation, a two-letter "Ok." and an
    unknown word with a full stop still are flagged."""
    reviews = pd.read_csv(RT_SAMPLE_CSV)["text"].astype(str).tolist()
    sentences = ["Execrable.", "Grueling.", "Kid-friendly.", "Exceptional!", "Don't."]
    flagged = ["Execrable", "Ok.", "zxqv.", "t."]
    est = CorruptIssue().fit(_text_context(reviews + sentences + flagged))
    n = len(reviews)
    assert not est.flagged_[n : n + len(sentences)].any()
    assert est.flagged_[n + len(sentences) :].all()
    assert est.explain(n + len(sentences) + 2).startswith(("not language", "few letters"))


def test_a_short_review_of_rare_words_in_a_small_dataset_is_language() -> None:
    """Among 300 reviews, a well-formed sentence of words no other review uses is not flagged
    'not language' (the corpus alone called "Psychologically revealing." so: its words are
    English-like under the encoder vocabulary's letter model), while garbled snippets (random
    letters, digits and symbols, some of them short real words) and random bytes still are."""
    reviews = pd.read_csv(RT_SAMPLE_CSV)["text"].astype(str).tolist()[:300]
    rare = [
        "Psychologically revealing.",
        "Compellingly watchable.",
        "Excruciatingly unfunny and pitifully unromantic.",
        "J.D. Salinger would've loved Igby.",
    ]
    garbled = ["pi #ku1fdai 5bi *pod", "jr bize if2tp#i7 3&2ub", "kq9z bcdf 7h#k mnpq zxqv"]
    garbled.append(bytes(range(0xA1, 0xC8)).decode("latin-1"))
    est = CorruptIssue().fit(_text_context(reviews + rare + garbled))
    n = len(reviews)
    assert not est.flagged_[n : n + len(rare)].any()
    assert est.flagged_[n + len(rare) :].all()
    assert (est.parts_["not language"].to_numpy()[n + len(rare) :] >= est.threshold).all()


def test_the_word_model_knows_derived_words_and_not_random_letters() -> None:
    """The encoder vocabulary's letter model: derived and rare English words (not in the
    vocabulary itself) are word-like; letters mixed with digits or symbols and consonant
    strings are not; a hyphen, apostrophe, slash or period joins two words."""
    from ogad_core.issues.wordlike import english_words

    model = english_words()
    assert model is not None and "psychologically" not in model.words
    for word in ("psychologically", "unfunny", "grueling", "kid-friendly", "would've", "j.d"):
        assert model.is_wordlike(word), word
    for word in ("kq9z", "bcdf", "7h#k", "zxqv", "ÿ¡¢", "", "--"):
        assert not model.is_wordlike(word), word
