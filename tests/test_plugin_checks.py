"""The contract checks a plugin author runs: ``check_detector`` (in the spirit of
scikit-learn's ``check_estimator``) and ``check_data_source``; and the detector registry a new
detector (or issue type) joins with one ``register_detector`` call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, OutlierMixin

from ogad_core.data.sources import SOURCES
from ogad_core.errors import ConfigError
from ogad_core.scoring.detectors import DETECTORS, register_detector, score_table
from ogad_core.testing import check_data_source, check_detector


class NormDetector(OutlierMixin, BaseEstimator):
    """Higher score_samples = more normal: minus the row norm (what ogad expects)."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def score_samples(self, X):
        return -np.linalg.norm(np.asarray(X, dtype=np.float64), axis=1)


class BackwardsDetector(NormDetector):
    """Higher = MORE suspicious: the convention turned around."""

    def score_samples(self, X):
        return -super().score_samples(X)


class RestlessDetector(NormDetector):
    """Unseeded noise: two runs with one seed disagree."""

    def score_samples(self, X):
        return super().score_samples(X) + np.random.default_rng().normal(0, 1e-3, len(X))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_builtin_detector_keeps_the_contract(name: str) -> None:
    check_detector(name)


def test_an_imported_detector_is_checked_the_same_way() -> None:
    check_detector(NormDetector)
    check_detector("sklearn.covariance.EllipticEnvelope")


@pytest.mark.parametrize(
    ("detector", "message"),
    [
        (BackwardsDetector, "HIGHER for MORE NORMAL"),
        (RestlessDetector, "same seed must give the same scores"),
        (object, "not an outlier detector"),
    ],
)
def test_check_detector_names_the_broken_rule(detector: type, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_detector(detector)


@pytest.fixture
def registered() -> Iterator[None]:
    register_detector("norm", lambda seed: NormDetector())
    try:
        yield
    finally:
        DETECTORS.pop("norm", None)


def test_a_registered_detector_scores_by_name(registered: None) -> None:
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(30, 4))
    grads[3] += 10
    import pandas as pd

    table = score_table(grads, pd.DataFrame({"label": np.zeros(30, int)}), ["norm"])
    assert int(table["norm_rank"][3]) == 1
    check_detector("norm")
    with pytest.raises(ConfigError, match="registered already"):
        register_detector("norm", lambda seed: NormDetector())
    with pytest.raises(ConfigError, match="letters, digits"):
        register_detector("my.module:Thing", lambda seed: NormDetector())


@pytest.mark.parametrize("spec", ["digits", "moons"])
def test_builtin_sources_keep_the_contract(spec: str, tmp_path: Path) -> None:
    source = next(s for s in SOURCES if s.name == spec)
    check_data_source(source, spec, tmp_path)


def test_check_data_source_names_the_broken_rule(tmp_path: Path) -> None:
    moons = next(s for s in SOURCES if s.name == "moons")
    with pytest.raises(ConfigError, match="does not match its own spec"):
        check_data_source(moons, "digits", tmp_path)
    with pytest.raises(ConfigError, match="not a DataSource"):
        check_data_source(object(), "x", tmp_path)

    class OddKind(type(moons)):  # type: ignore[misc]
        name = "odd"

        def matches(self, spec: str) -> bool:
            return spec == "odd"

        def load(self, spec, options):
            from dataclasses import replace

            return replace(super().load("moons", options), kind="sound")

    with pytest.raises(ConfigError, match="data kind 'sound' is not registered"):
        check_data_source(OddKind(), "odd", tmp_path)
