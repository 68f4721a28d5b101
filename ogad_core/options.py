"""Every command's options, defined once: a frozen dataclass per command whose fields carry the
default, the help text and the validation. The CLI builds its argparse parsers from these fields
(``ogad_core.cli``); the Python API constructs the same dataclasses, so a bad value is refused the
same way from both. Errors name the parameter (``proj_dim must be >= 1``); the CLI shows the flag.

``ComputeConfig`` is saved in the manifest and compared on reuse: a run directory never mixes two
configurations (fields marked ``runtime`` change no stored result and may differ on resume).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ogad_core.errors import ConfigError

#: default `max_pixels`: images larger than this (width x height) are refused before decoding
DEFAULT_MAX_PIXELS = 100_000_000

#: best first (the registry: ogad_core/scoring/detectors.py)
DEFAULT_DETECTORS = ("loss", "l2", "l1", "lof", "iforest", "selfconf")
#: The detector a run's queue, export and dashboard use unless told otherwise: the one that finds
#: the flipped labels best on the project's benchmark suite (benchmarks/bench_review_sim.py,
#: bench_quality.py, synthetic_moons.py, bench_text.py); no mean-rank ensemble of it with l2,
#: l1 or lof beat it on the image runs by more than 0.0003 AUROC. The paper's ``iforest`` stays
#: one ``--detector`` away.
DEFAULT_DETECTOR = "loss"
#: One sentence for the README and the dashboard: why DEFAULT_DETECTOR is the default.
DEFAULT_DETECTOR_REASON = (
    "loss (the cross-entropy with the given label) ranks flipped labels best on the image and "
    "synthetic benchmarks, AUROC 0.998 on mnist5k (l2 0.995, iforest 0.984), 0.999 on digits "
    "(l2 0.999, iforest 0.994) and 0.993 on two moons (l2 0.991, iforest 0.984), ties l2 on "
    "Rotten Tomatoes (0.854, iforest 0.838; all within 0.78-0.80 on the 480-snippet offline "
    "sample), and on the image runs no rank ensemble of it with l2, l1 or lof does better by "
    "more than 0.0003 AUROC; iforest, the paper's choice, stays available."
)
FINETUNE_CHOICES = ("lora", "last-block")
#: forward-pass precisions of the gradient pass (ogad_core.engine.gradients.PRECISIONS)
PRECISIONS = ("fp32", "bf16", "fp16")
#: the issue types ``ogad compute`` and ``ogad issues`` find (ogad_core/issues/registry.py)
DEFAULT_ISSUE_TYPES = ("label", "duplicate", "outlier", "corrupt", "leakage")
SAMPLE_SET_NAMES = ("mnist5k", "digits", "moons", "rotten-tomatoes")
#: ``ogad evaluate --retrain``: the percentages trimmed, and the cleanlab baseline's CV folds
DEFAULT_TRIM_PERCENTS = (2.5, 5.0, 10.0, 12.5)
DEFAULT_FOLDS = 5

Check = Callable[[Any], str | None]


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    choices: tuple[str, ...] | None = None,
    check: Check | None = None,
    runtime: bool = False,
    positional: bool = False,
    metavar: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option.

    Args:
        default: the default (``MISSING`` = required).
        help: one line for ``--help``; the default is appended by the CLI.
        flag: the flag when not ``--field-name``.
        choices: allowed values (checked here and shown by argparse).
        check: ``value -> problem or None`` (``"must be >= 1"``); runs on construction.
        runtime: the field changes no stored result (a resumed run may differ in it).
        positional: a positional argument on the command line (``ogad score DIR``).
    """
    meta = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "check": check,
        "runtime": runtime,
        "positional": positional,
        "metavar": metavar,
    }
    if isinstance(default, tuple | list):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


# ---- checks ---------------------------------------------------------------------------------


def at_least(low: float) -> Check:
    """A check: the value (when given) is >= ``low`` and finite."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        return None if value >= low else f"must be >= {low:g}, got {value}"

    return check


def between(low: int, high: int) -> Check:
    """A check: the value (when given) is a number in [low, high]."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        return None if low <= value <= high else f"must be in {low}..{high}, got {value}"

    return check


#: seeds go to numpy, scikit-learn and torch: numpy takes 0 .. 2**32 - 1
SEED_MAX = 2**32 - 1
seed_range = between(0, SEED_MAX)
#: images are resized to at most this side (a batch of 256 RGB images at 1024 is 3 GB)
IMAGE_SIZE_MAX = 1024
#: the projection matrix is (gradient width, N) float32: N is kept to what fits in memory
PROJ_DIM_MAX = 2**16


def encoder_problem(encoder: str | None, kind: str) -> str | None:
    """Why ``encoder`` does not apply to data of ``kind`` (image, text, tabular), or None."""
    if not encoder:
        return None
    if kind == "tabular":
        return f"{encoder!r} does not apply to tabular data (moons, digits): leave it out"
    if kind == "image" and not encoder.startswith("torchvision:"):
        return (
            f"{encoder!r} is not an image encoder; images take torchvision:NAME "
            f"(e.g. torchvision:{encoder.rpartition(':')[2] or 'resnet18'})"
        )
    if kind == "text" and encoder.startswith("torchvision:"):
        return f"{encoder!r} is an image encoder; texts take a sentence-transformers model"
    return None


def check_proj_dim(proj_dim: int | None, width: int) -> None:
    """ConfigError when a projection would not make the gradients (width ``width``) smaller."""
    if proj_dim is not None and proj_dim >= width:
        raise ConfigError(
            f"proj_dim {proj_dim} is not smaller than the gradient's width {width}: leave it "
            f"out (the gradients are stored whole) or give fewer than {width}",
            param="proj_dim",
        )


#: the data kind of each sample set (imagefolder: image; csv: known once read)
SAMPLE_SET_KINDS = {"mnist5k": "image", "digits": "tabular", "moons": "tabular"}
SAMPLE_SET_KINDS["rotten-tomatoes"] = "text"


def positive(value: Any) -> str | None:
    """A check: the value (when given) is a finite number > 0."""
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        return f"must be > 0, got {value}"
    return None


def not_blank(value: Any) -> str | None:
    """A check: a non-empty string or sequence."""
    if isinstance(value, str):
        return None if value.strip() else "must not be empty"
    return None if value else "needs at least one value"


DATA_PREFIXES = ("imagefolder:", "csv:")
#: whether a spec is a registered data source's: ``ogad_core.data.sources.register`` adds each
#: source's ``matches``, so a plugin's spec form passes ``data_spec`` too
REGISTERED_SPECS: list[Callable[[str], bool]] = []


def _path_as_spec(value: str) -> str | None:
    """The spec a bare path most likely meant: ``imagefolder:PATH`` for a folder,
    ``csv:PATH`` for a file (a path given without its prefix), else None."""
    import os

    if os.path.isdir(value):
        return f"imagefolder:{value}"
    if os.path.isfile(value):
        return f"csv:{value}"
    return None


def _near_spec(value: str) -> str | None:
    """The sample set name or spec prefix ``value`` nearly spells (``mnist`` -> mnist5k)."""
    import difflib

    head, sep, tail = value.partition(":")
    if sep:
        near = difflib.get_close_matches(head + sep, DATA_PREFIXES, n=1, cutoff=0.5)
        return near[0] + tail if near else None
    near = difflib.get_close_matches(value, SAMPLE_SET_NAMES, n=1, cutoff=0.6)  # foo: no moons
    near = near or [n for n in SAMPLE_SET_NAMES if n.startswith(value.lower()[:4])]
    return near[0] if near else None


def data_spec(value: str) -> str | None:
    """A check: a sample set name or ``imagefolder:PATH`` / ``csv:PATH``; a near miss is named
    (``mnist`` -> did you mean mnist5k?), and so is a bare path's spec (a folder ->
    ``imagefolder:PATH``, a file -> ``csv:PATH``)."""
    if not isinstance(value, str) or not value.strip():
        return "must not be empty"
    if value in SAMPLE_SET_NAMES or value.startswith(DATA_PREFIXES):
        return None
    if any(matches(value) for matches in REGISTERED_SPECS):
        return None
    guess = _path_as_spec(value) or _near_spec(value)
    hint = f"did you mean {guess}? " if guess else ""
    return (
        f"{value!r} is not a data spec; {hint}use one of {', '.join(SAMPLE_SET_NAMES)}, "
        "imagefolder:PATH or csv:PATH"
    )


def holdout_spec(value: str | None) -> str | None:
    """A check: None or ``imagefolder:PATH`` / ``csv:PATH`` (the held-out split's files)."""
    if value is None or (isinstance(value, str) and value.startswith(DATA_PREFIXES)):
        return None
    return f"{value!r} is not a held-out split; use imagefolder:PATH or csv:PATH"


def workers_option() -> Any:
    """``--workers N`` (``ogad compute`` and ``ogad issues``): processes decoding image files,
    threads of the duplicate type's image verification."""
    return option(
        None,
        "data-loading processes for image files and threads of the duplicate type's image "
        "verification (default: the CPU count, at most 8)",
        check=at_least(0),
        runtime=True,
    )


def holdout_option() -> Any:
    """``--holdout SPEC`` (``ogad compute`` and ``ogad issues``): the held-out split (validation
    or test files in the train data's format), searched for copies of training samples."""
    return option(
        None,
        "the held-out split (imagefolder:PATH or csv:PATH, as --data): training samples that "
        "are copies of its files are flagged as leakage (never trained on or scored)",
        check=holdout_spec,
        runtime=True,
        metavar="SPEC",
    )


def device_name(value: str) -> str | None:
    """A check: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if value in ("auto", "cpu", "cuda"):
        return None
    index = value.removeprefix("cuda:")
    if value.startswith("cuda:") and index.isdigit():
        return None
    return f"must be auto, cpu, cuda or cuda:N, got {value!r}"


def noise_amount(value: float) -> str | None:
    """A check: a rate in [0, 1) or a whole count >= 1."""
    if not math.isfinite(value) or value < 0:
        return f"must be a rate in [0, 1) or a count >= 1, got {value}"
    if value >= 1 and value != int(value):
        return f"{value}: a count must be a whole number (or use a rate < 1)"
    return None


def validate(obj: Any) -> None:
    """Run every field's choices and check; raise ConfigError naming the first bad field."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        choices = f.metadata.get("choices")
        if choices and value is not None and value not in choices:
            raise ConfigError(
                f"{f.name} must be one of {', '.join(choices)}, got {value!r}", param=f.name
            )
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{f.name} {problem}", param=f.name)


def option_fields(cls: type) -> list[Field[Any]]:
    """The fields of an options dataclass that are command-line options."""
    return [f for f in fields(cls) if "help" in f.metadata]


# ---- compute --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ComputeConfig:
    """Everything ``ogad compute`` needs (its CLI flags are these fields)."""

    data: str = option(
        help="mnist5k, digits, moons, rotten-tomatoes (shipped sample sets); imagefolder:PATH "
        "(one sub-folder per class); csv:PATH (columns image,label with image paths relative "
        "to the CSV, or text,label)",
        check=data_spec,
    )
    model: str | None = option(None, "your model: module:factory or path/to/file.py:factory")
    checkpoint: str | None = option(None, "weights (.pt state_dict) for --model; else trained")
    params: str = option(
        "auto",
        "gradient parameters: auto (last layer, or the LoRA adapters with --finetune lora), "
        "last, all, or parameter names / prefixes / globs, comma-separated",
        check=not_blank,
    )
    proj_dim: int | None = option(
        None,
        "project each gradient to N dimensions (seeded random projection; fewer than the "
        "gradient's width)",
        check=between(1, PROJ_DIM_MAX),
    )
    noise: float = option(
        0.0, "inject label noise: a rate in [0, 1) or a count >= 1", check=noise_amount
    )
    noise_kind: str = option(
        "symmetric",
        "symmetric (new class drawn uniformly) or asymmetric (class c -> c + 1)",
        choices=("symmetric", "asymmetric"),
    )
    seed: int = option(
        0, "seed of the noise, training, projection and map (0 .. 2**32-1)", check=seed_range
    )
    device: str = option(
        "auto", "auto (CUDA when present), cpu, cuda or cuda:N", check=device_name, runtime=True
    )
    batch_size: int = option(256, "samples per batch", check=at_least(1), runtime=True)
    checkpoints: int = option(
        1, "keep K checkpoints over training and take gradients at each", check=at_least(1)
    )
    epochs: int | None = option(
        None,
        "training epochs (default: the data kind's recipe: images 12, tabular 50, text head "
        "100, --finetune 3)",
        check=at_least(1),
    )
    lr: float | None = option(
        None,
        "learning rate (default: the data kind's recipe: images 1e-3, tabular 1e-2, text head "
        "3e-3, --finetune last-block 1e-4, lora 5e-4)",
        check=positive,
    )
    weight_decay: float | None = option(
        None,
        "Adam weight decay (default: the data kind's recipe: images 1e-4, tabular 0, text head "
        "1.5, image-encoder features head 1e-3)",
        check=at_least(0.0),
    )
    image_size: int = option(
        32, "side length your images are resized to", check=between(4, IMAGE_SIZE_MAX)
    )
    limit: int | None = option(None, "a seeded subset of N training samples", check=at_least(2))
    encoder: str | None = option(
        None,
        "text: sentence-transformers model (default all-MiniLM-L6-v2, loaded offline); images: "
        "torchvision:NAME (resnet18, resnet50, convnext_tiny, vit_b_16, ...): pretrained "
        "features, cached in the run, and a linear head",
    )
    finetune: str | None = option(
        None,
        "text: lora trains LoRA adapters too; images with --encoder: last-block trains the "
        "encoder's last block with the head",
        choices=FINETUNE_CHOICES,
    )
    weights: str | None = option(
        None,
        "weights file of a torchvision --encoder (default: the torch hub cache; "
        "nothing is downloaded)",
    )
    transform: str | None = option(
        None,
        "preprocessing of your images for --model: module:callable (PIL image -> tensor) or a "
        "torchvision weights name (e.g. ResNet50_Weights.IMAGENET1K_V2)",
    )
    workers: int | None = workers_option()
    precision: str = option(
        "fp32",
        "forward-pass precision of the encoder and gradient passes (autocast; float32 stored)",
        choices=PRECISIONS,
    )
    max_pixels: int = option(
        DEFAULT_MAX_PIXELS,
        "refuse image files with more pixels (width x height) than this",
        check=at_least(1),
        runtime=True,
    )
    detectors: tuple[str, ...] = option(
        DEFAULT_DETECTORS,
        "detectors to score with: registry names or module:Class of a scikit-learn "
        "outlier detector, comma-separated",
        flag="--detector",
        check=not_blank,
        runtime=True,
    )
    per_class: bool = option(False, "fit one detector per given class", runtime=True)
    holdout: str | None = holdout_option()
    allow_outside: tuple[str, ...] = option(
        (),
        "folders outside the CSV's / ImageFolder's folder that its images (or links) may point "
        "into, comma-separated (else such files are refused)",
        metavar="PATH,...",
        runtime=True,
    )
    engine: str = option(
        "local",
        "where gradients are extracted: local (this process) or ray (a Ray cluster; "
        "pip install 'ogad[ray]'); same results",
        choices=("local", "ray"),
        runtime=True,
    )
    ray_address: str | None = option(
        None,
        "with --engine ray: an existing cluster (ray://HEAD:10001, HEAD:6379 or auto); "
        "default: a local cluster for this run",
        runtime=True,
        metavar="ADDR",
    )

    def __post_init__(self) -> None:
        validate(self)
        if self.ray_address and self.engine != "ray":
            raise ConfigError("ray_address needs `engine` ray", param="ray_address")
        if self.checkpoint and not self.model:
            raise ConfigError("checkpoint needs `model` (module:factory)", param="checkpoint")
        image_encoder = bool(self.encoder and self.encoder.startswith("torchvision:"))
        if self.weights and not image_encoder:
            raise ConfigError("weights needs `encoder` torchvision:NAME", param="weights")
        if self.transform and not self.model:
            raise ConfigError("transform needs `model` (module:factory)", param="transform")
        if self.finetune == "last-block" and not image_encoder:
            raise ConfigError(
                "finetune last-block needs `encoder` torchvision:NAME", param="finetune"
            )
        kind = SAMPLE_SET_KINDS.get(
            self.data, "image" if self.data.startswith("imagefolder:") else ""
        )
        problem = encoder_problem(self.encoder, kind)
        if problem:
            raise ConfigError(f"encoder {problem}", param="encoder")
        if self.finetune == "lora" and image_encoder:
            raise ConfigError(
                "finetune lora is for text encoders; use last-block", param="finetune"
            )

    def identity(self) -> dict[str, Any]:
        """The fields that determine the stored results (JSON-safe)."""
        runtime = {f.name for f in fields(self) if f.metadata.get("runtime")}
        return {k: v for k, v in self.to_dict().items() if k not in runtime}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["detectors"] = list(self.detectors)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComputeConfig:
        """The config saved in a manifest (unknown keys ignored, missing ones defaulted)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "detectors" in kw:
            kw["detectors"] = tuple(kw["detectors"])
        return cls(**kw)


# ---- the other commands ---------------------------------------------------------------------

RUN_DIR_HELP = "the run directory (made by ogad compute)"


@dataclass(frozen=True, kw_only=True)
class ScoreOptions:
    """``ogad score DIR``: (re)score a run's gradients."""

    run_dir: Path = option(help=RUN_DIR_HELP, positional=True)
    detectors: tuple[str, ...] = option(
        DEFAULT_DETECTORS,
        "registry names (iforest,l2,l1,lof,loss,selfconf) or module:Class of any scikit-learn "
        "outlier detector, comma-separated",
        flag="--detector",
        check=not_blank,
    )
    per_class: bool = option(False, "fit one detector per given class")
    embedding: str = option(
        "final",
        "final model's gradients, or all checkpoints' side by side",
        choices=("final", "checkpoints"),
    )
    seed: int = option(0, "seed of the detectors", check=seed_range)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class MapOptions:
    """``ogad map DIR``: the 2-D UMAP map of the gradient embeddings."""

    run_dir: Path = option(help=RUN_DIR_HELP, positional=True)
    seed: int = option(0, "seed of the map", check=seed_range)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class IssuesOptions:
    """``ogad issues DIR``: issue types (label, duplicate, outlier, corrupt, leakage) ->
    issues.parquet."""

    run_dir: Path = option(help=RUN_DIR_HELP, positional=True)
    issue_types: tuple[str, ...] = option(
        DEFAULT_ISSUE_TYPES,
        "registry names (label,duplicate,outlier,corrupt,leakage) or module:Class of an "
        "ogad_core.issues.IssueType subclass, comma-separated",
        flag="--issue-type",
        check=not_blank,
    )
    seed: int = option(0, "seed of anything random")
    holdout: str | None = holdout_option()
    workers: int | None = workers_option()
    features_map: bool = option(
        False, "also draw the 2-D map of the model's features (the dashboard can show it)"
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions:
    """``ogad evaluate DIR``: detection quality against the run's known noise."""

    run_dir: Path = option(help=RUN_DIR_HELP, positional=True)
    json: bool = option(False, "print JSON instead of a table")
    baselines: bool = option(
        False, "also score with cleanlab (cross-validated) and TracIn self-influence"
    )
    retrain: bool = option(
        False, "trim each method's top k%%, retrain, report held-out test accuracy"
    )
    trim: tuple[float, ...] = option(
        DEFAULT_TRIM_PERCENTS,
        "percentages to trim with --retrain, comma-separated",
        check=not_blank,
    )
    seeds: int = option(3, "retraining seeds", check=at_least(1))
    detectors: tuple[str, ...] | None = option(
        None, "methods to retrain with (default: every scored detector)", flag="--detector"
    )
    folds: int = option(
        DEFAULT_FOLDS, "cross-validation folds of the cleanlab baseline", check=at_least(2)
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """``ogad export DIR --out FILE.csv``: the cleaned dataset index."""

    run_dir: Path = option(help=RUN_DIR_HELP, positional=True)
    out: Path = option(help="the CSV file to write (replaced atomically)")
    only_kept: bool = option(False, "write only the rows with keep = true")
    detector: str | None = option(
        None, "whose score and rank to write (default: the run's default detector)"
    )
    raw: bool = option(
        False,
        "write text cells beginning with = + - @ verbatim (for programs); by default they get "
        "a leading ' so a spreadsheet shows them instead of running them as formulas",
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    """``ogad report DIR --out FILE.html``: one self-contained HTML report of the run."""

    run_dir: Path = option(help=RUN_DIR_HELP, positional=True)
    out: Path = option(
        help="the HTML file to write (replaced atomically; not a path inside the run directory)"
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class DashboardOptions:
    """``ogad dashboard DIR``: serve the review dashboard."""

    run_dir: Path = option(help=RUN_DIR_HELP, positional=True)
    port: int | None = option(None, "port (default: 8501, or the next free one)", check=at_least(1))
    host: str = option(
        "127.0.0.1",
        "address to listen on; anything but 127.0.0.1 / localhost exposes the run's data and "
        "decisions to the network (a warning is printed)",
        check=not_blank,
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """``ogad demo``: build a sample run with 10% label noise and serve the dashboard."""

    run_dir: Path | None = option(None, "where to build it (default runs/demo-DATA)")
    data: str = option("mnist5k", "the sample set", choices=SAMPLE_SET_NAMES)
    no_dashboard: bool = option(False, "build the run only; do not serve it")
    port: int | None = option(
        None, "dashboard port (default: 8501, or the next free one)", check=at_least(1)
    )

    def __post_init__(self) -> None:
        validate(self)


def fingerprint(*parts: object) -> str:
    """sha256 (16 hex chars) of the canonical JSON of ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
