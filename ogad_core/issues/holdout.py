"""The held-out split of a run (``--holdout SPEC``): its files' input properties, the data the
``leakage`` issue type compares the training samples with. Torch-free.

The held-out files are read once per issue pass, in the pass that writes their thumbnails
(the dashboard shows them beside the training sample they leak); nothing of them is trained on,
predicted or scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ogad_core.run.rundir import RunDir


@dataclass
class Holdout:
    """The held-out split's M files.

    Attributes:
        spec: the ``--holdout`` spec.
        refs: (M,) file paths (images) or texts.
        inputs: M rows of input properties (``content_hash``, ...).
        signatures: (M, 256) float32 16 x 16 grayscale images, or None (texts).
        fingerprint: changes when the split's files do.
        registration: (M, 32, 32) uint8 grayscale images, or None (texts).
    """

    spec: str
    refs: list[str]
    inputs: pd.DataFrame
    signatures: np.ndarray | None
    fingerprint: str
    registration: np.ndarray | None = None


def load_holdout(rd: RunDir, spec: str, config: dict[str, Any] | None = None) -> Holdout:
    """The held-out split ``spec`` (imagefolder:PATH or csv:PATH, loaded as ``--data``; the run's
    image size, ``allow_outside`` and ``max_pixels`` from ``config``) with its properties."""
    from ogad_core.data import load_data
    from ogad_core.data.images import ImageFiles
    from ogad_core.issues import properties as props
    from ogad_core.issues.inputs import image_file_properties
    from ogad_core.options import DEFAULT_MAX_PIXELS

    config = config or {}
    data = load_data(
        spec,
        run_dir=rd.path,
        image_size=int(config.get("image_size") or 32),
        allow_outside=tuple(config.get("allow_outside") or ()),
        max_pixels=int(config.get("max_pixels") or DEFAULT_MAX_PIXELS),
    )
    inputs = data.train.inputs
    signatures = registration = None
    if isinstance(inputs, ImageFiles):
        table, signatures, registration = image_file_properties(
            inputs, rd, consequence="the held-out split's copies of them are not searched"
        )
    elif isinstance(inputs, list):
        table = props.text_properties(inputs)
    else:
        table = pd.DataFrame({"content_hash": [""] * len(data.train)})
    return Holdout(
        spec=spec,
        refs=[str(r) for r in data.train.refs],
        inputs=table,
        signatures=signatures,
        fingerprint=data.fingerprint(),
        registration=registration,
    )
