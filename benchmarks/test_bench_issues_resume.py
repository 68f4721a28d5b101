"""bench_issues --resume continues a run whose compute was killed mid-way, on the mix it wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


def _tiny_image_mix(root: Path, seed: int) -> pd.DataFrame:
    """48 of sklearn's 8x8 digits (classes 0-2) as an ImageFolder; the truth table's shape."""
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=3)
    rows = []
    for j in range(48):
        label = int(digits.target[j])
        path = root / str(label) / f"s{j:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[j] * 15).astype(np.uint8)).save(path)
        rows.append(dict(path=str(path.resolve()), label=label, kind="clean", set_key=-1))
    return pd.DataFrame(rows)


class Killed(Exception):
    """Stands for the kill: the compute stops in its gradient step."""


def _killed_gradient_step(state: object) -> None:
    raise Killed


@pytest.mark.slow
def test_resume_continues_a_compute_killed_mid_way(tmp_path: Path, monkeypatch) -> None:
    import benchmarks.bench_issues as bench
    import ogad_core.pipeline.workflow as workflow
    from ogad_core.errors import RunDirError

    monkeypatch.setitem(bench.MIXES, "main", (_tiny_image_mix, None, {}, {}))
    with monkeypatch.context() as m:
        m.setattr(workflow, "gradient_step", _killed_gradient_step)
        with pytest.raises(Killed):
            bench._run_mix("images", 0, tmp_path)
    files = sorted((tmp_path / "images_0").rglob("*.png"))
    written = [f.stat().st_mtime_ns for f in files]

    run, truth = bench._run_mix("images", 0, tmp_path, resume=True)

    assert [f.stat().st_mtime_ns for f in files] == written  # the mix kept as written
    assert (run / "issues.parquet").is_file()  # the compute finished
    assert len(truth) == 48 and set(truth["path"]) == {str(f.resolve()) for f in files}
    with pytest.raises(RunDirError, match="changed"):  # the mix written again: refused
        bench._run_mix("images", 0, tmp_path)
