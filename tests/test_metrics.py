"""Detection metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ogad_core.errors import ConfigError, DataError
from ogad_core.scoring.metrics import detection_metrics, evaluation_table, expected_hits_at_k

# 10 samples, flipped at positions 0, 2 and 9; the last five tie at 0.
SCORES = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
FLIPPED = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)


def test_small_example_by_hand():
    m = detection_metrics(SCORES, FLIPPED)
    # AUROC: flipped 5 beats all 7 clean; 3 beats 2, 1 and the four 0s (6); the flipped 0 ties
    # with four clean 0s (4 * 0.5) -> 15 / 21.
    assert m["auroc"] == pytest.approx(15 / 21)
    # AP: thresholds 5 (P=1, R=1/3), 3 (P=2/3, R=2/3), 0 (P=3/10, R=1).
    assert m["average_precision"] == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3 + 1 / 3 * 3 / 10)
    # top ceil(p * 10) = 1 sample for 1%, 5% and 10%: the 5, flipped.
    assert m["precision_at_1pct"] == 1.0
    assert m["precision_at_5pct"] == 1.0
    assert m["precision_at_10pct"] == 1.0
    # top n_flipped = 3 are 5, 4, 3: two flipped.
    assert m["recall_at_n_flipped"] == pytest.approx(2 / 3)
    assert (m["n"], m["n_flipped"], m["noise_rate"]) == (10, 3, pytest.approx(0.3))


def test_top_fractions_use_ceil():
    n = 150  # 1% -> 2 rows, 5% -> 8 rows, 10% -> 15 rows
    scores = np.arange(n, 0, -1, dtype=float)  # row i has rank i + 1
    flipped = np.zeros(n, dtype=bool)
    flipped[[0, 3, 5, 7, 20, 149]] = True
    m = detection_metrics(scores, flipped)
    assert m["precision_at_1pct"] == pytest.approx(1 / 2)
    assert m["precision_at_5pct"] == pytest.approx(4 / 8)
    assert m["precision_at_10pct"] == pytest.approx(4 / 15)
    assert m["recall_at_n_flipped"] == pytest.approx(3 / 6)
    assert m["auroc"] > 0.5


def test_sample_order_does_not_matter():
    perm = np.random.default_rng(0).permutation(len(SCORES))
    assert detection_metrics(SCORES[perm], FLIPPED[perm]) == detection_metrics(SCORES, FLIPPED)


def test_ties_count_their_expected_share():
    m = detection_metrics(np.zeros(10), FLIPPED)
    assert m["auroc"] == 0.5
    for key in (
        "precision_at_1pct",
        "precision_at_5pct",
        "precision_at_10pct",
        "recall_at_n_flipped",
    ):
        assert m[key] == pytest.approx(0.3)
    # top 7 of SCORES: 5, 4, 3, 2, 1 (two flipped) + 2 of the five tied 0s (one flipped among 5)
    assert expected_hits_at_k(SCORES, FLIPPED, 7) == pytest.approx(2 + 2 * 1 / 5)


def test_perfect_and_inverted_detectors():
    flipped = np.array([True, True, False, False, False, False])
    good = detection_metrics([9, 8, 1, 2, 3, 4], flipped)
    assert good["auroc"] == 1.0 and good["average_precision"] == 1.0
    assert good["recall_at_n_flipped"] == 1.0
    bad = detection_metrics([1, 2, 9, 8, 7, 6], flipped)
    assert bad["auroc"] == 0.0 and bad["recall_at_n_flipped"] == 0.0


@pytest.mark.parametrize(
    "flags",
    [
        None,
        np.zeros(10, dtype=bool),
        np.ones(10, dtype=bool),
        pd.Series([True, None] * 5, dtype=object),
    ],
)
def test_unknown_noise_is_a_clear_config_error(flags):
    with pytest.raises(ConfigError, match="needs known noise") as info:
        detection_metrics(SCORES, flags)
    assert "\n" not in str(info.value)


def test_bad_inputs():
    with pytest.raises(DataError, match="10 scores"):
        detection_metrics(SCORES, FLIPPED[:5])
    with pytest.raises(DataError, match="NaN"):
        detection_metrics(np.where(FLIPPED, np.nan, 1.0), FLIPPED)
    with pytest.raises(ConfigError, match="true/false"):
        detection_metrics(SCORES, np.arange(10))


def test_evaluation_table_one_row_per_detector():
    scores_df = pd.DataFrame(
        {
            "sample_id": np.arange(10),
            "good_score": SCORES,
            "good_rank": np.arange(1, 11),
            "flat_score": np.zeros(10),
            "flat_rank": np.arange(1, 11),
        }
    )
    table = evaluation_table(scores_df, FLIPPED)
    assert table["detector"].tolist() == ["good", "flat"]
    assert table.iloc[0].drop("detector").to_dict() == pytest.approx(
        detection_metrics(SCORES, FLIPPED)
    )
    assert table.loc[1, "auroc"] == 0.5
    # the samples table, shuffled, is matched on sample_id
    samples = pd.DataFrame({"sample_id": np.arange(10), "is_flipped": FLIPPED}).iloc[::-1]
    pd.testing.assert_frame_equal(evaluation_table(scores_df, samples), table)
    with pytest.raises(ConfigError, match="needs known noise"):
        evaluation_table(scores_df, samples.drop(columns=["is_flipped"]))
    with pytest.raises(DataError, match="no D_score"):
        evaluation_table(scores_df[["sample_id"]], FLIPPED)
