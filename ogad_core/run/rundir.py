"""The run directory: file names, the manifest, and atomic reads/writes of its tables.

Torch-free: the dashboard and ``ogad export`` read runs through this module alone.

Layout (see ../shared/CONTRACT.md)::

    manifest.json      schema_version, data, model, params, dims, label_names, fingerprints, status
    samples.parquet    sample_id, ref, label, label_name, pred, confidence, loss[, is_flipped]
    gradients.npy      (N, D) float32, sample_id order
    scores.parquet     sample_id, D_score, D_rank for each detector D
    map.parquet        sample_id, x, y
    reviews.sqlite     review decisions
    evaluation.json    detection quality against known noise (``ogad evaluate``)
    model/             final.pt and checkpoint_K.pt weights
    checkpoints/       gradients_K.npy at the earlier checkpoints
    embeddings/        the encoder's cached features
    data/              images written for the sample sets (refs point here)
    issues.parquet     one row per sample and issue type: sample_id, issue, score, rank, flagged,
                       set_id (ogad_core.issues)
    features.npy       (N, H) float32 penultimate features h of the final model (+ done-mask,
                       checksums; recovered from last-layer gradients)
    inputs.parquet     per-sample input properties (content hash, size, brightness, contrast,
                       sharpness; text length and letters), made in the thumbnails' decode pass
    signatures.npy     (N, 256) float32 16x16 grayscale signature of each image (pixel space)
    registration.npy   (N, 32, 32) uint8 grayscale image of each image (duplicate verification)
    map_features.parquet  sample_id, x, y: the 2-D map of the features (``ogad issues``)
    thumbs/            small JPEGs of the user's images, one per ref (the dashboard shows these)
    evidence/          derived review evidence (neighbours, suggestions, re-rank features),
                       stamped with the gradients and samples it was made from

Every path of a run directory is defined here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ogad_core._internal import one_line, utc_now, write_json_atomic
from ogad_core.errors import ConfigError, RunDirError
from ogad_core.run.manifest import SCHEMA_VERSION, Manifest

MANIFEST = "manifest.json"
SAMPLES = "samples.parquet"
GRADIENTS = "gradients.npy"
SCORES = "scores.parquet"
MAP = "map.parquet"
REVIEWS = "reviews.sqlite"
EVALUATION = "evaluation.json"
DATA_DIR = "data"
THUMBS_DIR = "thumbs"
EVIDENCE_DIR = "evidence"
MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"
EMBEDDINGS_DIR = "embeddings"
LOCK = ".ogad.lock"
ISSUES = "issues.parquet"
FEATURES = "features.npy"
INPUTS = "inputs.parquet"
SIGNATURES = "signatures.npy"
REGISTRATION = "registration.npy"
FEATURES_MAP = "map_features.parquet"
SET_ASIDE = ".set-aside-"
#: every name a run directory may hold (files and folders)
RUN_FILE_NAMES = frozenset(
    {
        MANIFEST,
        SAMPLES,
        GRADIENTS,
        "gradients.done.npy",
        "gradients.json",
        SCORES,
        MAP,
        REVIEWS,
        REVIEWS + "-wal",
        REVIEWS + "-shm",
        DATA_DIR,
        THUMBS_DIR,
        LOCK,
        MODEL_DIR,
        CHECKPOINTS_DIR,
        EMBEDDINGS_DIR,
        EVALUATION,
        EVIDENCE_DIR,
        ISSUES,
        FEATURES,
        "features.done.npy",
        "features.json",
        INPUTS,
        SIGNATURES,
        REGISTRATION,
        FEATURES_MAP,
    }
)
MANIFEST_HINT = (
    "run the same `ogad compute` command again to rebuild the run (reviews.sqlite is kept)"
)


def table_problem(path: Path) -> str | None:
    """Why a parquet table cannot be read (one line), or None when it reads."""
    try:
        pd.read_parquet(path, engine="pyarrow")
    except Exception as err:  # pyarrow raises several unrelated types
        return one_line(err, 120)
    return None


#: file kinds a run writes at its top level (issues.parquet and later tables included)
OWNED_SUFFIXES = (".parquet", ".npy", ".json", ".pt", ".sqlite", "-wal", "-shm", ".lock")


def run_owns(run_path: Path, path: Path) -> bool:
    """Whether ``path`` (resolved) is the run directory or lies in a name the run owns (its
    files and folders, set-aside and temporary files)."""
    if path == run_path:
        return True
    if not path.is_relative_to(run_path):
        return False
    top = path.relative_to(run_path).parts[0]
    return (
        top in RUN_FILE_NAMES
        or top == THUMBS_DIR
        or top.endswith((".damaged", ".tmp", *OWNED_SUFFIXES))
        or top.startswith((REVIEWS, MANIFEST, "gradients."))
    )


def looks_like_run_dir(path: Path) -> bool:
    """Whether a folder holds an ogad run (its lock file, or a manifest with samples)."""
    # os.path's tests answer False for a folder that cannot be read (Path's raise)
    return os.path.exists(path / LOCK) or (
        os.path.isfile(path / MANIFEST) and os.path.isfile(path / SAMPLES)
    )


def check_output_path(
    out: str | os.PathLike[str], run: RunDir, param: str = "out", example: str = "cleaned.csv"
) -> Path:
    """The file an output option (``--out``) may be written to: the path itself, or the file a
    symbolic link names. Refused (ConfigError naming ``param``): a path the run owns (its
    decision store, tables, folders) whether given directly or through a link, a folder, and an
    existing file that is not a regular file (a FIFO, a device, a socket). ``example``: the
    file name the messages suggest (the command's kind of output)."""
    given = Path(out).expanduser()
    target = given.resolve() if given.is_symlink() else given.absolute()
    try:
        target = target.parent.resolve() / target.name
    except (OSError, RuntimeError) as err:
        raise ConfigError(f"{param} {given}: cannot follow the path ({err})", param=param) from None
    if run_owns(run.path, target):
        raise ConfigError(
            f"{param} {given} would overwrite {target}, which belongs to the run {run.path}; "
            f"write the output outside the run directory (e.g. {example})",
            param=param,
        )
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as err:
        raise ConfigError(f"{param} {given}: {err.strerror}", param=param) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(
            f"{param} {given} is a folder; give a file name such as {example}", param=param
        )
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"{param} {given} is not a regular file (a FIFO, device or socket); ogad only "
            "writes or replaces regular files: give another file name",
            param=param,
        )
    return target


class RunDir:
    """Paths and readers of one run directory.

    Args:
        path: the run directory (need not exist yet for writers).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ---- paths -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def samples_path(self) -> Path:
        return self.path / SAMPLES

    @property
    def gradients_path(self) -> Path:
        return self.path / GRADIENTS

    @property
    def scores_path(self) -> Path:
        return self.path / SCORES

    @property
    def map_path(self) -> Path:
        return self.path / MAP

    @property
    def reviews_path(self) -> Path:
        return self.path / REVIEWS

    def reviews_set_aside_path(self, stamp: str) -> Path:
        """Where decisions made on other inputs are moved (``reviews.sqlite.set-aside-STAMP``)."""
        return self.path / f"{REVIEWS}{SET_ASIDE}{stamp}"

    @property
    def issues_path(self) -> Path:
        """issues.parquet: one row per sample and issue type (ogad_core.issues)."""
        return self.path / ISSUES

    @property
    def features_path(self) -> Path:
        """features.npy: (N, H) penultimate features of the final model (a GradientStore)."""
        return self.path / FEATURES

    @property
    def features_map_path(self) -> Path:
        """map_features.parquet: sample_id, x, y — the 2-D map of the model's features."""
        return self.path / FEATURES_MAP

    @property
    def inputs_path(self) -> Path:
        """inputs.parquet: per-sample input properties (ogad_core.issues.properties)."""
        return self.path / INPUTS

    @property
    def signatures_path(self) -> Path:
        """signatures.npy: (N, 256) float32 small grayscale signatures of the images."""
        return self.path / SIGNATURES

    @property
    def registration_path(self) -> Path:
        """registration.npy: (N, 32, 32) uint8 grayscale images for verifying near duplicates
        by registration (ogad_core.issues.registration)."""
        return self.path / REGISTRATION

    @property
    def data_dir(self) -> Path:
        """Images of the shipped sample sets, written once."""
        return self.path / DATA_DIR

    @property
    def evidence_dir(self) -> Path:
        """Derived review evidence (ogad_core.scoring.evidence); rebuilt when stale."""
        return self.path / EVIDENCE_DIR

    @property
    def evaluation_path(self) -> Path:
        return self.path / EVALUATION

    @property
    def embeddings_dir(self) -> Path:
        """The encoder's cached features (text embeddings, image features)."""
        return self.path / EMBEDDINGS_DIR

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def final_model_path(self) -> Path:
        """The weights the run's gradients, predictions and scores come from."""
        return self.model_dir / "final.pt"

    def checkpoint_model_path(self, k: int) -> Path:
        """Weights at checkpoint ``k`` (0-based; the last one equals the final model)."""
        return self.model_dir / f"checkpoint_{k}.pt"

    def checkpoint_gradients_path(self, k: int) -> Path:
        """Gradients at an earlier checkpoint ``k`` (the last checkpoint's are gradients.npy)."""
        return self.path / CHECKPOINTS_DIR / f"gradients_{k}.npy"

    def gradients_path_at(self, k: int, n_checkpoints: int) -> Path:
        """Where checkpoint ``k`` of ``n_checkpoints`` keeps its gradients."""
        last = k == n_checkpoints - 1
        return self.gradients_path if last else self.checkpoint_gradients_path(k)

    @property
    def lock_path(self) -> Path:
        """The writers' lock file (see :mod:`ogad_core.run.lock`)."""
        return self.path / LOCK

    @property
    def thumbs_dir(self) -> Path:
        return self.path / THUMBS_DIR

    def thumbnail_path(self, ref: str) -> Path:
        """Where the thumbnail of an image ref lives (sha256 of the ref: one file per ref)."""
        digest = hashlib.sha256(str(ref).encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return self.thumbs_dir / f"{digest}.jpg"

    # ---- manifest ----------------------------------------------------------------------
    def holds_only_run_files(self) -> bool:
        """Whether every entry of the folder is a file ogad writes in a run directory (a run
        whose manifest was set aside may be rebuilt in place; a user's folder may not)."""
        if not self.path.is_dir():
            return False
        for entry in self.path.iterdir():
            name = entry.name
            if name in RUN_FILE_NAMES or name.endswith((".damaged", ".tmp")):
                continue
            if name.startswith(REVIEWS + SET_ASIDE):
                continue
            return False
        return True

    def has_manifest(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as a dict; RunDirError when missing or unreadable."""
        if not self.path.is_dir():
            raise RunDirError(f"run directory not found: {self.path}")
        if not self.manifest_path.is_file():
            raise RunDirError(f"not an ogad run directory (no {MANIFEST}): {self.path}")
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except OSError as err:
            raise RunDirError(f"cannot read {self.manifest_path}: {err.strerror}") from None
        except ValueError as err:  # not UTF-8, not JSON
            raise RunDirError(
                f"{self.manifest_path} is damaged ({one_line(err, 80)}); {MANIFEST_HINT}"
            ) from None
        if not isinstance(manifest, dict):
            raise RunDirError(
                f"{self.manifest_path} is damaged (not a JSON object); {MANIFEST_HINT}"
            )
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RunDirError(
                f"{self.manifest_path} has schema_version {version!r}; this ogad reads "
                f"{SCHEMA_VERSION}"
            )
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.manifest_path, manifest)

    def label_names(self) -> list[str]:
        """The class names (RunDirError when the manifest lacks them: an incomplete run or a
        hand-edited manifest)."""
        data = self.read_manifest().get("data")
        names = data.get("label_names") if isinstance(data, dict) else None
        if not isinstance(names, list) or not names:
            raise RunDirError(
                f"{self.manifest_path} has no data.label_names (the run is incomplete or its "
                f"manifest was edited); {MANIFEST_HINT}"
            )
        return [str(n) for n in names]

    def load_manifest(self) -> Manifest:
        """The typed manifest (RunDirError when missing or unreadable)."""
        return Manifest.from_json(self.read_manifest())

    def save_manifest(self, manifest: Manifest) -> None:
        """Write the manifest atomically, stamping ``updated``."""
        manifest.updated = utc_now()
        try:
            self.write_manifest(manifest.to_json())
        except OSError as err:
            raise RunDirError(f"cannot write to {self.path}: {err.strerror}") from None

    # ---- tables ------------------------------------------------------------------------
    def _read(self, path: Path, what: str, hint: str) -> pd.DataFrame:
        if not path.is_file():
            raise RunDirError(f"{self.path} has no {what} yet ({path.name}); {hint}")
        try:
            return pd.read_parquet(path, engine="pyarrow")
        except Exception as err:  # pyarrow raises several unrelated types
            raise RunDirError(
                f"cannot read {path}, it is damaged ({one_line(err, 100)}); run the same "
                "`ogad compute` command again to rebuild it"
            ) from None

    def read_samples(self) -> pd.DataFrame:
        """samples.parquet: one row per sample, sample_id order."""
        return self._read(self.samples_path, "samples", "run `ogad compute` first")

    def read_scores(self) -> pd.DataFrame:
        """scores.parquet: sample_id, then D_score / D_rank per detector D."""
        return self._read(self.scores_path, "scores", "run `ogad score DIR`")

    def read_map(self) -> pd.DataFrame:
        """map.parquet: sample_id, x, y."""
        return self._read(self.map_path, "map", "run `ogad map DIR`")

    def read_issues(self) -> pd.DataFrame:
        """issues.parquet: sample_id, issue, score, rank, flagged, set_id."""
        return self._read(self.issues_path, "issues", "run `ogad issues DIR`")

    def detectors(self) -> list[str]:
        """Detector names present in scores.parquet, in column order."""
        if not self.scores_path.is_file():
            return []
        import pyarrow.parquet as pq

        names = pq.read_schema(self.scores_path).names
        return [c[: -len("_score")] for c in names if c.endswith("_score")]

    # ---- image refs --------------------------------------------------------------------
    def resolve_ref(self, ref: str, roots: Iterable[Path]) -> Path | None:
        """The image file a ref names, or None when it lies outside ``roots``, the run's data
        folders (``ogad_core.data.sources.run_data_roots``: the data source names them).

        Relative refs are relative to the run directory.
        """
        candidate = Path(ref)
        if not candidate.is_absolute():
            candidate = self.path / candidate
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            return None
        for root in roots:
            if resolved.is_relative_to(root):
                return resolved
        return None
