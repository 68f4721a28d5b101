"""The Summary's tables (issue 20: the page paints without the data grid's code): the sortable
HTML table element's data, and the Summary drawing every table with it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import pages
from dashboard.table_component import BAR, PERCENT, table_data
from dashboard.testing import open_page, page_tables
from ogad_core.review.store import ReviewStore
from ogad_core.testing import make_run, write_evaluation

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


def test_table_data_keeps_raw_values_for_sorting_and_formats_the_text() -> None:
    frame = pd.DataFrame(
        {
            "class": ["a", "b"],
            "count": np.array([12345, 7], dtype=np.int64),
            "share": [0.25, 0.75],
            "noise": [0.123, math.nan],
            "AUROC": [0.98765, 0.5],
            "other": [1234.5678, 0.000123],
            "seen": [True, False],
        },
        index=[10, 11],  # left out
    )
    data = table_data(frame, {"share": BAR, "noise": PERCENT, "AUROC": "%.3f"})
    assert data["columns"] == list(frame.columns)
    assert data["bars"] == ["share"]
    assert data["values"] == [
        ["a", 12345, 0.25, 0.123, 0.98765, 1234.5678, "True"],
        ["b", 7, 0.75, None, 0.5, 0.000123, "False"],
    ]
    assert data["shown"] == [
        ["a", "12,345", "25.0%", "12.3%", "0.988", "1,235", "True"],
        ["b", "7", "75.0%", "–", "0.500", "0.000123", "False"],
    ]


def test_the_summary_draws_its_tables_without_the_data_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "img", kind="image", n=60)
    write_evaluation(run, retrain=True)
    samples = pd.read_parquet(run / "samples.parquet")
    ReviewStore(run).confirm(int(samples["sample_id"][0]), reviewer="alice")
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    at = AppTest.from_file(APP, default_timeout=90).run()
    open_page(at, pages.SUMMARY).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.dataframe  # st.dataframe's grid code is 1.5 MB for the browser to load
    tables = {tuple(t.columns): t for t in page_tables(at)}
    by_class = next(t for cols, t in tables.items() if cols[0] == "given label")
    assert list(by_class["given label"]) == ["circle", "square", "cross"]
    assert by_class["total"].sum() == len(samples) and by_class["confirmed"].sum() == 1
    health = next(t for cols, t in tables.items() if "est. noise" in cols)
    counts = samples["label_name"].value_counts()
    assert dict(zip(health["class"], health["count"], strict=True)) == counts.to_dict()
    assert "model agrees" in health.columns
    history = next(t for cols, t in tables.items() if "reviewer" in cols)
    assert list(history["reviewer"]) == ["alice"]
    assert any("AUROC" in cols for cols in tables)  # the evaluation's detection table
