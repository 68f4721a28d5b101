"""The issue queues in the Streamlit app (AppTest): each issue queue's header states its own
count and how its flag is decided, not the label review target."""

from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ogad_core.run.manifest import StepRecord
from ogad_core.run.rundir import RunDir
from ogad_core.testing import make_run

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
OUTLIER_RULE = "far from every other sample (test rule)"


def _with_issues(run: Path) -> None:
    """issues.parquet with 6 label flags and 3 outliers, and the issues step's record."""
    rd = RunDir(run)
    n = len(rd.read_samples())
    rows = []
    for issue, flagged in (("label", range(6)), ("outlier", (10, 11, 12))):
        for sid in range(n):
            hit = sid in flagged
            rows.append((sid, issue, float(hit), sid + 1, hit, None, "why" if hit else ""))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table.to_parquet(rd.issues_path)
    manifest = rd.load_manifest()
    types = {
        "label": {"flagged": 6, "threshold": "the review target"},
        "outlier": {"flagged": 3, "threshold": OUTLIER_RULE},
    }
    manifest.mark_done("issues", StepRecord(fingerprint="test", extra={"types": types}))
    rd.save_manifest(manifest)


def _text(at: AppTest) -> str:
    bodies = [str(getattr(e, "proto", e)) for e in at.get("html")]
    return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(bodies)))


@pytest.mark.parametrize("issue", ["outlier", "all"])
def test_an_issue_queue_states_its_own_count_and_rule(
    issue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.page_issues import ISSUE

    run = make_run(tmp_path / "run", n=60)
    _with_issues(run)
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[ISSUE] = issue
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    n = 3 if issue == "outlier" else 9
    title = "Outliers" if issue == "outlier" else "All issues"
    assert f"0 of {n} flagged reviewed · {title}: {n} flagged" in text, text[:2000]
    assert "review target" not in text
    rule = OUTLIER_RULE if issue == "outlier" else "every sample some issue type flags"
    assert rule in text
    at.session_state[ISSUE] = "label"
    at.run()
    assert "review target" in _text(at)  # the label queue keeps its target header


def test_the_duplicate_card_marks_a_member_that_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate set whose member copies a held-out file: the card's title says the set leaks
    and the member carries the leakage reason; Leakage joins the selector; the title says how
    the members matched."""
    from dashboard.page_issues import ISSUE

    run = make_run(tmp_path / "run", n=60)
    rd = RunDir(run)
    rows = []
    for sid in range(60):
        in_set = sid in (4, 5)
        leak = sid == 5
        how = "near duplicate (aligned by a shift, rotation or rescale) of #" + str(9 - sid)
        dup_why = f"{how} (set of 2)" if in_set else ""
        rows.append(
            (sid, "duplicate", float(in_set), sid + 1, in_set, 4 if in_set else None, dup_why)
        )
        why = "exact copy of held-out val/a.png: the held-out score is inflated" if leak else ""
        rows.append((sid, "leakage", float(leak), sid + 1, leak, 5 if leak else None, why))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = table["set_id"].astype("Int64")
    table.to_parquet(rd.issues_path)
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[ISSUE] = "duplicate"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    titles = " ".join(m.value for m in at.markdown)
    assert "Duplicate set #4" in titles and "leaks into the held-out split" in titles
    # the title says how the members matched (a reviewer checks an aligned copy more closely)
    shown = titles.replace("\\", "")  # markdown escapes, as the page renders them
    assert "2 samples · near duplicates (aligned by a shift, rotation or rescale)" in shown
    text = _text(at)
    assert text.count("leakage: exact copy of held-out val/a.png") == 1
    options = at.get("button_group")[0].proto.options if at.get("button_group") else []
    assert any("Leakage 1" in str(o) for o in options)


def test_a_card_with_a_why_line_does_not_repeat_the_label_issue(tmp_path: Path) -> None:
    """A card whose why line gives the label evidence leaves out the `label: ...` issue line
    (it said the same thing in three more lines and pushed Confirm below a laptop's fold);
    the other issues that flag the sample stay, each clamped on the card with its whole text
    as the tooltip; a card without a why line keeps the label line."""
    from dashboard import cards
    from dashboard.context import Context

    run = make_run(tmp_path / "run", n=40)
    _with_issues(run)
    rd = RunDir(run)
    issues = rd.read_issues()
    also_outlier = (issues["issue"] == "outlier") & (issues["sample_id"] == 0)
    issues.loc[also_outlier, ["flagged", "explanation"]] = [True, "why"]
    issues.to_parquet(rd.issues_path)
    table, _ = cards.cache.table_with_decisions(str(run))
    row = next(table[table["sample_id"] == 0].itertuples())
    ctx = cards.CardContext(Context(str(run)), "image", ["a", "b", "c"], "loss", True)
    explanation = SimpleNamespace(
        loss=9.5, margin=-0.9, grad_norm_percentile=100.0, suggested_label=None
    )
    with_why = html.unescape(cards._details(ctx, row, explanation))
    assert "label: why" not in with_why
    assert 'class="ogad-issue-line" title="outlier: why"' in with_why
    without_why = html.unescape(cards._details(ctx, row, None))
    assert "label: why" in without_why and "outlier: why" in without_why
