"""The review target as an estimate with its range, and the queue that goes on past it while the
reviewer's decisions keep confirming flags (ogad_core.scoring.target)."""

from __future__ import annotations

import numpy as np
import pytest

from ogad_core.scoring.target import (
    KEEP_GOING_BLOCK,
    ReviewTarget,
    queue_length,
    rate_interval,
)


def test_the_interval_covers_the_rate_and_narrows_with_more_samples() -> None:
    small, large = rate_interval(0.05, 300), rate_interval(0.05, 50_000)
    assert small[0] < 0.05 < small[1] and large[0] < 0.05 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 5
    assert rate_interval(0.0, 100)[0] == 0.0 and rate_interval(0.0, 100)[1] > 0
    # an independent check: the normal approximation is close for a large n
    half = 1.96 * np.sqrt(0.1 * 0.9 / 50_000)
    assert rate_interval(0.1, 50_000) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-4)
    target = ReviewTarget(17, 0.017, "confident_joint", "", n_samples=1000)
    low, high = target.interval
    assert low < 17 < high


def test_the_queue_goes_on_while_recent_decisions_confirm_and_stops_when_they_reject() -> None:
    n = 300
    quiet = queue_length(10, 0, np.zeros(0, dtype=bool), n)
    assert quiet.n == 10 and not quiet.extended and "grows past it" in quiet.reason
    # 29 of the top 30 are flips, the estimate says 10: the queue keeps ahead of the reviewer
    flips = np.ones(10, dtype=bool)
    for reviewed in (10, 20, 29):
        length = queue_length(10, reviewed, flips, n)
        assert length.n == reviewed + KEEP_GOING_BLOCK and length.extended
        assert "10 of your last 10 decisions confirmed" in length.reason
    # half the latest decisions still confirm: on; fewer: the estimate stands again
    assert queue_length(10, 30, np.array([True, False] * 5), n).n == 40
    mostly_fine = np.array([True] * 4 + [False] * 6)
    stop = queue_length(10, 30, mostly_fine, n)
    assert stop.n == 10 and "stands" in stop.reason
    # far from the end of a long queue nothing changes; never past the run
    assert queue_length(200, 20, flips, n).n == 200
    assert queue_length(10, 295, flips, n).n == n


def test_with_a_step_the_queue_grows_a_block_at_a_time_and_stays_ahead() -> None:
    n, flips = 300, np.ones(KEEP_GOING_BLOCK, dtype=bool)
    lengths = [queue_length(10, r, flips, n, step=KEEP_GOING_BLOCK).n for r in range(1, 40)]
    assert all(length >= r + KEEP_GOING_BLOCK for r, length in enumerate(lengths, start=1))
    assert {(length - 10) % KEEP_GOING_BLOCK for length in lengths} == {0}
    assert len(set(lengths)) == 4  # 20, 30, 40, 50: a new length once per 10 decisions
    assert "at least 10 cards ahead" in queue_length(10, 20, flips, n, step=10).reason
    assert queue_length(10, 295, flips, n, step=10).n == n


def test_the_header_and_the_report_say_the_target_in_one_text() -> None:
    """A clean run's estimate (2 of 1,797) lies below the queue's shortest length: the target
    is named as that minimum beside the estimate and its range, never "≈ 10 (95% range 0-8)";
    an estimate above the minimum reads "≈ 180 (95% range ...)". The dashboard's header and
    the HTML report's tile say it in one text (``ReviewTarget.describe``), the tile without the
    number it shows beside (the header: tests/test_dashboard_apptest.py's target test)."""
    from ogad_core.reporting.report import _target_tile
    from ogad_core.scoring.target import MIN_TARGET, ReviewTarget

    clean = ReviewTarget(MIN_TARGET, 2 / 1797, "confident_joint", "", n_samples=1797)
    low, high = clean.interval
    assert high < MIN_TARGET
    words = f"its minimum (estimate ≈ 2, 95% range {low}–{high})"
    assert clean.describe() == f"review target {MIN_TARGET}, {words}"
    assert _target_tile(clean) == (f"review target, {words}", MIN_TARGET)
    noisy = ReviewTarget(180, 0.1, "confident_joint", "", n_samples=1797)
    low, high = noisy.interval
    assert not noisy.at_minimum
    assert noisy.describe() == f"review target ≈ 180 (95% range {low}–{high})"
    assert noisy.describe(more="; x") == f"review target ≈ 180 (95% range {low}–{high}; x)"
    assert _target_tile(noisy) == (f"review target (95% range {low}–{high})", 180)
