"""The ``corrupt`` type's very short texts: a text under ``min_words`` words is flagged, and
ranked by how short it is in characters against the data's own lengths, so a one-letter
snippet comes before a one-word review (both flagged)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV
from ogad_core.issues.base import IssueContext
from ogad_core.issues.corrupt import CorruptIssue
from ogad_core.issues.properties import text_properties


def _reviews_and_snippets() -> tuple[IssueContext, list[str]]:
    reviews = pd.read_csv(RT_SAMPLE_CSV)["text"].astype(str).tolist()
    short = ["Execrable.", "Grueling.", "Kid-friendly.", "t", "b", "y"]
    texts = reviews + short
    samples = pd.DataFrame(
        {"sample_id": np.arange(len(texts)), "label": np.zeros(len(texts)), "ref": texts}
    )
    ctx = IssueContext(samples=samples, label_names=["a", "b"], kind="text")
    ctx.inputs = text_properties(texts)
    return ctx, short


def test_a_one_letter_snippet_ranks_before_a_one_word_review() -> None:
    """The former score gave every one-word text the threshold + 1, so a one-word review and a
    one-letter snippet tied on their unknown word (the 'not language' z)."""
    ctx, short = _reviews_and_snippets()
    est = CorruptIssue().fit(ctx)
    n = ctx.n - len(short)
    words, letters = np.arange(n, n + 3), np.arange(n + 3, n + 6)
    assert est.flagged_[words].all() and est.flagged_[letters].all()
    assert est.scores_[letters].min() > est.scores_[words].max()
    assert est.explain(int(letters[0])).startswith("very short input")
