"""The prepared GPU benchmark (benchmarks/bench_gpu.py) runs end to end on CPU with ``--smoke``
and splices only its own section of the docs file it is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_gpu_script_runs_on_cpu_with_smoke_sizes(tmp_path: Path) -> None:
    from benchmarks.bench_gpu import HEADING, docs_section, main
    from benchmarks.docs_splice import splice

    docs = tmp_path / "benchmarks.md"
    before = "# Benchmarks\n\n## Other\n\nkept as is\n\n## Last\n\nalso kept\n"
    docs.write_text(before)
    out = tmp_path / "gpu.json"
    result = main(["--smoke", "--out", str(out), "--docs", str(docs), "--root", str(tmp_path)])
    assert json.loads(out.read_text()) == result
    assert not result["cuda"] and result["device_name"] == "CPU"
    (enc,) = result["encoder"]
    assert enc["model"] == "resnet18" and enc["ours_images_per_s"] > 0 and enc["ratio"] > 0
    (grad,) = result["gradients"]
    assert grad["closed_samples_per_s"] > 0 and grad["all_projected_samples_per_s"] > 0
    text = docs.read_text()
    assert text.startswith(before.split("## Last")[0])  # the other sections are untouched
    assert "## Last\n\nalso kept\n" in text and text.count(HEADING) == 1
    assert "smoke run on the CPU" in text and "not a GPU measurement" in text
    splice(docs_section(result), HEADING, path=docs)  # what a rerun does
    assert docs.read_text() == text  # its section replaced, nothing added
