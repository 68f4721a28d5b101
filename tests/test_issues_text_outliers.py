"""The outlier type on text: sentences from another domain (licence clauses) among real Rotten
Tomatoes snippets, measured in the real encoder's last layer as in a run, and snippets with no
content to place (a word said over and over, a few letters, digits only, markup only) that the
``corrupt`` type flags: those are the corrupt type's first and rank last in the outlier queue,
so they take no place of a sentence from elsewhere (on the held-out mix's kept runs they took
7-11 of the 40 places a seed, ahead of licence clauses, and markup-only snippets up to 8 more,
flagged after the others). A snippet flagged corrupt for few letters (a code line, a log line
may come from elsewhere) keeps its outlier flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ogad_core.data.rotten_tomatoes import RT_SAMPLE_CSV
from ogad_core.issues.base import IssueContext
from ogad_core.issues.outlier import OutlierIssue
from ogad_core.issues.properties import text_properties
from ogad_core.issues.table import fit_issue_types

#: clauses in the style of software licences (the held-out mix's ``license`` kind; 4 of them
#: among the 600 reviews, the mix's share: more would be each other's k = 10 nearest)
LICENCE = [
    "You may convey verbatim copies of the Program's source code as you receive it.",
    "The licensee is addressed as you, and each licensee may be an individual or organization.",
    "This License explicitly affirms your unlimited permission to run the unmodified Program.",
    "You must cause any work that you distribute to be licensed as a whole at no charge.",
    "Each contributor hereby grants you a perpetual, worldwide, non-exclusive patent license.",
    "The software is provided as is, without warranty of any kind, express or implied.",
    "Redistributions in binary form must reproduce the above copyright notice and disclaimer.",
    "In no event shall the authors or copyright holders be liable for any claim or damages.",
    "Permission is hereby granted, free of charge, to any person obtaining a copy of the files.",
    "Neither the name of the copyright holder nor the names of its contributors may be used.",
]
#: lines of code and package descriptions: with six of the clauses, three groups from other
#: sources, each of them its own neighbourhood at k = 10 (as the held-out mix's 40 sentences of
#: three software sources among 3,120 texts at k = 31)
CODE = [
    "for key, value in sorted(options.items()):",
    "if not isinstance(path, str): raise TypeError(path)",
    "return [line.strip() for line in handle if line]",
    "self.buffer = bytearray(size) if size else None",
    "except KeyError: logger.warning('missing %s', name)",
    "while offset < len(data): offset += chunk",
]
PACKAGE = [
    "This package contains the shared library for reading compressed archives.",
    "Development files for the XML parsing library, including headers and static libraries.",
    "A lightweight daemon that synchronises the system clock with network time servers.",
    "Command-line utility to convert between image formats and resize photos in batch.",
    "Python bindings for the cryptographic primitives of the underlying C library.",
    "Documentation for the build system, in HTML and manual page formats.",
]
#: snippets with no content to place (the corrupt type's "repetitive", "very short", and "few
#: letters" without one letter outside markup)
NO_CONTENT = [
    "0 201 858 55394 0852",
    "4417 90 3 ## 88",
    "<p> [b] </p> &amp; [/b]",
    '<div> </div> <span class="x"> &nbsp; {{ }}',
    "[url=] <!-- --> [/url] <br/>",
    "okay okay okay okay okay okay",
    "boo boo boo boo boo boo boo",
    "zzz zzz zzz zzz zzz",
    "la la la la la la la la",
    "xq",
    "zeu",
]


def _context(texts: list[str], labels: list[int]) -> IssueContext:
    """A text context with the real encoder's embeddings and text properties, as a run's."""
    from ogad_core.engine.text_encoder import encode_texts, layer_blocks

    samples = pd.DataFrame({"sample_id": np.arange(len(texts)), "label": labels, "ref": texts})
    ctx = IssueContext(samples=samples, label_names=["rotten", "fresh"], kind="text")
    ctx.embeddings = encode_texts(texts, encoder=None, progress=False)
    ctx.embedding_blocks = layer_blocks(None, ctx.embeddings.shape[1])  # as a run reads it
    ctx.inputs = text_properties(texts)
    return ctx


@pytest.fixture(scope="module")
def snippets() -> tuple[IssueContext, np.ndarray, np.ndarray]:
    """The shipped sample's 600 reviews, the licence clauses and the no-content snippets (both
    under random labels); the context with the encoder's embeddings; (licence rows, no-content
    rows)."""
    table = pd.read_csv(RT_SAMPLE_CSV)
    reviews = table["text"].astype(str).tolist()
    texts = reviews + LICENCE[:4] + NO_CONTENT
    rng = np.random.default_rng(0)
    labels = (table["label"].astype(str) == "fresh").astype(int).tolist()
    labels += rng.integers(0, 2, size=4 + len(NO_CONTENT)).tolist()
    ctx = _context(texts, labels)
    n = len(reviews)
    licence = np.arange(n, n + 4)
    return ctx, licence, np.arange(licence[-1] + 1, len(texts))


def test_snippets_with_no_content_rank_last_and_take_no_clause_place(snippets) -> None:
    ctx, licence, empty = snippets
    ctx.results.clear()
    corrupt, outlier = fit_issue_types(ctx, ["corrupt", OutlierIssue()])
    assert corrupt.flagged_[empty].all()
    assert outlier.last_[empty].all() and not outlier.flagged_[empty].any()
    assert outlier.scores_[empty].max() < outlier.scores_[~outlier.last_].min()
    assert outlier.explain(int(empty[0])).endswith("corrupt first (ranked last here)")
    assert outlier.scores_[empty].max() < outlier.scores_[licence].min()
    rank = np.argsort(np.argsort(-outlier.scores_, kind="stable"))
    assert (rank[licence] < 0.05 * ctx.n).all()  # among the first 5% of the queue
    assert not corrupt.deferred_[empty].any()  # they rank in full in the corrupt queue


def test_a_text_flagged_for_its_letters_keeps_its_outlier_flag(snippets) -> None:
    """A clause flagged corrupt for few letters (as a code line) is not the corrupt type's
    first by its content: still flagged here, after the other flags."""
    ctx, licence, _ = snippets
    ctx.results.clear()
    table = ctx.inputs.copy()
    ctx.inputs = table.assign(letters=np.where(np.isin(np.arange(ctx.n), licence[:2]), 0.1, 1.0))
    try:
        corrupt, outlier = fit_issue_types(ctx, ["corrupt", OutlierIssue(threshold=0.0)])
    finally:
        ctx.inputs = table
    assert corrupt.flagged_[licence[:2]].all()
    assert outlier.flagged_[licence[:2]].all() and not outlier.last_[licence[:2]].any()
    assert outlier.deferred_[licence[:2]].all()


def test_a_group_from_another_source_does_not_mask_itself() -> None:
    """Six sentences of each of three other sources among the 600 reviews: each source's
    sentences are each other's nearest, so among all samples a clause's k = 10 nearest are
    mostly its group's (measured against all samples, 221 of the 3,600 clause-review pairs
    put the review first: an AUROC of 0.94); measured against the bulk (the samples whose first
    distance is not in its upper tail) the group is far from the reviews again (72 pairs).
    The reviews' own tail stays unflagged."""
    table = pd.read_csv(RT_SAMPLE_CSV)
    reviews = table["text"].astype(str).tolist()
    texts = reviews + LICENCE[:6] + CODE + PACKAGE
    rng = np.random.default_rng(0)
    labels = (table["label"].astype(str) == "fresh").astype(int).tolist()
    labels += rng.integers(0, 2, size=len(texts) - len(reviews)).tolist()
    ctx = _context(texts, labels)
    _, outlier = fit_issue_types(ctx, ["corrupt", OutlierIssue()])
    n = len(reviews)
    scores, clauses = outlier.scores_, np.arange(n, n + 6)
    auroc = (scores[clauses][:, None] > scores[:n][None, :]).mean()
    assert auroc >= 0.97
    group = np.arange(n, len(texts))
    assert (scores[group][:, None] > scores[:n][None, :]).mean() >= 0.99
    assert outlier.flagged_[:n].sum() <= 0.01 * n  # a clean review is rarely flagged
