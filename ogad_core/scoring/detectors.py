"""Outlier detectors in gradient space, and the scores table they produce.

Every detector follows scikit-learn's outlier-estimator API: ``fit(X)`` then
``score_samples(X)``, where HIGHER means MORE NORMAL. The scores table turns that around:
``suspicion = -score_samples`` (HIGHER = MORE SUSPICIOUS), the convention of scores.parquet.

Built-in names (``DETECTORS``):

* ``iforest``  sklearn ``IsolationForest`` with sklearn's defaults (the paper's choice).
* ``l2``, ``l1`` the L2 / L1 norm of each gradient row (``GradientNormDetector``).
* ``lof``      sklearn ``LocalOutlierFactor`` (20 neighbours, fewer on small data); the training
  rows themselves are scored through ``negative_outlier_factor_``, never ``score_samples``.
* ``loss``     baseline, not gradients: the per-sample cross-entropy with the given label.
* ``selfconf`` baseline, not gradients: ``1 - p(given label) = 1 - exp(-loss)``.

Any other sklearn outlier estimator plugs in by import path, e.g.
``sklearn.covariance.EllipticEnvelope`` or ``my_pkg.detectors:MyDetector``.

Gradient matrices may be ``np.memmap`` arrays far larger than memory: the norm detectors and all
``score_samples`` calls run over row chunks, and IsolationForest fits on the memmap without a
copy (each tree only reads its 256 sub-sampled rows).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.utils.validation import check_is_fitted

from ogad_core._internal import (
    CHUNK_BYTES,
    import_user_module,
    one_line,
    row_chunks,
    user_code_frame,
    worker_count,
)
from ogad_core.errors import ConfigError, DataError
from ogad_core.options import DEFAULT_DETECTOR, DEFAULT_DETECTOR_REASON

try:
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # scikit-learn < 1.6

    def _sk_validate_data(est: Any, X: Any, **kwargs: Any) -> Any:
        kwargs["force_all_finite"] = kwargs.pop("ensure_all_finite")
        return est._validate_data(X, **kwargs)


__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_DETECTOR",
    "DEFAULT_DETECTOR_REASON",
    "DETECTORS",
    "MIN_CLASS_ROWS",
    "N_JOBS",
    "GradientNormDetector",
    "LossBaseline",
    "detector_name",
    "register_detector",
    "rank_scores",
    "resolve_detector",
    "check_detectors",
    "score_table",
    "suspicion_scores",
]

#: Worker threads for the detectors that take ``n_jobs`` (results do not depend on it).
N_JOBS = worker_count()
#: With ``per_class=True``, classes with fewer rows than this are not fit on their own (see
#: ``suspicion_scores``).
MIN_CLASS_ROWS = 5
#: 1.4826 * MAD estimates the standard deviation of normal data.
_MAD_TO_SD = 1.4826


def _as_matrix(X: Any, what: str = "gradients") -> np.ndarray:
    """``X`` as a 2-D numeric ndarray (a memmap stays a memmap: no copy)."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{what} must be a 2-D (n_samples, n_features) array, got shape {X.shape}")
    if X.dtype.kind not in "fiu":
        raise DataError(f"{what} must be numeric, got dtype {X.dtype}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{what} is empty (shape {X.shape})")
    return X


def _check_finite(X: np.ndarray, what: str = "gradients") -> None:
    """DataError naming the first row with NaN or inf; reads ``X`` chunk by chunk."""
    if X.dtype.kind != "f":
        return
    for rows in row_chunks(X.shape[0], X.shape[1] * X.itemsize):
        chunk = np.asarray(X[rows])
        if not np.isfinite(chunk.sum(dtype=np.float64)):
            bad = ~np.isfinite(chunk).all(axis=1)
            if bad.any():
                first = rows.start + int(np.flatnonzero(bad)[0])
                raise DataError(f"{what} contain NaN or inf (first at row {first})")


def _chunked_apply(func: Callable[[np.ndarray], np.ndarray], X: np.ndarray) -> np.ndarray:
    """``func`` applied to row chunks of ``X`` and concatenated: (N,) float64."""
    out = np.empty(X.shape[0], dtype=np.float64)
    for rows in row_chunks(X.shape[0], X.shape[1] * X.itemsize):
        out[rows] = np.asarray(func(np.asarray(X[rows])), dtype=np.float64).reshape(-1)
    return out


# ---- the detectors defined here ----------------------------------------------------------------


class GradientNormDetector(OutlierMixin, BaseEstimator):
    """Outlier score = the L2 (``ord=2``) or L1 (``ord=1``) norm of each row.

    ``score_samples(X)`` returns ``-norm`` (sklearn convention: higher = more normal). Rows are
    read in chunks of at most ``chunk_bytes`` and accumulated in float64, so a memmap is never
    loaded whole.

    Args:
        ord: 2 (Euclidean norm) or 1 (sum of absolute values).
        contamination: fraction of training rows that ``predict`` marks as outliers (-1); it
            sets ``offset_`` only and does not change the scores.
        chunk_bytes: bytes per row chunk (of the float64 copy); None = ``CHUNK_BYTES``.

    Fitted attributes: ``n_features_in_``, ``offset_`` (``decision_function = score_samples -
    offset_``).
    """

    #: The score of a row depends on that row alone (per-class fits would repeat the same work).
    _ogad_pointwise: ClassVar[bool] = True

    def __init__(
        self, *, ord: int = 2, contamination: float = 0.1, chunk_bytes: int | None = None
    ) -> None:
        self.ord = ord
        self.contamination = contamination
        self.chunk_bytes = chunk_bytes

    def _validate_params(self) -> None:
        if self.ord not in (1, 2):
            raise ConfigError(f"GradientNormDetector ord must be 1 or 2, got {self.ord!r}")
        if not 0.0 < float(self.contamination) <= 0.5:
            raise ConfigError(
                f"GradientNormDetector contamination must be in (0, 0.5], got {self.contamination}"
            )
        if self.chunk_bytes is not None and not int(self.chunk_bytes) > 0:
            raise ConfigError(
                f"GradientNormDetector chunk_bytes must be > 0, got {self.chunk_bytes}"
            )

    def _norms(self, X: np.ndarray) -> np.ndarray:
        """(N,) float64 norms of the rows of (N, D) ``X``, chunk by chunk."""
        out = np.empty(X.shape[0], dtype=np.float64)
        for rows in row_chunks(X.shape[0], X.shape[1] * 8, self.chunk_bytes):
            chunk = np.asarray(X[rows], dtype=np.float64)
            if self.ord == 2:
                out[rows] = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
            else:
                out[rows] = np.abs(chunk).sum(axis=1)
        if not np.isfinite(out).all():
            first = int(np.flatnonzero(~np.isfinite(out))[0])
            raise DataError(f"X contains NaN or inf (first at row {first})")
        return out

    def fit(self, X: np.ndarray, y: Any = None) -> GradientNormDetector:
        """Record the width of (N, D) ``X`` and the ``predict`` threshold."""
        self._validate_params()
        # float32 / float64 input (a memmap included) is used as is, without a copy; the norms
        # themselves reject NaN and inf.
        X = _sk_validate_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite=False)
        scores = -self._norms(X)
        self.offset_ = float(np.percentile(scores, 100.0 * float(self.contamination)))
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """(N,) float64 ``-norm`` of each row of (N, D) ``X``."""
        check_is_fitted(self, "offset_")
        X = _sk_validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_all_finite=False, reset=False
        )
        return -self._norms(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """(N,) ``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(N,) +1 for inliers, -1 for outliers."""
        return np.where(self.decision_function(X) < 0, -1, 1)


class LossBaseline(OutlierMixin, BaseEstimator):
    """Non-gradient baseline on the (N, 1) column of per-sample cross-entropy losses.

    ``transform="loss"``: suspicion = loss. ``transform="selfconf"``: suspicion = 1 - p(given
    label) = 1 - exp(-loss). ``score_samples`` returns the negated suspicion (higher = more
    normal). Both rank samples exactly as the loss does; they differ in scale only.

    Args:
        transform: ``loss`` or ``selfconf``.
        contamination: fraction of training rows that ``predict`` marks as outliers.
    """

    _ogad_pointwise: ClassVar[bool] = True
    #: ``suspicion_scores`` feeds this detector the samples' ``loss`` column, not the gradients.
    _ogad_input: ClassVar[str] = "loss"

    def __init__(self, *, transform: str = "loss", contamination: float = 0.1) -> None:
        self.transform = transform
        self.contamination = contamination

    def _suspicion(self, X: np.ndarray) -> np.ndarray:
        loss = _as_matrix(X, "loss").astype(np.float64)
        if loss.shape[1] != 1:
            raise DataError(f"LossBaseline takes one column of losses, got {loss.shape[1]}")
        loss = loss[:, 0]
        if not np.isfinite(loss).all():
            raise DataError("the loss column contains NaN or inf")
        if self.transform == "loss":
            return loss
        if self.transform == "selfconf":
            return -np.expm1(-loss)  # 1 - exp(-loss), exact for small losses
        raise ConfigError(
            f"LossBaseline transform must be 'loss' or 'selfconf', got {self.transform!r}"
        )

    def fit(self, X: np.ndarray, y: Any = None) -> LossBaseline:
        """Record the ``predict`` threshold from the (N, 1) losses ``X``."""
        scores = -self._suspicion(X)
        self.n_features_in_ = 1
        self.offset_ = float(np.percentile(scores, 100.0 * float(self.contamination)))
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """(N,) float64 ``-loss`` or ``-(1 - exp(-loss))``."""
        check_is_fitted(self, "offset_")
        return -self._suspicion(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.score_samples(X) - self.offset_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.where(self.decision_function(X) < 0, -1, 1)


# ---- registry ------------------------------------------------------------------------------


def _iforest(seed: int) -> IsolationForest:
    return IsolationForest(random_state=seed, n_jobs=N_JOBS)


def _lof(seed: int) -> LocalOutlierFactor:
    # n_neighbors is capped below the number of rows at fit time (see _fit_suspicion).
    return LocalOutlierFactor(n_neighbors=20, n_jobs=N_JOBS)


#: Registry: detector name -> factory(seed) returning an unfitted estimator.
DETECTORS: dict[str, Callable[[int], BaseEstimator]] = {
    "iforest": _iforest,
    "l2": lambda seed: GradientNormDetector(ord=2),
    "l1": lambda seed: GradientNormDetector(ord=1),
    "lof": _lof,
    "loss": lambda seed: LossBaseline(transform="loss"),
    "selfconf": lambda seed: LossBaseline(transform="selfconf"),
}


def register_detector(name: str, factory: Callable[[int], BaseEstimator]) -> None:
    """Add a detector to the registry under ``name`` (what ``--detector name`` then finds).

    ``factory(seed)`` returns an unfitted scikit-learn outlier estimator (``fit``,
    ``score_samples``, higher = more normal). Run :func:`ogad_core.testing.check_detector` on
    it first: the contract a registered detector must keep.
    """
    key = name.strip().lower()
    if not key or not key.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"a detector name is letters, digits, '-' and '_'; got {name!r}")
    if key in DETECTORS:
        raise ConfigError(f"a detector named {key!r} is registered already")
    DETECTORS[key] = factory


def _known() -> str:
    return ", ".join(DETECTORS)


def _import_object(path: str) -> Any:
    """The object an import path names: ``pkg.mod:Name`` or ``pkg.mod.Name``."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(
            f"unknown detector {path!r}; known: {_known()}, or an import path such as "
            "sklearn.ensemble.IsolationForest or my_module:MyDetector"
        )
    try:  # as an issue type plugin: found in the current folder, failures named by file:line
        module = import_user_module(module_name)
    except (Exception, SystemExit) as err:  # a missing module, or one that fails at import
        raise ConfigError(
            f"cannot import detector module {module_name!r}: {one_line(err)}"
        ) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _param_names(est: Any) -> set[str]:
    if hasattr(est, "get_params"):
        return set(est.get_params(deep=False))
    try:
        return set(inspect.signature(type(est)).parameters)
    except (TypeError, ValueError):
        return set()


def _check_outlier_estimator(est: Any, spec: str) -> None:
    transductive = getattr(est, "novelty", None) is False
    if not hasattr(est, "fit") or not (hasattr(est, "score_samples") or transductive):
        raise ConfigError(
            f"{spec!r} is not an outlier detector: it needs fit(X) and score_samples(X) "
            "(or negative_outlier_factor_ as LocalOutlierFactor)"
        )


def resolve_detector(spec: str | type | BaseEstimator, *, seed: int = 0) -> BaseEstimator:
    """An unfitted estimator for ``spec``.

    Args:
        spec: a registry name (``DETECTORS``), an import path to an sklearn-style outlier
            estimator class (``sklearn.ensemble.IsolationForest``, ``my_module:MyDetector``),
            such a class itself, or an estimator instance (cloned, parameters kept).
        seed: ``random_state`` for registry detectors and for imported classes that take one.
            Imported classes are built with their defaults; ``n_jobs`` is set to ``N_JOBS``
            where it defaults to None (this does not change sklearn results).

    Raises:
        ConfigError: unknown name, failed import, or not an outlier estimator.
    """
    if isinstance(spec, type):
        return _build(spec, spec.__name__, seed)
    if not isinstance(spec, str):
        _check_outlier_estimator(spec, type(spec).__name__)
        return clone(spec)
    name = spec.strip()
    if name.lower() in DETECTORS:
        return DETECTORS[name.lower()](int(seed))
    if "." not in name and ":" not in name:
        raise ConfigError(
            f"unknown detector {name!r}; known: {_known()}, or an import path such as "
            "sklearn.ensemble.IsolationForest"
        )
    return _build(_import_object(name), name, seed)


def _build(factory: Any, name: str, seed: int) -> BaseEstimator:
    """Instantiate an estimator class (or factory) with defaults, seeded where it takes one."""
    if not callable(factory):
        raise ConfigError(f"detector {name!r} is not a class or factory")
    try:
        est = factory()
    except TypeError as err:
        raise ConfigError(f"cannot build detector {name!r} with default arguments: {err}") from None
    _check_outlier_estimator(est, name)
    params = _param_names(est)
    if "random_state" in params:
        _set_param(est, "random_state", int(seed))
    if "n_jobs" in params and getattr(est, "n_jobs", 0) is None:
        _set_param(est, "n_jobs", N_JOBS)
    return est


def _set_param(est: Any, name: str, value: Any) -> None:
    if hasattr(est, "set_params"):
        est.set_params(**{name: value})
    else:
        setattr(est, name, value)


def detector_name(spec: str | type | BaseEstimator) -> str:
    """The short name used in the ``D_score`` / ``D_rank`` columns for ``spec``.

    Registry names stay as they are; an import path or an instance gives the lowercase class
    name with anything but ``[a-z0-9_]`` replaced by ``_`` (``sklearn.ensemble.IsolationForest``
    -> ``isolationforest``).
    """
    if isinstance(spec, str):
        name = spec.strip()
        if name.lower() in DETECTORS:
            return name.lower()
        name = re.split(r"[.:]", name)[-1]
    elif isinstance(spec, type):
        name = spec.__name__
    else:
        name = type(spec).__name__
    short = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not short:
        raise ConfigError(f"cannot make a column name from detector {spec!r}")
    return short


# ---- scoring ------------------------------------------------------------------------------------


def _is_pointwise(est: Any) -> bool:
    return bool(getattr(est, "_ogad_pointwise", False))


def _fit_suspicion(est: BaseEstimator, X: np.ndarray, name: str) -> np.ndarray:
    """Fit ``est`` on (n, D) ``X`` and return (n,) float64 suspicion of the same rows."""
    n = X.shape[0]
    if isinstance(est, LocalOutlierFactor):
        if n < 2:
            return np.zeros(n, dtype=np.float64)  # one row has no neighbours to compare with
        if est.n_neighbors >= n:
            est.set_params(n_neighbors=n - 1)
    try:
        est.fit(X)
    except (ValueError, np.linalg.LinAlgError) as err:
        if isinstance(err, ConfigError | DataError) or user_code_frame(err):
            raise  # ours, or the user's detector's own: named by file:line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"detector {name} cannot be fit on {n} rows: {first}") from None
    nof = getattr(est, "negative_outlier_factor_", None)
    if nof is not None:
        # Fit-and-score-the-same-data: LOF's score_samples on its own training rows would count
        # every row as its own neighbour, negative_outlier_factor_ is the right training score.
        return -np.asarray(nof, dtype=np.float64)
    if _is_pointwise(est):
        return -np.asarray(est.score_samples(X), dtype=np.float64)  # chunks internally
    return -_chunked_apply(est.score_samples, X)


def _robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and robust spread (1.4826 MAD; falls back to SD, then 1.0) of (n,) values."""
    center = float(np.median(values))
    scale = _MAD_TO_SD * float(np.median(np.abs(values - center)))
    if not scale > 0:
        scale = float(np.std(values))
    if not scale > 0:
        scale = 1.0
    return center, scale


def _group_rows(labels: np.ndarray) -> list[np.ndarray]:
    """Row indices of each distinct label, in label order."""
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse)
    return np.split(order, np.cumsum(counts)[:-1])


def _detector_input(est: Any, gradients: Any, samples: pd.DataFrame | None) -> np.ndarray:
    """The matrix ``est`` is fit on: the gradients, or the (N, 1) loss column."""
    if getattr(est, "_ogad_input", "gradients") == "loss":
        if samples is None or "loss" not in samples.columns:
            raise DataError(
                "the samples table has no 'loss' column; the loss and selfconf detectors need it"
            )
        loss = pd.to_numeric(samples["loss"], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(loss).all():
            raise DataError("the samples table's loss column has missing or non-finite values")
        return loss.reshape(-1, 1)
    if gradients is None:
        raise DataError("this detector needs the gradients, but none were given")
    return _as_matrix(gradients)


def _suspicion(
    est: BaseEstimator,
    X: np.ndarray | None,
    labels: np.ndarray | None,
    name: str,
) -> np.ndarray:
    """(N,) suspicion of a validated input; per class when ``labels`` is given."""
    assert X is not None
    if labels is None:
        return _fit_suspicion(est, X, name)
    n = X.shape[0]
    out = np.empty(n, dtype=np.float64)
    groups = _group_rows(labels)
    small = [rows for rows in groups if rows.size < MIN_CLASS_ROWS]
    pointwise = _is_pointwise(est)
    global_scores = _fit_suspicion(clone(est), X, name) if pointwise or small else np.empty(0)
    for rows in groups:
        if rows.size < MIN_CLASS_ROWS:
            continue
        if pointwise:
            raw = global_scores[rows]  # same values a fit on these rows alone would give
        else:
            raw = _fit_suspicion(clone(est), X[rows], name)
        center, scale = _robust_location_scale(raw)
        out[rows] = (raw - center) / scale
    if small:
        center, scale = _robust_location_scale(global_scores)
        rows = np.concatenate(small)
        out[rows] = (global_scores[rows] - center) / scale
    return out


def _labels_of(samples: pd.DataFrame | None, n: int) -> np.ndarray:
    if samples is None or "label" not in samples.columns:
        raise DataError("per-class scoring needs the samples table's 'label' column")
    labels = samples["label"]
    if labels.isna().any():
        raise DataError("the samples table's label column has missing values")
    if len(labels) != n:
        raise DataError(f"the samples table has {len(labels)} rows but the gradients have {n}")
    return labels.to_numpy()


def suspicion_scores(
    name_or_estimator: str | type | BaseEstimator,
    gradients: np.ndarray | None,
    samples: pd.DataFrame | None,
    *,
    per_class: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """(N,) float64 suspicion of each sample, HIGHER = MORE SUSPICIOUS.

    Args:
        name_or_estimator: see ``resolve_detector``.
        gradients: (N, D) array or memmap, one row per sample in samples' row order; may be
            None for ``loss`` / ``selfconf``.
        samples: the samples table; ``loss`` is read by ``loss`` / ``selfconf``, ``label`` by
            ``per_class=True``. May be None for a global gradient detector.
        per_class: fit one detector per given class (``samples.label``) on that class's rows.
            Raw scores of different fits are not on one scale, so each class's scores become
            robust z-scores ``(s - median) / (1.4826 * MAD)`` within the class (falling back to
            the SD, then 1, when the spread is 0): "how unusual is this sample for its class".
            Classes with fewer than ``MIN_CLASS_ROWS`` rows cannot be fit on their own; their
            rows get the score of one detector fit on all rows, as a robust z-score against
            all rows' scores, so they still rank sensibly among the rest. For pointwise
            detectors (norms, loss) the fit does not depend on the other rows, so per-class
            differs from global only through this within-class standardization.
            Each class's rows are read into memory for its fit (one class at a time).
        seed: random seed for the detector.

    Returns:
        (N,) float64, ``-score_samples`` of the fit detector (``-negative_outlier_factor_`` for
        LocalOutlierFactor), or the per-class z-scores above.
    """
    name = detector_name(name_or_estimator)
    est = resolve_detector(name_or_estimator, seed=seed)
    X = _detector_input(est, gradients, samples)
    if samples is not None and len(samples) != X.shape[0]:
        raise DataError(
            f"the samples table has {len(samples)} rows but the gradients have {X.shape[0]}"
        )
    if getattr(est, "_ogad_input", "gradients") == "gradients":
        _check_finite(X)
    labels = _labels_of(samples, X.shape[0]) if per_class else None
    return _suspicion(est, X, labels, name)


def rank_scores(scores: np.ndarray, sample_ids: np.ndarray) -> np.ndarray:
    """(N,) int64 ranks 1..N of (N,) ``scores``: 1 = highest, ties by ascending sample_id.

    NaN scores rank last. This is the ``D_rank`` column of the scores table.
    """
    scores = np.asarray(scores, dtype=np.float64)
    sample_ids = np.asarray(sample_ids)
    if scores.shape != sample_ids.shape or scores.ndim != 1:
        raise DataError(f"scores {scores.shape} and sample_ids {sample_ids.shape} must be (N,)")
    keyed = np.where(np.isnan(scores), np.inf, -scores)
    order = np.lexsort((sample_ids, keyed))
    ranks = np.empty(scores.shape[0], dtype=np.int64)
    ranks[order] = np.arange(1, scores.shape[0] + 1)
    return ranks


def score_table(
    gradients: np.ndarray | None,
    samples: pd.DataFrame,
    detectors: Sequence[str | type | BaseEstimator],
    *,
    per_class: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """The scores table: ``sample_id``, then ``D_score``, ``D_rank`` for each detector D.

    Args:
        gradients: (N, D) array or memmap in the samples' row order (None if only ``loss`` /
            ``selfconf`` are asked for).
        samples: the samples table (N rows; ``sample_id`` if present, else 0..N-1).
        detectors: names or import paths (see ``resolve_detector``); repeated names count once.
        per_class: see ``suspicion_scores``.
        seed: random seed for the detectors.

    Returns:
        DataFrame with ``sample_id``; per detector ``D_score`` (float64, higher = more
        suspicious) and ``D_rank`` (int64, 1..N, 1 = most suspicious, ties by sample_id).
    """
    if samples is None:
        raise DataError("score_table needs the samples table")
    n = len(samples)
    if "sample_id" in samples.columns:
        sample_ids = samples["sample_id"].to_numpy()
    else:
        sample_ids = np.arange(n, dtype=np.int64)
    estimators = _resolve_all(detectors, seed)
    X = _gradient_matrix(gradients, n) if any(map(_needs_gradients, estimators.values())) else None
    labels = _labels_of(samples, n) if per_class else None
    columns: dict[str, np.ndarray] = {"sample_id": sample_ids}
    for name, est in estimators.items():
        inputs = X if _needs_gradients(est) else _detector_input(est, None, samples)
        scores = _suspicion(est, inputs, labels, name)
        columns[f"{name}_score"] = scores
        columns[f"{name}_rank"] = rank_scores(scores, sample_ids)
    return pd.DataFrame(columns)


def _needs_gradients(est: Any) -> bool:
    return getattr(est, "_ogad_input", "gradients") == "gradients"


def _resolve_all(
    detectors: Sequence[str | type | BaseEstimator] | str, seed: int
) -> dict[str, BaseEstimator]:
    """Column name -> estimator; a repeated name counts once, two specs for one name fail."""
    if isinstance(detectors, str):
        detectors = [d for d in detectors.split(",") if d.strip()]
    if not detectors:
        raise ConfigError(f"no detector given; known: {_known()}", param="detectors")
    estimators: dict[str, BaseEstimator] = {}
    specs: dict[str, Any] = {}
    for spec in detectors:
        name = detector_name(spec)
        if name in estimators:
            old = specs[name]
            if (
                isinstance(spec, str)
                and isinstance(old, str)
                and spec.strip().lower() == old.strip().lower()
            ):
                continue
            raise ConfigError(
                f"two detectors share the column name {name!r}: {specs[name]!r} and {spec!r}"
            )
        estimators[name] = resolve_detector(spec, seed=seed)
        specs[name] = spec
    return estimators


def check_detectors(detectors: Sequence[str | type | BaseEstimator] | str, seed: int = 0) -> None:
    """Resolve ``detectors`` as :func:`score_table` will (ConfigError for an unknown name, a
    plugin that cannot be imported or built, two sharing a column): a bad ``--detector``
    stops before the gradients are computed or loaded."""
    _resolve_all(detectors, seed)


def _gradient_matrix(gradients: np.ndarray | None, n: int) -> np.ndarray | None:
    """The (N, D) gradients, checked: present, N rows, finite."""
    if gradients is None:
        raise DataError("the gradient detectors need the gradients, but none were given")
    X = _as_matrix(gradients)
    if X.shape[0] != n:
        raise DataError(f"the samples table has {n} rows but the gradients have {X.shape[0]}")
    _check_finite(X)
    return X
