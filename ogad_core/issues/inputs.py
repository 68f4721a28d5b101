"""Record the input properties of a run (inputs.parquet, signatures.npy) in the data step.

User image files are inspected in the decode pass that writes their thumbnails (one read per
file); the sample sets' arrays and texts are inspected in memory. Torch-free.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import log, write_table_atomic, write_with_atomic
from ogad_core.issues import properties as props
from ogad_core.run.rundir import RunDir


def _inspect_image(img: Any) -> tuple[dict[str, Any], np.ndarray]:
    """Properties of a decoded PIL image, or of a file that was not (``img`` the error)."""
    if img is None or isinstance(img, Exception):
        return props.undecodable_properties(_reason(img))
    return props.image_properties(img, img.info.get("original_size", img.size))


def _reason(err: Exception | None) -> str:
    """The decoder's words for why a file could not be decoded (the path left out)."""
    text = str(err or "not decodable")
    text = text.rpartition(": ")[2] if ": " in text else text
    return re.sub(r"\s*'[^']*'", "", text).strip() or "not decodable"


def image_file_properties(
    files: Any,
    rd: RunDir,
    workers: int | None = None,
    consequence: str = "they are left out of training and flagged corrupt",
) -> tuple[pd.DataFrame, np.ndarray]:
    """Properties (rows of :data:`~ogad_core.issues.properties.IMAGE_COLUMNS`) and (N, 256)
    signatures of an ImageFiles, in the pass that writes their thumbnails; one warning line
    (ending with ``consequence``) names the files that cannot be decoded."""
    from ogad_core.data.images import write_thumbnails_inspecting

    written, results = write_thumbnails_inspecting(
        files, rd.thumbnail_path, _inspect_image, workers=workers
    )
    if written:
        log.info(f"data: {written} thumbnails written for the dashboard")
    table = pd.DataFrame([row for row, _ in results], columns=list(props.IMAGE_COLUMNS))
    table["decoded"] = table["decoded"].astype(bool)
    _warn_undecodable(files, table, consequence)
    return table, np.stack([sig for _, sig in results]).astype(np.float32)


def _warn_undecodable(files: Any, table: pd.DataFrame, consequence: str) -> None:
    """One warning line naming the files that cannot be decoded (the first three)."""
    bad = np.flatnonzero(~table["decoded"].to_numpy(dtype=bool))
    if not len(bad):
        return
    named = ", ".join(f"{files.paths[i]} ({table['error'].iloc[i]})" for i in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    log.warning(f"data: {len(bad)} image file(s) cannot be decoded: {named}{more}; {consequence}")


def undecodable_rows(rd: RunDir, n: int) -> np.ndarray:
    """(M,) int64 sample ids of the train inputs that could not be decoded (inputs.parquet's
    ``decoded`` False); empty when none or when the run records no input properties."""
    if not inputs_recorded(rd, n, complete=False):
        return np.empty(0, dtype=np.int64)
    table = pd.read_parquet(rd.inputs_path)
    if "decoded" not in table:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(~table["decoded"].to_numpy(dtype=bool)).astype(np.int64)


def without_rows(x: Any, y: Any, drop: np.ndarray) -> tuple[Any, Any]:
    """The training inputs ``x`` (an ImageFiles, or an (N, ...) tensor / array of features)
    and labels ``y`` without the rows ``drop``; unchanged when nothing is dropped or ``x`` is
    another kind of dataset."""
    if not len(drop) or not hasattr(x, "__getitem__") or not hasattr(x, "__len__"):
        return x, y
    keep = np.setdiff1d(np.arange(len(y)), drop)
    if hasattr(x, "subset"):
        return x.subset(keep), y[keep]
    if hasattr(x, "shape") and len(x) == len(y):
        return x[keep], y[keep]
    return x, y


def save_npy(path: Any, array: np.ndarray) -> None:
    """Write ``array`` as .npy at ``path`` atomically."""

    def write(tmp: Any) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    write_with_atomic(path, write)


def inputs_recorded(rd: RunDir, n: int, *, complete: bool = True) -> bool:
    """Whether inputs.parquet holds ``n`` rows already and (``complete``) every column of its
    kind (:data:`~ogad_core.issues.properties.IMAGE_COLUMNS` or ``TEXT_COLUMNS``) as defined
    by this :data:`~ogad_core.issues.properties.PROPERTIES_VERSION`: a run recorded before a
    property was added or changed is recorded again."""
    if not rd.inputs_path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(rd.inputs_path)
    except Exception:  # a damaged file is rebuilt
        return False
    if int(meta.num_rows) != n:
        return False
    names = set(meta.schema.names)
    kind = props.IMAGE_COLUMNS if "sharpness" in names else props.TEXT_COLUMNS
    return not complete or (set(kind) <= names and _version(meta) == props.PROPERTIES_VERSION)


def _version(meta: Any) -> int:
    """The PROPERTIES_VERSION an inputs.parquet was recorded with (1: before there was one)."""
    import json

    attrs = (meta.metadata or {}).get(b"PANDAS_ATTRS")
    try:
        return int(json.loads(attrs).get("properties_version", 1)) if attrs else 1
    except (ValueError, TypeError, AttributeError):
        return 1


def record_inputs(rd: RunDir, inputs: Any, *, workers: int | None = None) -> bool:
    """Write inputs.parquet (and signatures.npy for images) for the train ``inputs``: an
    ImageFiles, (N, C, H, W) image arrays or N texts. Tabular inputs have none. Returns whether
    anything was written; user images get their thumbnails in the same pass either way."""
    from ogad_core.data.images import ImageFiles, write_thumbnails

    n = len(inputs)
    if inputs_recorded(rd, n):
        if isinstance(inputs, ImageFiles):  # thumbnails deleted since: the decodable ones
            decoded = pd.read_parquet(rd.inputs_path, columns=["decoded"])["decoded"]
            readable = inputs.subset(np.flatnonzero(decoded.to_numpy(dtype=bool)))
            write_thumbnails(readable, rd.thumbnail_path, workers=workers)
        return False
    signatures = None
    if isinstance(inputs, ImageFiles):
        table, signatures = image_file_properties(inputs, rd, workers)
    elif isinstance(inputs, list):
        table = props.text_properties(inputs)
    elif isinstance(inputs, np.ndarray) and inputs.ndim in (3, 4):
        table, signatures = props.array_properties(inputs)
    else:
        return False
    table.insert(0, "sample_id", np.arange(n, dtype=np.int64))
    table.attrs["properties_version"] = props.PROPERTIES_VERSION
    if signatures is not None:
        save_npy(rd.signatures_path, signatures)
    write_table_atomic(table, rd.inputs_path)
    return True


def _stored_texts(rd: RunDir, manifest: Any, samples: pd.DataFrame) -> Any:
    return samples["ref"].astype(str).tolist()


def _stored_images(rd: RunDir, manifest: Any, samples: pd.DataFrame) -> Any:
    from ogad_core.data.images import scan_images
    from ogad_core.data.sources import run_data_roots

    roots = run_data_roots(rd)
    paths = [str(p) for p in (rd.resolve_ref(str(r), roots) for r in samples["ref"]) if p]
    if len(paths) != len(samples):
        return None
    size = int((manifest.config or {}).get("image_size") or 32)
    return scan_images(paths, size, "issues")


#: data kind -> its inputs read back from a finished run (texts from samples.parquet, image
#: files from their refs), for a run made before the issue types; a kind not here has none
STORED_INPUTS = {"text": _stored_texts, "image": _stored_images}
