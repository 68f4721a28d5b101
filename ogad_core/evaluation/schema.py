"""The ``evaluation.json`` report as typed dataclasses. Torch-free (the dashboard reads it).

One schema for the writer (``ogad evaluate``), the dashboard's evaluation view and the
benchmarks. :meth:`EvaluationReport.to_json` gives the JSON object,
:meth:`EvaluationReport.from_json` validates one (pydantic, strict types: a number is never
read from a string or a bool).
:func:`read_report` reads a run's file leniently: the detection table is required, a malformed
optional section (compute, baselines, retrain, ...) is dropped and named in ``problems``.

Versions: 2 (this layout) and 1 (the first writer: the same keys, without ``notes``; rows may
lack ``kind``) are read; a newer version raises :class:`ReportError` with ``stale=True``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError

from ogad_core._internal import write_json_atomic
from ogad_core.errors import RunDirError
from ogad_core.run.rundir import EVALUATION

__all__ = [
    "AUROC_MARGIN",
    "BASELINES",
    "EVALUATION_JSON",
    "NON_GRADIENT",
    "READABLE_VERSIONS",
    "REFERENCES",
    "REFERENCE_LABELS",
    "REPORT_VERSION",
    "SECTION_NAMES",
    "AccuracySummary",
    "BaselineInfo",
    "Baselines",
    "CleanlabInfo",
    "ComputeCost",
    "DataInfo",
    "DetectionRow",
    "EvaluationReport",
    "MachineInfo",
    "ModelInfo",
    "ReferenceRow",
    "ReportError",
    "ReportRead",
    "RetrainResults",
    "TracinInfo",
    "TrimRow",
    "mean_std",
    "method_kind",
    "read_report",
]

#: the report ``ogad evaluate`` writes into the run directory (``RunDir.evaluation_path``)
EVALUATION_JSON = EVALUATION
#: the schema version this code writes, and every version it reads
REPORT_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: methods added by ``--baselines`` (columns of scores.parquet like the detectors')
BASELINES = ("cleanlab", "tracin")
#: methods that do not score outliers of the gradient embeddings
NON_GRADIENT = frozenset({"loss", "selfconf", *BASELINES})
#: the quality bar: the best gradient detector's AUROC at most this far below cleanlab's
AUROC_MARGIN = 0.01
#: the retraining references, in report order, and how the report names them
REFERENCES = ("none", "oracle_drop_flipped", "oracle_clean_labels")
REFERENCE_LABELS = {
    "none": "no trimming",
    "oracle_drop_flipped": "oracle: drop exactly the flipped samples",
    "oracle_clean_labels": "oracle: all samples with their true labels",
    "random": "random trimming (same size)",
}


def method_kind(name: str) -> str:
    """``gradient``, ``loss-based`` or ``baseline``: what a scored method looks at."""
    if name not in NON_GRADIENT:
        return "gradient"
    return "baseline" if name in BASELINES else "loss-based"


def mean_std(entry: AccuracySummary, spec: str = ".4f") -> str:
    """``mean ± std`` (``mean`` alone for one seed, ``-`` when unknown)."""
    if entry.mean is None:
        return "-"
    text = format(entry.mean, spec)
    return text if entry.std is None else f"{text} ± {format(entry.std, spec)}"


class ReportError(RunDirError):
    """An evaluation.json this code cannot use; ``stale`` when a newer ogad wrote it."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


# ---- sections -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class DetectionRow:
    """One scored method's detection quality (``scoring.metrics.detection_metrics``) and cost.

    ``precision_at_Kpct`` are the keys of ``scoring.metrics.TOP_FRACTIONS``; ``seconds`` is
    the method alone, ``total_seconds`` includes training the model and its gradients.
    """

    detector: str
    kind: str = ""
    auroc: float
    average_precision: float | None = None
    precision_at_1pct: float | None = None
    precision_at_5pct: float | None = None
    precision_at_10pct: float | None = None
    recall_at_n_flipped: float | None = None
    n: int | None = None
    n_flipped: int | None = None
    noise_rate: float | None = None
    seconds: float | None = None
    total_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.kind:  # version 1 rows may lack it
            self.kind = method_kind(self.detector)

    @classmethod
    def from_metrics(
        cls, name: str, metrics: Mapping[Any, Any], *, digits: int | None = None
    ) -> DetectionRow:
        """A row from one ``evaluation_table`` record (``detection_metrics``' keys).

        Floats are rounded to ``digits`` (None: kept); non-finite values become None.
        """
        values: dict[str, Any] = {}
        for key, value in metrics.items():
            if isinstance(value, float | np.floating):
                finite = math.isfinite(value)
                value = float(value) if digits is None else round(float(value), digits)
                values[str(key)] = value if finite else None
            else:
                values[str(key)] = int(value)
        return cls(detector=name, kind=method_kind(name), **values)

    def precision_at(self) -> dict[float, float | None]:
        """{percent: precision among the top percent%} (1, 5, 10)."""
        return {
            1.0: self.precision_at_1pct,
            5.0: self.precision_at_5pct,
            10.0: self.precision_at_10pct,
        }


@dataclass(kw_only=True)
class DataInfo:
    """The evaluated samples: data spec, sizes and the injected noise (manifest's ``data``)."""

    spec: str | None = None
    kind: str | None = None
    n_train: int
    n_test: int | None = None
    n_classes: int | None = None
    noise: dict[str, Any] | None = None
    n_flipped: int


@dataclass(kw_only=True)
class ModelInfo:
    """The run's model (JSON key ``class`` for :attr:`model_class`)."""

    model_class: Annotated[str | None, Field(alias="class")] = None
    recipe: str | None = None
    test_accuracy: float | None = None
    params: str | None = None
    n_checkpoints: int = 1


@dataclass(kw_only=True)
class MachineInfo:
    """Where the evaluation ran (torch fields only when it trained)."""

    cpus: int | None = None
    platform: str | None = None
    python: str | None = None
    device: str | None = None
    torch: str | None = None
    torch_threads: int | None = None


@dataclass(kw_only=True)
class ComputeCost:
    """How the seconds were measured, and the quality bar (best gradient detector vs cleanlab).

    The ``best_gradient_*`` / ``cleanlab_*`` fields are None when the report has no gradient
    detector or no cleanlab row.
    """

    train_seconds: float | None = None
    train_seconds_source: str | None = None
    gradient_seconds: float | None = None
    gradient_seconds_source: str | None = None
    seconds_is: str | None = None
    total_seconds_is: str | None = None
    best_gradient_detector: str | None = None
    best_gradient_auroc: float | None = None
    best_gradient_total_seconds: float | None = None
    cleanlab_auroc: float | None = None
    cleanlab_total_seconds: float | None = None
    auroc_gap_vs_cleanlab: float | None = None
    within_0_01_of_cleanlab_or_better: bool | None = None
    cleanlab_over_best_gradient_compute: float | None = None
    cleanlab_over_best_gradient_compute_same_load: float | None = None

    @property
    def has_verdict(self) -> bool:
        """Both sides of the quality bar are known."""
        return self.best_gradient_auroc is not None and self.cleanlab_auroc is not None


@dataclass(kw_only=True)
class BaselineInfo:
    """How a baseline was computed (``method``), or why it was ``skipped``."""

    method: str | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    #: sha256 prefix of its score column: later evaluations keep this info while it matches
    score_digest: str | None = None


@dataclass(kw_only=True)
class CleanlabInfo(BaselineInfo):
    """cleanlab on K-fold cross-validated predicted probabilities."""

    folds: int | None = None
    seconds_cv_training: float | None = None
    seconds_cleanlab: float | None = None
    seconds: float | None = None
    cv_accuracy_on_given_labels: float | None = None
    n_label_issues: int | None = None
    label_issues_precision: float | None = None
    label_issues_recall: float | None = None


@dataclass(kw_only=True)
class TracinInfo(BaselineInfo):
    """TracIn self-influence over the stored checkpoint gradients."""

    checkpoints: int | None = None
    lr: float | None = None
    seconds_sum: float | None = None


@dataclass(kw_only=True)
class Baselines:
    """The baselines of ``--baselines`` (None where not computed)."""

    cleanlab: CleanlabInfo | None = None
    tracin: TracinInfo | None = None

    def items(self) -> list[tuple[str, BaselineInfo]]:
        """[(name, info)] of the baselines present, cleanlab first."""
        found: list[tuple[str, BaselineInfo | None]] = [
            ("cleanlab", self.cleanlab),
            ("tracin", self.tracin),
        ]
        return [(name, info) for name, info in found if info is not None]


@dataclass(kw_only=True)
class AccuracySummary:
    """Held-out test accuracy of one retraining over the seeds."""

    accuracy: list[float | None] = field(default_factory=list)
    mean: float | None = None
    std: float | None = None


@dataclass(kw_only=True)
class ReferenceRow(AccuracySummary):
    """A reference retraining: no trimming or an oracle."""

    method: str
    label: str = ""
    n_trimmed: int = 0


@dataclass(kw_only=True)
class TrimRow(AccuracySummary):
    """Retraining without a method's top ``trim_percent`` %."""

    method: str
    trim_percent: float
    n_trimmed: int
    flipped_trimmed: float | None = None
    precision_of_trimmed: float | None = None
    delta_vs_none: float | None = None


@dataclass(kw_only=True)
class RetrainResults:
    """``--retrain``: each method's top k% trimmed, the model retrained, test accuracy."""

    n_test: int | None = None
    score_digests: dict[str, str | None] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    trim_percents: list[float] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    recipe: str | None = None
    device: str | None = None
    models_trained: int = 0
    seconds: float | None = None
    seconds_per_model: float | None = None
    accuracy_is: str = "test accuracy"
    std_is: str | None = None
    no_trim_reproduces_run: bool | None = None
    references: list[ReferenceRow] = field(default_factory=list)
    rows: list[TrimRow] = field(default_factory=list)
    #: set when a later evaluation kept these results (its scores were unchanged)
    from_report_created: str | None = None

    def row(self, method: str, trim_percent: float) -> TrimRow | None:
        """The row of ``method`` at ``trim_percent`` (None when it was not retrained)."""
        return next(
            (r for r in self.rows if r.method == method and r.trim_percent == trim_percent), None
        )

    def reference(self, method: str) -> ReferenceRow | None:
        """The reference ``none`` / ``oracle_drop_flipped`` / ``oracle_clean_labels``."""
        return next((r for r in self.references if r.method == method), None)

    def method_order(self) -> list[str]:
        """``random``, the listed methods, then any other method the rows hold."""
        names = ["random", *self.methods]
        names += [r.method for r in self.rows if r.method not in names]
        return list(dict.fromkeys(names))


# ---- the report -----------------------------------------------------------------------------


@dataclass(kw_only=True)
class EvaluationReport:
    """What ``ogad evaluate`` measured on one run (``RUN_DIR/evaluation.json``)."""

    report_version: int = REPORT_VERSION
    created: str | None = None
    run_dir: str | None = None
    data: DataInfo | None = None
    model: ModelInfo | None = None
    machine: MachineInfo | None = None
    run_steps_seconds: dict[str, float | None] = field(default_factory=dict)
    detection: Annotated[list[DetectionRow], Field(min_length=1)]
    compute: ComputeCost | None = None
    baselines: Baselines | None = None
    retrain: RetrainResults | None = None
    #: further remarks of the evaluation (e.g. a changed training recipe)
    notes: list[str] = field(default_factory=list)

    def row(self, detector: str) -> DetectionRow | None:
        """The detection row of ``detector`` (None when not scored)."""
        return next((r for r in self.detection if r.detector == detector), None)

    def to_json(self) -> dict[str, Any]:
        """The JSON object (plain dicts, lists, numbers and strings)."""
        out: dict[str, Any] = _ADAPTER.dump_python(self, mode="json", by_alias=True)
        return out

    @classmethod
    def from_json(cls, raw: object) -> EvaluationReport:
        """A report from its JSON object; :class:`ReportError` when any part is malformed."""
        report, problems = _parse(raw, lenient=False)
        return report

    def write(self, path: str | Path) -> None:
        """Write atomically as indented JSON."""
        write_json_atomic(Path(path), self.to_json())


_ADAPTER: TypeAdapter[EvaluationReport] = TypeAdapter(EvaluationReport)
#: top-level keys a report cannot do without
_REQUIRED = frozenset({"report_version", "detection"})
#: how a problem names each optional section
SECTION_NAMES = {
    "retrain": "the retraining results",
    "baselines": "the baseline details",
    "compute": "the compute costs",
    "data": "the data section",
    "model": "the model section",
    "machine": "the machine section",
}


@dataclass(frozen=True)
class ReportRead:
    """A report read leniently: the sections that could not be read are named in ``problems``."""

    report: EvaluationReport
    problems: tuple[str, ...] = ()


def _check_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ReportError("it has no report_version")
    if version > max(READABLE_VERSIONS):
        raise ReportError(
            f"a newer ogad wrote it (report version {version}; this one reads "
            f"{min(READABLE_VERSIONS)}-{max(READABLE_VERSIONS)})",
            stale=True,
        )
    if version not in READABLE_VERSIONS:
        raise ReportError(f"its report_version {version} is unknown")


def _error_text(err: ValidationError, section: str | None = None) -> str:
    """The first validation error (of ``section``) as ``where: what``."""
    errors = [e for e in err.errors() if section is None or (e["loc"] and e["loc"][0] == section)]
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "the report"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _parse(raw: object, *, lenient: bool) -> tuple[EvaluationReport, list[str]]:
    """Validate ``raw``; when lenient, drop the malformed optional sections (named in the list)."""
    if not isinstance(raw, dict):
        raise ReportError("it is not a JSON object")
    _check_version(raw.get("report_version"))
    data = dict(raw)
    problems: list[str] = []
    while True:
        try:
            text = json.dumps(data, allow_nan=True)
            return _ADAPTER.validate_json(text, strict=True), problems
        except ValidationError as err:
            bad = {str(e["loc"][0]) for e in err.errors() if e["loc"]}
            if not lenient or not bad or bad & _REQUIRED:
                raise ReportError(_error_text(err)) from None
            for key in sorted(bad):
                name = SECTION_NAMES.get(key, f"its {key!r}")
                problems.append(f"{name} cannot be read ({_error_text(err, key)})")
                data.pop(key)
        except (TypeError, ValueError) as err:  # not JSON-able: cannot come from json.loads
            raise ReportError(f"it holds values JSON cannot ({err})") from None


def read_report(path: str | Path) -> ReportRead:
    """Read an evaluation.json leniently.

    Raises:
        ReportError: the file cannot be read, is not JSON, or its detection table or version is
            unusable (``stale=True`` when a newer ogad wrote it).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"it cannot be read ({getattr(err, 'strerror', None) or err})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportError(f"it is not valid JSON (line {err.lineno}: {err.msg})") from None
    report, problems = _parse(raw, lenient=True)
    return ReportRead(report, tuple(problems))
