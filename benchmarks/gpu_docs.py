"""The GPU section of docs/benchmarks.md, rendered from results/gpu.json (torch-free:
``benchmarks.run_all --docs-only`` imports it); "unmeasured" while no GPU run is stored."""

from __future__ import annotations

from typing import Any

HEADING = "## GPU: encoder pass, closed-form gradients, all-parameter projection"

UNMEASURED = """\
**Unmeasured**: no GPU was lent to this session, so no row here is a GPU figure. The script is
prepared: `python -m benchmarks.bench_gpu` on a CUDA machine (one command, about 10 minutes on
one GPU at the default sizes) measures, on ResNet-18 and ResNet-50 with random-init weights,

- the encoder pass in bf16: a plain loop (torchvision `ImageFolder` + `DataLoader` with pinned
  memory + the backbone channels-last under bf16 autocast) against ogad's encoder pass
  (`decode_jpeg` on the device, channels-last, `--precision bf16`, into the resumable store);
  goal: ours >= 0.8x the plain loop's images/s;
- the closed-form last-layer gradients against a forward pass over the same batches; goal:
  <= 1.2x (an earlier H200 measurement put the limit at 1.10x including the copy to the host);
- `params=all` + projection to 1,024 (torch.func vmap); goal: ResNet-18 >= 1,000 samples/s;

and replaces this section with the figures and `torch.cuda.get_device_name()`. On CPU,
`python -m benchmarks.bench_gpu --smoke` runs the same code at tiny sizes (the test
`tests/test_bench_gpu.py` does, into a temporary copy of the docs); the GPU code paths of the
encoder pass (device decode, channels-last, bf16) are unit-tested on CPU in
`tests/test_images.py`.
"""


def docs_section(r: dict[str, Any]) -> str:
    """The GPU section of docs/benchmarks.md."""
    enc = "\n".join(
        f"| {e['model']} | {e['images']} | {e['plain_images_per_s']:,} | "
        f"{e['ours_images_per_s']:,} | {e['ratio']:.2f}x |"
        for e in r["encoder"]
    )
    grad = "\n".join(
        f"| {g['model']} | {g['forward_samples_per_s']:,} | {g['closed_samples_per_s']:,} | "
        f"{g['closed_vs_forward']:.2f}x | {g['all_projected_samples_per_s']:,} |"
        for g in r["gradients"]
    )
    g0 = r["gradients"][0] if r["gradients"] else {}
    kind = "" if r["cuda"] else " (a smoke run on the CPU: tiny sizes, not a GPU measurement)"
    return "\n".join(
        [
            HEADING + "\n",
            f"`python -m benchmarks.bench_gpu` on **{r['device_name']}**{kind}, {r['when']}; "
            f"torch {r['torch']}; random-init weights. Load average {r['load_average']}.\n",
            f"Encoder pass, bf16, {r['jpeg_size']} px JPEGs, {r['workers']} DataLoader workers "
            "(goal: ours >= 0.8x the plain loop):\n",
            "| model | images | plain bf16 loop (images/s) | ogad encoder pass (images/s) | "
            "ours vs plain |",
            "| --- | ---: | ---: | ---: | ---: |",
            enc,
            "",
            f"Gradients on {g0.get('rows', 0):,} random {g0.get('image_size', 0)} px inputs, "
            "10 classes, inputs streamed from (pinned) host memory (goals: closed form <= 1.2x "
            "a forward pass; all parameters projected, ResNet-18 >= 1,000 samples/s):\n",
            "| model | forward pass (samples/s) | closed-form last layer (samples/s) | "
            "closed / forward time | params=all + projection to 1,024 (samples/s) |",
            "| --- | ---: | ---: | ---: | ---: |",
            grad,
            "",
        ]
    )


def docs_or_unmeasured(r: dict[str, Any] | None) -> str:
    """The section: the stored GPU run's figures, or what the script will measure."""
    if not r or not r.get("cuda"):
        return HEADING + "\n\n" + UNMEASURED
    return docs_section(r)
