"""Small prepared run directories for tests and benchmarks, written through the run's own
writers (``RunDir``, atomic parquet tables, the typed ``Manifest``); no torch, no training.

``make_run(root, kind="image")`` writes::

    <root>/manifest.json     status complete, known noise
    <root>/samples.parquet   sample_id, ref, label, label_name, pred, confidence, loss, is_flipped
                             (+ truncated for text runs)
    <root>/scores.parquet    iforest / l2 score + rank (flipped samples score high)
    <root>/map.parquet       sample_id, x, y (one blob per class)
    <root>/data/images/      28x28 PNGs of circles / squares / crosses (image runs)

Two image refs are broken on purpose (:data:`MISSING_ID` has no file, :data:`CORRUPT_ID` holds
garbage bytes). Text runs hold an HTML/markdown sample (:data:`HTML_ID`) and a very long one
(:data:`LONG_ID`, truncated = true). These special samples score high: they are on the first
page of the queue.

``write_evaluation(root, retrain=..., cleanlab=...)`` adds the ``evaluation.json`` that
``ogad evaluate`` writes (real detection figures, torch-free; a made-up retraining section).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ogad_core import __version__
from ogad_core._internal import utc_now, write_table_atomic
from ogad_core.errors import ConfigError
from ogad_core.run.manifest import Manifest, StepRecord
from ogad_core.run.rundir import RunDir

if TYPE_CHECKING:
    from ogad_core.evaluation.schema import RetrainResults

#: headless Debian chromium for the browser test and the dashboard benchmark (never
#: ``playwright install``; nothing is fetched)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

IMAGE_LABELS = ["circle", "square", "cross"]
TEXT_LABELS = ["sports", "politics", "tech"]
TABULAR_LABELS = ["moon 0", "moon 1"]
MISSING_ID = 4
CORRUPT_ID = 7
HTML_ID = 0
LONG_ID = 1
HTML_TEXT = "<b>x</b> **y** <script>alert('owned')</script> $a+b$ :red[red] [link](http://e.x)"
DETECTORS = ("iforest", "l2")

_WORDS = {
    "sports": "match goal team coach season league striker keeper final score".split(),
    "politics": "vote senate policy minister election party debate law budget".split(),
    "tech": "software chip network startup cloud model data server code".split(),
}

#: the digits run the session fixture ``digits_run`` computes (tests copy it, never change it)
DIGITS_CONFIG = dict(
    data="digits",
    limit=300,
    noise=0.1,
    epochs=3,
    checkpoints=2,
    seed=0,
    device="cpu",
    detectors=("iforest", "l2", "l1", "loss"),
)


def _shape_image(label: int, rng: np.random.Generator, size: int = 28) -> Image.Image:
    """A (size, size) grayscale drawing of a circle / square / cross with jitter and noise."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    c = size // 2 + int(rng.integers(-2, 3))
    r = int(rng.integers(7, 11))
    if label == 0:
        draw.ellipse([c - r, c - r, c + r, c + r], outline=255, width=3)
    elif label == 1:
        draw.rectangle([c - r, c - r, c + r, c + r], outline=255, width=3)
    else:
        draw.line([c - r, c - r, c + r, c + r], fill=255, width=3)
        draw.line([c - r, c + r, c + r, c - r], fill=255, width=3)
    noisy = np.asarray(img, dtype=np.int16) + rng.integers(0, 40, (size, size))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="L")


def _text(label: int, i: int, rng: np.random.Generator, names: list[str]) -> str:
    words = _WORDS[names[label]]
    return " ".join(rng.choice(words, size=int(rng.integers(8, 20)))).capitalize() + f". (#{i})"


@dataclass(frozen=True)
class _Truth:
    """The made-up ground truth of a fixture run (arrays of length N)."""

    names: list[str]
    true: np.ndarray
    label: np.ndarray
    flipped: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    loss: np.ndarray


def _truth(kind: str, n: int, noise_rate: float, rng: np.random.Generator) -> _Truth:
    names = {"image": IMAGE_LABELS, "text": TEXT_LABELS, "tabular": TABULAR_LABELS}[kind]
    k = len(names)
    true = np.arange(n) % k
    rng.shuffle(true)
    flipped = rng.random(n) < noise_rate
    if kind == "text" and n > LONG_ID:
        flipped[[HTML_ID, LONG_ID]] = True
    label = true.copy()
    label[flipped] = (true[flipped] + 1 + rng.integers(0, k - 1, flipped.sum())) % k
    pred = np.where(rng.random(n) < 0.9, true, (true + 1) % k)
    confidence = np.round(rng.uniform(0.5, 0.99, n), 4)
    loss = np.where(pred == label, -np.log(confidence), -np.log(1 - confidence + 1e-3))
    return _Truth(names, true, label, flipped, pred, confidence, loss)


def _image_refs(
    rd: RunDir, t: _Truth, rng: np.random.Generator, broken_refs: bool, n_images: int | None
) -> list[str]:
    """PNGs of the true shapes under the run's data/images/ (refs relative to the run)."""
    n = len(t.true)
    folder = rd.data_dir / "images"
    folder.mkdir(parents=True, exist_ok=True)
    distinct = n if n_images is None else min(n, n_images)
    refs = []
    for i in range(n):
        name = f"img_{i % distinct:05d}.png" if n_images is not None else f"{i:05d}.png"
        if i < distinct:
            _shape_image(int(t.true[i]), rng).save(folder / name)
        refs.append(f"data/images/{name}")
    if broken_refs and n > CORRUPT_ID:
        refs[MISSING_ID] = "data/images/missing_00004.png"
        (folder / "corrupt_00007.png").write_bytes(b"this is not a png")
        refs[CORRUPT_ID] = "data/images/corrupt_00007.png"
    return refs


def _text_refs(t: _Truth, rng: np.random.Generator) -> tuple[list[str], list[bool]]:
    """(texts, truncated): topic sentences, plus an HTML one and a very long one."""
    n = len(t.true)
    refs = [_text(int(t.true[i]), i, rng, t.names) for i in range(n)]
    truncated = [False] * n
    if n > LONG_ID:
        refs[HTML_ID] = HTML_TEXT
        topic = t.names[int(t.true[LONG_ID])]
        refs[LONG_ID] = " ".join(
            f"Sentence {j} of a very long review about the {topic} news." for j in range(120)
        )
        truncated[LONG_ID] = True
    return refs, truncated


def _tabular_refs(t: _Truth, rng: np.random.Generator) -> list[str]:
    angle = rng.uniform(0, np.pi, len(t.true))
    xs = np.where(t.true == 0, np.cos(angle), 1 - np.cos(angle))
    ys = np.where(t.true == 0, np.sin(angle), 0.5 - np.sin(angle))
    return [f"x1={a:.3f}, x2={b:.3f}" for a, b in zip(xs, ys, strict=True)]


def _samples(t: _Truth, refs: list[str], extra: dict[str, list]) -> pd.DataFrame:
    n = len(t.true)
    return pd.DataFrame(
        {
            "sample_id": np.arange(n, dtype=np.int64),
            "ref": refs,
            "label": t.label.astype(np.int64),
            "label_name": [t.names[i] for i in t.label],
            "pred": t.pred.astype(np.int64),
            "confidence": t.confidence.astype(np.float64),
            "loss": t.loss.astype(np.float64),
            "is_flipped": t.flipped,
            **extra,
        }
    )


def _scores(t: _Truth, kind: str, broken_refs: bool, rng: np.random.Generator) -> pd.DataFrame:
    """Made-up scores in which the flipped samples (and the special ones) score high."""
    n = len(t.true)
    cols: dict[str, np.ndarray] = {"sample_id": np.arange(n, dtype=np.int64)}
    for d, detector in enumerate(DETECTORS):
        score = rng.normal(0, 1, n) + 3.0 * t.flipped + 0.3 * d
        if kind == "image" and broken_refs and n > CORRUPT_ID:
            score[[MISSING_ID, CORRUPT_ID]] += 5.0  # on the first page of the queue
        if kind == "text" and n > LONG_ID:
            score[[HTML_ID, LONG_ID]] += 5.0
        cols[f"{detector}_score"] = score.astype(np.float64)
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(-score, kind="stable")] = np.arange(1, n + 1)
        cols[f"{detector}_rank"] = rank
    return pd.DataFrame(cols)


def _map(t: _Truth, rng: np.random.Generator) -> pd.DataFrame:
    """One blob per true class."""
    n, k = len(t.true), len(t.names)
    angle = 2 * np.pi * t.true / k
    x = 5 * np.cos(angle) + rng.normal(0, 1, n)
    y = 5 * np.sin(angle) + rng.normal(0, 1, n)
    ids = np.arange(n, dtype=np.int64)
    return pd.DataFrame({"sample_id": ids, "x": x.astype(np.float32), "y": y.astype(np.float32)})


def _manifest(
    rd: RunDir, kind: str, t: _Truth, noise_rate: float, seed: int, status: str, steps: list[str]
) -> Manifest:
    n = len(t.true)
    return Manifest(
        ogad_version=__version__,
        created=utc_now(),
        status=status,
        steps={s: StepRecord(fingerprint="fixture") for s in steps},
        data={
            "spec": f"fixture-{kind}",
            "kind": kind,
            "label_names": t.names,
            "n_samples": n,
            "noise": {
                "rate": noise_rate,
                "kind": "symmetric",
                "seed": seed,
                "n_flipped": int(t.flipped.sum()),
            },
            "data_roots": [str(rd.data_dir.resolve())],
        },
        label_names=t.names,
        model={"spec": "fixture"},
        params="last",
        dims={"n_classes": len(t.names)},
    )


def make_run(
    root: str | Path,
    *,
    kind: str = "image",
    n: int = 60,
    seed: int = 0,
    noise_rate: float = 0.15,
    with_scores: bool = True,
    with_map: bool = True,
    status: str = "complete",
    broken_refs: bool = True,
    n_images: int | None = None,
) -> Path:
    """Write a prepared run directory of ``n`` samples under ``root`` through the run's own
    writers (``RunDir`` paths, atomic parquet tables, the typed ``Manifest``); returns its path.

    Args:
        kind: ``image`` (3 shape classes), ``text`` (3 topics) or ``tabular`` (2 moons).
        noise_rate: share of labels flipped (recorded in is_flipped and manifest noise).
        with_scores / with_map: write scores.parquet / map.parquet.
        status: the manifest's status (``complete`` or ``incomplete``).
        broken_refs: image runs get one missing and one corrupt image.
        n_images: image runs write only this many distinct PNGs and reuse them (big runs).
    """
    if kind not in ("image", "text", "tabular"):
        raise ValueError(f"unknown kind {kind!r}")
    rd = RunDir(root)
    rd.path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = _truth(kind, n, noise_rate, rng)
    extra: dict[str, list] = {}
    if kind == "image":
        refs = _image_refs(rd, t, rng, broken_refs, n_images)
    elif kind == "text":
        refs, extra["truncated"] = _text_refs(t, rng)
    else:
        refs = _tabular_refs(t, rng)
    write_table_atomic(_samples(t, refs, extra), rd.samples_path)
    steps = ["data", "train", "predict", "gradients"]
    if with_scores:
        write_table_atomic(_scores(t, kind, broken_refs, rng), rd.scores_path)
        steps.append("scores")
    if with_map:
        write_table_atomic(_map(t, rng), rd.map_path)
        steps.append("map")
    rd.save_manifest(_manifest(rd, kind, t, noise_rate, seed, status, steps))
    return rd.path


def write_evaluation(root: str | Path, *, retrain: bool = False, cleanlab: bool = False) -> dict:
    """Write ``<root>/evaluation.json`` for a :func:`make_run` run; returns its JSON object.

    The detection part is real: ``evaluate_run(retrain=False, baselines=False,
    time_detectors=False)``, which is torch-free (no training, no timing; seconds are null).

    Args:
        cleanlab: first add a ``cleanlab`` score column to scores.parquet (flipped samples score
            a little higher), so that the report has the quality bar against cleanlab.
        retrain: add a realistic ``retrain`` section (what ``--retrain --trim 5,10 --seeds 3``
            writes) with made-up accuracies and the true flipped counts of each trim.
    """
    from ogad_core.evaluation.report import EVALUATION_JSON, evaluate_run

    root = Path(root)
    if cleanlab:
        rd = RunDir(root)
        scores = rd.read_scores()
        flipped = rd.read_samples()["is_flipped"].to_numpy(dtype=bool)
        score = np.random.default_rng(7).normal(0, 1, len(scores)) + 1.0 * flipped
        order = np.argsort(-score, kind="stable")
        rank = np.empty(len(score), dtype=np.int64)
        rank[order] = np.arange(1, len(score) + 1)
        scores["cleanlab_score"], scores["cleanlab_rank"] = score, rank
        write_table_atomic(scores, rd.scores_path)
    report = evaluate_run(root, retrain=False, baselines=False, time_detectors=False)
    if retrain:
        report.retrain = _retrain_section(root, [r.detector for r in report.detection])
        report.write(root / EVALUATION_JSON)
    return report.to_json()


def _made_up_accuracy(base: float, n_seeds: int = 3) -> dict:
    """Accuracies of ``n_seeds`` seeds from ``base`` (+0.01 per seed), their mean and std."""
    acc = [round(base + 0.01 * s, 6) for s in range(n_seeds)]
    return {
        "accuracy": acc,
        "mean": round(float(np.mean(acc)), 6),
        "std": round(float(np.std(acc, ddof=1)), 6),
    }


def _made_up_trim_rows(root: Path, methods: list[str], trims: list[float]) -> list:
    """Trim rows with made-up accuracies and the true flipped counts of each trim."""
    from ogad_core.evaluation.plans import n_to_trim
    from ogad_core.evaluation.schema import TrimRow

    flipped = RunDir(root).read_samples()["is_flipped"].to_numpy(dtype=bool)
    scores = RunDir(root).read_scores()
    rows = []
    for k in trims:
        n_trim = n_to_trim(k, len(flipped))
        for i, name in enumerate(["random", *methods]):
            if name == "random":
                removed = float(flipped[:n_trim].sum())
            else:
                removed = float(flipped[scores[f"{name}_rank"].to_numpy() <= n_trim].sum())
            s = _made_up_accuracy(0.80 + 0.002 * i + 0.001 * k)
            rows.append(
                TrimRow(
                    method=name,
                    trim_percent=k,
                    n_trimmed=n_trim,
                    flipped_trimmed=removed,
                    precision_of_trimmed=round(removed / n_trim, 6),
                    delta_vs_none=round(s["mean"] - 0.81, 6),
                    **s,
                )
            )
    return rows


def _retrain_section(root: Path, methods: list[str]) -> RetrainResults:
    """A ``retrain`` section as ``ogad evaluate --retrain --trim 5,10 --seeds 3`` writes it
    (accuracies made up; the no-trimming reference's mean is 0.81)."""
    from ogad_core.evaluation.retrain import ACCURACY_IS, STD_IS
    from ogad_core.evaluation.schema import REFERENCE_LABELS, ReferenceRow, RetrainResults

    n_flipped = int(RunDir(root).read_samples()["is_flipped"].sum())
    trims = [5.0, 10.0]
    references = [
        ReferenceRow(
            method=m,
            label=REFERENCE_LABELS[m],
            n_trimmed=n_flipped if m == "oracle_drop_flipped" else 0,
            **_made_up_accuracy(base),
        )
        for m, base in (
            ("none", 0.80),
            ("oracle_drop_flipped", 0.86),
            ("oracle_clean_labels", 0.88),
        )
    ]
    return RetrainResults(
        n_test=100,
        seeds=[0, 1, 2],
        trim_percents=trims,
        methods=methods,
        recipe="TrainRecipe(epochs=3, lr=0.001, weight_decay=0.0001, batch_size=64)",
        device="cpu",
        models_trained=3 * (3 + len(trims) * (1 + len(methods))),
        seconds=12.0,
        seconds_per_model=0.5,
        accuracy_is=ACCURACY_IS,
        std_is=STD_IS,
        no_trim_reproduces_run=True,
        references=references,
        rows=_made_up_trim_rows(root, methods, trims),
    )


# ---- contract checks a plugin author runs (in the spirit of scikit-learn's check_estimator) --


def _planted(
    n: int = 64, d: int = 8, n_out: int = 4, seed: int = 0
) -> tuple[np.ndarray, pd.DataFrame]:
    """(N, d) float32 gradients whose first ``n_out`` rows are far out, and a samples table
    (sample_id, label, loss, pred, confidence) in which those rows have the highest loss."""
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(n, d)).astype(np.float32)
    grads[:n_out] += 8.0
    loss = rng.uniform(0.01, 0.3, n)
    loss[:n_out] = rng.uniform(3.0, 5.0, n_out)
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(n, dtype=np.int64),
            "label": np.arange(n, dtype=np.int64) % 2,
            "loss": loss,
            "pred": np.arange(n, dtype=np.int64) % 2,
            "confidence": np.exp(-loss),
        }
    )
    return grads, samples


def check_detector(spec: Any, *, seed: int = 0) -> None:
    """Check that a detector keeps ogad's detector contract, through the path ``ogad score``
    takes (``score_table``); ConfigError naming the first broken rule.

    The rules: it resolves (a registry name, ``module:Class``, a class or an instance) to an
    unfitted scikit-learn outlier estimator; its scores are one finite float per row; higher
    ``score_samples`` means MORE NORMAL, so rows planted far out (and with the highest loss)
    rank as the most suspicious; a fixed seed gives the same scores twice; ``clone`` keeps it.
    """
    from sklearn.base import clone

    from ogad_core.scoring.detectors import detector_name, resolve_detector, score_table

    grads, samples = _planted(seed=seed)
    name = detector_name(spec)
    clone(resolve_detector(spec, seed=seed))  # sklearn's get_params / set_params contract
    first = score_table(grads, samples, [spec], seed=seed)
    score, rank = first[f"{name}_score"].to_numpy(), first[f"{name}_rank"].to_numpy()
    if score.shape != (len(samples),) or not np.isfinite(score).all():
        raise ConfigError(f"detector {name!r}: scores must be one finite number per row")
    top = np.sort(rank[:4])
    if top.max() > len(samples) // 4:
        raise ConfigError(
            f"detector {name!r}: rows planted far out rank {top.tolist()} of {len(samples)}; "
            "score_samples must be HIGHER for MORE NORMAL rows (scikit-learn's convention)"
        )
    again = score_table(grads, samples, [spec], seed=seed)[f"{name}_score"].to_numpy()
    if not np.array_equal(score, again):
        raise ConfigError(f"detector {name!r}: the same seed must give the same scores")


def check_data_source(source: Any, spec: str, run_dir: str | Path) -> None:
    """Check that a data source keeps the contract ``load_data`` relies on; ConfigError naming
    the first broken rule: it is a ``DataSource``, it matches ``spec``, and what it loads is a
    ``LoadedData`` of a registered data kind with one label per sample in range."""
    from ogad_core.data.loaders import LoadedData
    from ogad_core.data.sources import DataSource, LoadOptions
    from ogad_core.engine.kinds import INPUT_KINDS

    if not isinstance(source, DataSource):
        raise ConfigError(
            f"{source!r} is not a DataSource (name, usage, matches, load, data_roots)"
        )
    if not source.matches(spec):
        raise ConfigError(f"data source {source.name!r} does not match its own spec {spec!r}")
    data = source.load(spec, LoadOptions(Path(run_dir)))
    if not isinstance(data, LoadedData):
        raise ConfigError(f"data source {source.name!r} must load a LoadedData")
    if data.kind not in INPUT_KINDS:
        known = ", ".join(INPUT_KINDS)
        raise ConfigError(f"data kind {data.kind!r} is not registered (known: {known})")
    labels = np.asarray(data.train.labels)
    if labels.shape != (len(data.train),) or labels.min() < 0 or labels.max() >= data.n_classes:
        raise ConfigError(f"data source {source.name!r}: one label in 0..C-1 per sample")


def check_model_kind(kind: Any, config: Any, run_dir: str | Path) -> None:
    """Check that a model kind keeps the contract the model step relies on, on the data of
    ``config`` (a ``ComputeConfig``; sample sets write their images under ``run_dir``);
    ConfigError naming the first broken rule: it is a ``ModelKind`` that matches the run, its
    inputs are ``ModelInputs`` with one label per sample, the model it builds takes them and
    outputs one logit per class, its identity is the same when asked twice and can be
    fingerprinted, and its weights (the ones it loads, or one epoch of its training) fit the
    model."""
    from dataclasses import replace

    from ogad_core.engine.datasets import first_inputs
    from ogad_core.engine.kinds import ModelIdentity, ModelInputs, ModelKind, TrainJob
    from ogad_core.engine.models import resolve_device
    from ogad_core.errors import ModelError
    from ogad_core.options import fingerprint
    from ogad_core.pipeline import load_run_data
    from ogad_core.pipeline.model_step import check_model_fits
    from ogad_core.run.rundir import RunDir

    if not isinstance(kind, ModelKind):
        raise ConfigError(
            f"{kind!r} is not a ModelKind (subclass ogad_core.engine.kinds.BaseModelKind)"
        )
    rd, device = RunDir(run_dir), resolve_device("cpu")
    rd.path.mkdir(parents=True, exist_ok=True)
    data = load_run_data(config, rd)
    if not kind.matches(config, data.kind):
        raise ConfigError(f"model kind {kind.name!r} does not match {config.data} ({data.kind})")
    inputs = kind.preprocess(config, data, rd, device, False)
    if not isinstance(inputs, ModelInputs) or len(inputs.y_train) != len(data.train):
        raise ConfigError(
            f"model kind {kind.name!r}: preprocess must give ModelInputs, one label per sample"
        )
    model = kind.build(config, data.kind, inputs.input_shape, data.n_classes, inputs.x_train)
    example = first_inputs(inputs.x_train, inputs.y_train)
    try:
        check_model_fits(model, example, data.n_classes, device)
    except ModelError as err:
        raise ConfigError(f"model kind {kind.name!r}: {err}") from None
    identity = kind.identity(config)
    if not isinstance(identity, ModelIdentity) or identity != kind.identity(config):
        raise ConfigError(
            f"model kind {kind.name!r}: identity must be the same ModelIdentity each time"
        )
    fingerprint(identity.config, identity.weights)
    states = kind.load(config, model)
    if states is None:
        recipe = replace(kind.recipe(config, data.kind), epochs=1)
        states = kind.train(model, inputs, recipe, TrainJob(seed=config.seed, device=device))
    keys = set(model.state_dict())
    if not states or any(not isinstance(s, dict) or set(s) != keys for s in states):
        raise ConfigError(f"model kind {kind.name!r}: its weights must be the model's state_dicts")
